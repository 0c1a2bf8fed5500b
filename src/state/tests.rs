//! Unit tests of the state word: its fields, each transition, and the
//! rules of the checked add (the loom models race them).

use super::*;

#[test]
fn state_display_and_flag_idempotence() {
    let names: Vec<String> = [
        State::Uninitialized,
        State::Active,
        State::Draining,
        State::Released,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names, ["Uninitialized", "Active", "Draining", "Released"]);
    // Setting the flag twice keeps it set; clearing twice keeps it clear.
    let w = Word::new(State::Released, 0, 5);
    assert!(
        w.with_initializing(true)
            .with_initializing(true)
            .initializing()
    );
    assert!(
        !w.with_initializing(false)
            .with_initializing(false)
            .initializing()
    );
    assert_eq!(w.with_initializing(true).generation(), 5);
}

// L10, L4: the count field's headroom and bias keep transients out of
// the generation: racing refused startups above MAX_COUNT and a refused
// cleanup below 0 leave state and generation as they were.
#[test]
fn l10_transients_never_reach_the_generation() {
    let sw = StateWord::new();
    sw.force(Word::new(State::Active, MAX_COUNT, 5));
    assert_eq!(sw.join(MAX_COUNT), Join::Limit);
    assert_eq!(sw.load(), Word::new(State::Active, MAX_COUNT, 5));
    // A million refused startups in flight at once (fetch_adds not yet
    // undone) still fit the field.
    for _ in 0..1_000_000 {
        sw.cell.word.fetch_add(ONE, Ordering::Relaxed);
    }
    assert_eq!(
        (sw.load().state(), sw.load().generation()),
        (State::Active, 5)
    );
    assert_eq!(sw.load().count(), MAX_COUNT + 1_000_000);

    sw.force(Word::new(State::Released, 0, 5));
    assert_eq!(
        sw.leave(),
        Leave::NotActive(Word::new(State::Released, 0, 5))
    );
    assert_eq!(sw.load(), Word::new(State::Released, 0, 5));
    for _ in 0..1_000_000 {
        sw.cell.word.fetch_sub(ONE, Ordering::Relaxed);
    }
    let w = sw.load();
    assert_eq!(
        (w.state(), w.generation(), w.count()),
        (State::Released, 5, 0)
    );
    assert_eq!(w.signed_count(), -1_000_000);
}

// L10: MAX_COUNT is the documented 2^28 - 1, and the biased field holds
// as much again above it: the largest count plus 2^28 transients is
// still a valid Active word of the same generation.
#[test]
fn l10_max_count_and_its_headroom() {
    assert_eq!(MAX_COUNT, (1 << 28) - 1);
    let w = Word::new(State::Active, MAX_COUNT, GEN_MASK);
    let top = Word(w.0 + (1 << 28) * ONE);
    assert_eq!((top.state(), top.generation()), (State::Active, GEN_MASK));
    assert_eq!(top.signed_count(), i64::from(MAX_COUNT) + (1 << 28));
    let bottom = Word(Word::new(State::Released, 0, 0).0 - (1 << 28) * ONE);
    assert_eq!((bottom.state(), bottom.generation()), (State::Released, 0));
    assert_eq!(bottom.signed_count(), -(1 << 28));
}

// Rule 2: a refused startup keeps the last unit of an Active word (its
// unit is then the only one) and gives back any other.
#[test]
fn settle_keeps_only_a_unit_within_the_limit() {
    let sw = StateWord::new();
    // As if this startup's fetch_add landed on Active(0), after the last
    // cleanup's fetch_sub and before its flip.
    sw.force(Word::new(State::Active, 1, 3));
    assert_eq!(
        sw.settle_join(4),
        Join::Joined(Word::new(State::Active, 1, 3))
    );
    // Above the limit: given back.
    sw.force(Word::new(State::Active, 3, 3));
    assert_eq!(sw.settle_join(2), Join::Limit);
    assert_eq!(sw.load().count(), 2);
    // Not Active: given back.
    sw.force(Word::new(State::Draining, 1, 3));
    assert_eq!(sw.settle_join(4), Join::NotActive);
    assert_eq!(sw.load().signed_count(), 0);
}

