use super::shards::PARKED;
use super::*;
use crate::error::NotActive;
use crate::state::Word;
use std::sync::mpsc;
use std::time::Duration;

fn active() -> RawLifecycle {
    RawLifecycle::active_for_tests()
}

// O1: once the word says Draining, an enter fails even on a shard the
// drainer has not closed yet (the window between the flip and the
// closing of the shards).
#[test]
fn o1_enter_after_the_draining_flip_fails_on_an_open_shard() {
    let raw = active();
    assert!(raw.enter().is_ok_and(|(s, _)| {
        raw.leave(s);
        true
    }));
    assert!(raw.word.drain_for_tests());
    assert_eq!(
        raw.enter().err(),
        Some(Error::NotInitialised(NotActive::Draining))
    );
    assert_eq!(raw.guards(0), 0, "the refused enter was undone");
}

/// How many enters of this thread took the slow path so far.
fn slow_enters() -> u32 {
    super::shards::tests::SLOW_ENTERS.with(std::cell::Cell::get)
}

// O1, L16: the startup that publishes Active sets the entry hint to that
// generation's lane, and an enter under a current hint takes the fast
// path, counting on its shard of that lane.
#[test]
fn o1_l16_an_enter_under_a_current_hint_takes_the_fast_path() {
    let raw = active();
    assert_eq!(raw.word.entry(), raw.word.load().entry());
    let before = slow_enters();
    let (index, w) = raw.enter_on(crate::state::shard_key_of(5)).unwrap();
    assert_eq!(slow_enters(), before, "no slow path");
    assert_eq!(index, lane_of(w.generation()) * SHARDS + 5);
    raw.leave(index);
    // The same after a restart into the next lane.
    let crate::state::Leave::Last(last) = raw.word.leave() else {
        panic!("count 1");
    };
    let Ok(Begun::Final(frame)) = raw.begin_final(last) else {
        panic!("the last cleanup drains");
    };
    drop(frame);
    let Ok(Slow::Initialize(init)) = raw.startup_slow(StartupPolicy::Wait, None) else {
        panic!("Released initializes");
    };
    init.publish(Ok(Vec::new()));
    let (index, w) = raw.enter_on(crate::state::shard_key_of(7)).unwrap();
    assert_eq!(w.generation(), 1);
    assert_eq!(slow_enters(), before, "no slow path");
    assert_eq!(index, lane_of(1) * SHARDS + 7);
    raw.leave(index);
}

// O1, L16: the entry hint only picks where an enter counts first; the
// word decides. A hint naming another lane (a restart between the
// hint's read and the count) is undone and the guard counts in the
// word's lane; a hint still saying Active over a word that is not is
// refused with nothing left counted.
#[test]
fn o1_l16_a_stale_entry_hint_is_corrected_by_the_word() {
    let raw = active();
    let hinted = raw.word.entry().lane();
    // The word moves on to the next generation (another lane); the hint
    // still names the old one.
    let next = Word::new(State::Active, 1, 1);
    assert_ne!(lane_of(next.generation()), hinted);
    raw.word.force_word_only(next);
    let before = slow_enters();
    let (index, w) = raw.enter_on(crate::state::shard_key_of(5)).unwrap();
    assert_eq!(slow_enters(), before + 1, "the slow path");
    assert_eq!(w.generation(), 1);
    assert_eq!(index, lane_of(1) * SHARDS + 5, "counted in the word's lane");
    assert_eq!(raw.guards(hinted), 0, "the first count was undone");
    assert_eq!(raw.guards(lane_of(1)), 1);
    raw.leave(index);
    // The hint says Active; the word is Draining.
    raw.word.force_word_only(Word::new(State::Draining, 0, 1));
    assert_eq!(
        raw.enter().err(),
        Some(Error::NotInitialised(NotActive::Draining))
    );
    assert!((0..LANES).all(|lane| raw.guards(lane) == 0));
    // Before any startup the hint matches no word.
    let fresh = RawLifecycle::new(Config::new());
    assert_eq!(
        fresh.enter().err(),
        Some(Error::NotInitialised(NotActive::NeverStarted))
    );
    assert!((0..LANES).all(|lane| fresh.guards(lane) == 0));
}

// L2: an initialization abandoned by an unwind (its frame dropped
// without `publish`) puts the state back and lets the next startup in.
#[test]
fn l2_abandoned_initialization_puts_the_state_back() {
    let raw = RawLifecycle::new(Config::new());
    match raw.startup_slow(StartupPolicy::Wait, None) {
        Ok(Slow::Initialize(init)) => {
            assert!(raw.word.load().initializing());
            drop(init);
        }
        _ => panic!("a new lifecycle initializes"),
    }
    let w = raw.word.load();
    assert!(!w.initializing());
    assert_eq!(w.state(), State::Uninitialized);
    assert!(matches!(
        raw.startup_slow(StartupPolicy::NoWait, None),
        Ok(Slow::Initialize(_))
    ));
}

// A refused enter costs what a success does: it never takes the control
// mutex (a refusal that locked would block here, where the test holds it).
#[test]
fn refused_enter_takes_no_lock() {
    let raw = RawLifecycle::new(Config::new());
    let ctl = raw.control.lock();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..1000 {
                assert_eq!(
                    raw.enter().err(),
                    Some(Error::NotInitialised(NotActive::NeverStarted))
                );
            }
            let _ = tx.send(());
        });
        let done = rx.recv_timeout(Duration::from_secs(10));
        drop(ctl);
        assert!(done.is_ok(), "a refused enter waited for the control mutex");
    });
}

