use super::*;

// D1: two reports are equal exactly when every public field is (the
// lookup index, built on demand, is not part of a report's value).
#[test]
fn d1_reports_compare_by_every_field_and_not_by_their_index() {
    let base = DrainReport::default();
    let line = plain_line(1);
    let changes: Vec<fn(&mut DrainReport)> = vec![
        |r| r.generation = 1,
        |r| r.operations.cancelled = 1,
        |r| r.sockets.push(plain_line(1)),
        |r| r.closed_clean = 1,
        |r| r.summarized.sockets = 1,
        |r| r.flushed_in_background.sockets = 1,
        |r| r.state = HookOutcome::Abandoned,
        |r| {
            r.resources.push(ResourceReport {
                name: "r".into(),
                outcome: HookOutcome::Ok,
            })
        },
        |r| r.prepare_unload = HookOutcome::Failed("x".into()),
        |r| r.deadline_hit = true,
        |r| r.timings.total = Duration::from_secs(1),
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut other = base.clone();
        change(&mut other);
        assert_ne!(base, other, "field {i} is compared");
        assert_eq!(other.clone(), other);
    }
    let mut indexed = base.clone();
    indexed.sockets.push(line.clone());
    let plain = indexed.clone();
    assert!(indexed.socket(line.handle).is_some(), "builds the index");
    assert_eq!(indexed, plain, "the index is not compared");
}

// D1: the totals add every part: lines, summarized closes and closes
// that delivered everything while Active.
#[test]
fn d1_byte_totals_add_every_part() {
    let mut r = DrainReport::default();
    r.sockets.push(SocketReport {
        bytes_flushed: 5,
        bytes_discarded: 2,
        ..plain_line(1)
    });
    r.summarized = SummarizedSockets {
        sockets: 1,
        bytes_flushed: 7,
        bytes_discarded: 3,
    };
    r.flushed_in_background = SummarizedSockets {
        sockets: 2,
        bytes_flushed: 11,
        bytes_discarded: 0,
    };
    assert_eq!(r.bytes_flushed(), 23);
    assert_eq!(r.bytes_discarded(), 5);
}

// D1: a lookup never answers with another socket's line, even when the
// public `sockets` changed after the index was built.
#[test]
fn d1_socket_lookup_survives_a_changed_line_list() {
    let mut r = DrainReport {
        sockets: vec![plain_line(1), plain_line(2)],
        ..DrainReport::default()
    };
    assert_eq!(
        r.socket(SocketHandle::from_raw(2)).unwrap().handle.to_raw(),
        2
    );
    r.sockets.swap(0, 1);
    assert_eq!(
        r.socket(SocketHandle::from_raw(2)).unwrap().handle.to_raw(),
        2
    );
    assert_eq!(
        r.socket(SocketHandle::from_raw(1)).unwrap().handle.to_raw(),
        1
    );
    assert!(r.socket(SocketHandle::from_raw(3)).is_none());
}

// D1: the readable report shows each part exactly when it has something
// to say.
#[test]
fn d1_the_readable_report_shows_what_happened_and_only_that() {
    let quiet = DrainReport::default().to_string();
    for absent in [
        "abandoned",
        "handle",
        "; abort",
        "; release",
        "background closes",
        "closed cleanly",
        "provider state",
    ] {
        assert!(!quiet.contains(absent), "{absent} in {quiet}");
    }
    let mut r = DrainReport::default();
    r.operations.abandoned = 2;
    let mut bad = plain_line(1);
    bad.faults = Some(Box::new(SocketFaults {
        error: None,
        abort: HookOutcome::Failed("no abort".into()),
        release: HookOutcome::Failed("no release".into()),
    }));
    r.sockets = vec![bad, plain_line(2)];
    r.flushed_in_background.sockets = 3;
    r.summarized.sockets = 4;
    r.closed_clean = 5;
    r.state = HookOutcome::Panicked("boom".into());
    let text = r.to_string();
    for present in [
        "2 operations still in flight",
        "handle",
        "; abort failed: no abort",
        "; release failed: no release",
        "and 3 background closes",
        "and 4 more background closes",
        "and 5 idle sockets that closed cleanly",
        "provider state: panicked: boom",
    ] {
        assert!(text.contains(present), "{present} missing in {text}");
    }
    assert_eq!(text.matches("; abort").count(), 1, "only the failed line");
}

fn plain_line(raw: u64) -> SocketReport {
    SocketReport {
        handle: SocketHandle::from_raw(raw),
        linger: Linger::Abort,
        phase: SocketPhase::Open,
        bytes_flushed: 0,
        bytes_discarded: 0,
        outcome: SocketOutcome::Reset,
        aborted_operations: 0,
        faults: None,
    }
}

// D1: every outcome has its own text in a report.
#[test]
fn d1_every_socket_outcome_reads_differently() {
    let all = [
        SocketOutcome::Flushed,
        SocketOutcome::Reset,
        SocketOutcome::Deadline,
        SocketOutcome::LingerTimeout,
        SocketOutcome::Failed,
        SocketOutcome::Panicked,
        SocketOutcome::Cancelled,
        SocketOutcome::Background,
        SocketOutcome::Retained,
        SocketOutcome::Abandoned,
    ];
    let texts: std::collections::BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), all.len(), "{texts:?}");
    assert!(texts.iter().all(|t| !t.is_empty()));
}

// D1 (third-round reading): a line is owed to a socket with something to
// say; one that was flushed or reset with no byte moved or lost, no fault
// and no aborted operation is counted instead.
#[test]
fn d1_only_sockets_with_something_to_say_owe_a_line() {
    let mut r = DrainReport::default();
    r.record(plain_line(1));
    let mut flushed = plain_line(2);
    flushed.outcome = SocketOutcome::Flushed;
    r.record(flushed);
    assert_eq!((r.sockets.len(), r.closed_clean), (0, 2));
    let owed: Vec<fn(&mut SocketReport)> = vec![
        |l| l.bytes_flushed = 1,
        |l| l.bytes_discarded = 1,
        |l| l.aborted_operations = 1,
        |l| l.outcome = SocketOutcome::Deadline,
        |l| l.outcome = SocketOutcome::Failed,
        |l| {
            l.faults = Some(Box::new(SocketFaults {
                error: None,
                abort: HookOutcome::Ok,
                release: HookOutcome::Failed("no".into()),
            }))
        },
    ];
    for (i, change) in owed.iter().enumerate() {
        let mut line = plain_line(10 + i as u64);
        change(&mut line);
        r.record(line);
        assert_eq!(r.sockets.len(), i + 1, "change {i} owes a line");
    }
    assert_eq!(r.closed_clean, 2);
}