// The fast paths' one-comparison test against the three tests it
// stands for: every state, the initializing flag, the count field at
// its ends and around the bias, and generations at their ends.
#[test]
fn active_offset_is_the_three_tests() {
    let fields = [0, 1, 2, 3, (BIAS - 2) as u64, (BIAS - 1) as u64]
        .into_iter()
        .chain((0..6).map(|d| BIAS as u64 + d))
        .chain([(1 << COUNT_BITS) - 2, (1 << COUNT_BITS) - 1]);
    for field in fields {
        for low in 0..8 {
            for generation in [0, 1, GEN_MASK] {
                let w = Word((generation << GEN_SHIFT) | (field << COUNT_SHIFT) | low);
                let c = w.signed_count();
                let plain = w.is_active() && !w.initializing();
                for from in [0, 1, 2] {
                    let expect =
                        (plain && c >= i64::from(from)).then(|| (c - i64::from(from)) as u64);
                    let got = w.active_offset(from);
                    match expect {
                        Some(e) => assert_eq!(got, e, "{w:?} from {from}"),
                        None => assert!(got >= 1 << 31, "{w:?} from {from}: {got}"),
                    }
                }
            }
        }
    }
}

// The reported count is 0 for any word that is not Active, whatever
// transients its count field holds.
#[test]
fn count_is_zero_unless_active() {
    let sw = StateWord::new();
    sw.force(Word::new(State::Released, 0, 2));
    sw.cell.word.fetch_add(3 * ONE, Ordering::Relaxed); // refused startups in flight
    assert_eq!(sw.load().count(), 0);
    assert_eq!(sw.load().signed_count(), 3);
    sw.force(Word::new(State::Active, 2, 2));
    assert_eq!(sw.load().count(), 2);
}

// Rule 1: a cleanup whose word left Active meanwhile (an unpaired
// cleanup flipped it) was not the last: it backs off at once.
#[test]
fn finish_last_backs_off_when_the_generation_ended_elsewhere() {
    let sw = StateWord::new();
    sw.force(Word::new(State::Active, 1, 3));
    let Leave::Last(last) = sw.leave() else {
        panic!()
    };
    sw.force(Word::new(State::Draining, 0, 3));
    assert_eq!(sw.finish_last(last), Last::Kept(0));
    sw.force(Word::new(State::Active, 0, 4)); // a later generation
    assert_eq!(sw.finish_last(last), Last::Kept(0));
}

// Rules 1 and 4: a transient -1 (an unpaired cleanup about to undo) is
// waited out, then the flip happens: never a "kept" count of -1.
#[test]
fn finish_last_waits_out_a_transient_minus_one() {
    let sw = std::sync::Arc::new(StateWord::new());
    sw.force(Word::new(State::Active, 1, 3));
    let Leave::Last(last) = sw.leave() else {
        panic!()
    };
    sw.cell.word.fetch_sub(ONE, Ordering::SeqCst); // the transient -1
    let undo = {
        let sw = sw.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            sw.cell.word.fetch_add(ONE, Ordering::SeqCst);
        })
    };
    assert_eq!(sw.finish_last(last), Last::Final);
    undo.join().unwrap();
    assert_eq!(sw.load(), Word::new(State::Draining, 0, 3));
}

// Rule 1: the flip happens only from exactly 0; a unit present makes the
// last cleanup a plain decrement.
#[test]
fn finish_last_flips_only_from_zero() {
    let sw = StateWord::new();
    sw.force(Word::new(State::Active, 1, 3));
    let Leave::Last(last) = sw.leave() else {
        panic!()
    };
    sw.cell.word.fetch_add(ONE, Ordering::Relaxed); // a startup joined first
    assert_eq!(sw.finish_last(last), Last::Kept(1));
    assert_eq!(sw.load(), Word::new(State::Active, 1, 3));
    let Leave::Last(last) = sw.leave() else {
        panic!()
    };
    assert!(sw.restore(last), "L11: the unit goes back");
    assert_eq!(sw.load(), Word::new(State::Active, 1, 3));
    let Leave::Last(last) = sw.leave() else {
        panic!()
    };
    assert_eq!(sw.finish_last(last), Last::Final);
    assert_eq!(sw.load(), Word::new(State::Draining, 0, 3));
    assert!(!sw.restore(last), "nothing to restore into once Draining");
    sw.publish_released(4);
    assert_eq!(sw.load(), Word::new(State::Released, 0, 4));
}