// Leavers wake the drainer only while it waits (PARKED): after the wait
// the bit is gone from every shard.
#[test]
fn parked_bit_lives_only_during_the_guard_wait() {
    let raw = active();
    let (shard, _) = raw.enter().unwrap();
    assert!(raw.word.drain_for_tests());
    let frame = Teardown {
        raw: &raw,
        active: Word::new(State::Active, 1, 0),
    };
    assert_eq!(frame.shut_out_guards(), 1);
    assert!(
        raw.lane(0)
            .iter()
            .all(|s| s.load(Ordering::Relaxed) & PARKED != 0)
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            raw.leave(shard);
        });
        assert!(
            frame.block_until_no_guards_or(std::time::Instant::now() + Duration::from_secs(3600))
        );
    });
    frame.unpark();
    assert!(
        raw.shards
            .iter()
            .all(|s| s.load(Ordering::Relaxed) & PARKED == 0)
    );
    drop(frame);
    assert_eq!(raw.word.load().state(), State::Released);
    assert_eq!(raw.word.load().generation(), 1);
}

// L16: a generation's guards count in its own lane; abandoning them
// keeps them out of every later generation's count, and their lane is
// reused only once they are gone.
#[test]
fn l16_abandoned_guards_never_count_in_a_later_generation() {
    let raw = active();
    let (old, w) = raw.enter().unwrap();
    assert_eq!(lane_at(old), lane_of(w.generation()));
    let crate::state::Leave::Last(last) = raw.word.leave() else {
        panic!("count 1");
    };
    let Ok(Begun::Final(frame)) = raw.begin_final(last) else {
        panic!("the last cleanup drains");
    };
    assert_eq!(frame.shut_out_guards(), 1);
    assert_eq!(frame.abandon(), 1);
    drop(frame);
    assert_eq!(raw.abandoned_lanes(), 1);
    // Generations 1, 2, 3 start and end in their own lanes; generation
    // 4 would be lane 0's again, still abandoned: it is skipped.
    for expected in 1..=5u64 {
        let Ok(Slow::Initialize(init)) = raw.startup_slow(StartupPolicy::Wait, None) else {
            panic!("Released initializes");
        };
        let g = init.generation();
        let expected = if expected >= 4 {
            expected + 1
        } else {
            expected
        };
        assert_eq!(g, expected, "lane 0 is skipped while its guard is out");
        init.publish(Ok(Vec::new()));
        let (index, _) = raw.enter().unwrap();
        assert_ne!(lane_at(index), lane_at(old));
        assert_eq!(
            raw.guards(lane_of(g)),
            1,
            "the abandoned guard is not counted"
        );
        raw.leave(index);
        let crate::state::Leave::Last(last) = raw.word.leave() else {
            panic!("count 1");
        };
        let Ok(Begun::Final(frame)) = raw.begin_final(last) else {
            panic!("the last cleanup drains");
        };
        assert_eq!(frame.shut_out_guards(), 0);
        assert!(frame.block_until_no_guards_or(std::time::Instant::now()));
        drop(frame);
    }
    // The abandoned guard leaves: its lane is free again.
    raw.leave(old);
    let Ok(Slow::Initialize(init)) = raw.startup_slow(StartupPolicy::Wait, None) else {
        panic!("Released initializes");
    };
    assert_eq!(
        init.generation(),
        7,
        "generation 7 (lane 3): lanes are taken in order"
    );
    init.publish(Ok(Vec::new()));
    assert_eq!(raw.abandoned_lanes(), 1, "lane 0 is freed when next needed");
}

// L16: with every lane holding abandoned guards, a startup is refused
// (10091) instead of counting among them; it succeeds once one leaves.
#[test]
fn l16_every_lane_abandoned_refuses_a_startup_until_one_empties() {
    let raw = active();
    let mut held = Vec::new();
    for _ in 0..LANES {
        let (index, _) = raw.enter().unwrap();
        held.push(index);
        let crate::state::Leave::Last(last) = raw.word.leave() else {
            panic!("count 1");
        };
        let Ok(Begun::Final(frame)) = raw.begin_final(last) else {
            panic!("the last cleanup drains");
        };
        frame.shut_out_guards();
        assert_eq!(frame.abandon(), 1);
        drop(frame);
        if held.len() < LANES {
            let Ok(Slow::Initialize(init)) = raw.startup_slow(StartupPolicy::Wait, None) else {
                panic!("a free lane is left");
            };
            init.publish(Ok(Vec::new()));
        }
    }
    assert_eq!(raw.abandoned_lanes(), LANES);
    let refused = raw.startup_slow(StartupPolicy::Wait, None).err();
    assert_eq!(refused.map(|e| e.wsa_code()), Some(10091));
    assert_eq!(raw.word.load().state(), State::Released);
    assert!(
        !raw.word.load().initializing(),
        "nothing was left half done"
    );
    raw.leave(held[1]);
    let Ok(Slow::Initialize(init)) = raw.startup_slow(StartupPolicy::Wait, None) else {
        panic!("lane 1 is free again");
    };
    assert_eq!(lane_of(init.generation()), lane_at(held[1]));
    init.publish(Ok(Vec::new()));
}