#[test]
fn fields_round_trip() {
    let w = Word::new(State::Active, MAX_COUNT, GEN_MASK);
    assert_eq!(w.state(), State::Active);
    assert_eq!(w.count(), MAX_COUNT);
    assert_eq!(w.generation(), GEN_MASK);
    assert_eq!(w.next_generation(), 0);
    let w = Word::new(State::Active, 1, 7).incremented();
    assert_eq!((w.count(), w.generation()), (2, 7));
    assert_eq!(w.decremented().count(), 1);
    let r = Word::new(State::Released, 0, 3).with_initializing(true);
    assert!(r.initializing());
    assert_eq!(r.state(), State::Released);
    assert!(!r.with_initializing(false).initializing());
    for s in [
        State::Uninitialized,
        State::Active,
        State::Draining,
        State::Released,
    ] {
        assert_eq!(Word::new(s, 0, 0).state(), s);
    }
}

// L4: a refusal says which state refused, and a
// cleanup in Released is one too many, where a use is one too late.
#[test]
fn l4_a_refusal_names_its_state() {
    use crate::NotActive;
    let at = |state| Word::new(state, 0, 3);
    assert_eq!(
        at(State::Uninitialized).refused_use(),
        NotActive::NeverStarted
    );
    assert_eq!(
        at(State::Uninitialized).refused_cleanup(),
        NotActive::NeverStarted
    );
    assert_eq!(at(State::Draining).refused_use(), NotActive::Draining);
    assert_eq!(at(State::Draining).refused_cleanup(), NotActive::Draining);
    assert_eq!(at(State::Released).refused_use(), NotActive::Released);
    assert_eq!(at(State::Released).refused_cleanup(), NotActive::Unpaired);
    assert_eq!(at(State::Active).refused_use(), NotActive::Released);
    assert_eq!(at(State::Active).refused_cleanup(), NotActive::Unpaired);
}

#[test]
fn o1_l16_an_entry_admits_only_active_in_its_lane_and_indexes_its_shards() {
    for g in [0, 1, 2, 3, 4, 5, 6, 7, GEN_MASK - 1, GEN_MASK] {
        let e = Entry::active_in(g);
        // The lane's first shard, where an enter on shard `s` counts at
        // `lane_base + s`.
        assert_eq!(e.lane_base(), lane_of(g) * SHARDS, "generation {g}");
        assert_eq!(e.lane(), lane_of(g));
        // Every shard's key, in this lane: one exclusive or.
        for shard in 0..SHARDS {
            assert_eq!(shard_key_of(shard_key_of(shard)), shard);
            assert_eq!(e.index(shard_key_of(shard)), lane_of(g) * SHARDS + shard);
        }
        // Any count, any transient, the same lane: admitted while Active.
        for count in [0, 1, 7, MAX_COUNT] {
            assert!(Word::new(State::Active, count, g).admits(e), "{g} {count}");
            assert!(Word::new(State::Active, count, g + LANES as u64).admits(e));
        }
        // Another state, or another lane: refused.
        for s in [State::Uninitialized, State::Draining, State::Released] {
            assert!(!Word::new(s, 1, g).admits(e), "{s} in {g}");
        }
        for other in 1..LANES as u64 {
            assert!(
                !Word::new(State::Active, 1, g + other).admits(e),
                "{g} + {other}"
            );
        }
    }
    // The hint before the first startup admits no word a lifecycle starts
    // with.
    assert!(!Word::UNINITIALIZED.admits(StateWord::new().entry()));
}
