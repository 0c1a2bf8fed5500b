use super::*;
use crate::deadline::far;
use crate::report::SocketOutcome;
use std::time::Duration;

// L6.3: a linger timeout later than the drain deadline loses to it (the
// cleanup keeps its deadline); at the same instant the drain's wins too.
#[test]
fn l6_3_the_earlier_of_linger_and_drain_deadline_bounds_a_flush() {
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    let (e, _, _) = gate();
    let e = e.bound(Some(later), now);
    assert_eq!(
        (e.deadline, e.deadline_outcome),
        (now, SocketOutcome::Deadline)
    );
    let (e, _, _) = gate();
    let e = e.bound(Some(now), later);
    assert_eq!(
        (e.deadline, e.deadline_outcome),
        (now, SocketOutcome::LingerTimeout)
    );
    let (e, _, _) = gate();
    let e = e.bound(Some(now), now);
    assert_eq!(
        e.deadline_outcome,
        SocketOutcome::Deadline,
        "a tie is the drain's"
    );
    let (e, _, _) = gate();
    assert_eq!(e.bound(None, now).deadline_outcome, SocketOutcome::Deadline);
}

// L6.3: adopting the background's endings, the drain deadline bounds
// each (a tie is the drain's, as in `bound`); a later one changes none.
#[test]
fn l6_3_the_drain_deadline_bounds_adopted_endings() {
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    for (drain, expected) in [
        (now, SocketOutcome::Deadline),
        (later, SocketOutcome::Deadline),
        (later + Duration::from_secs(1), SocketOutcome::LingerTimeout),
    ] {
        let mut f = Flusher::new();
        let (e, _, _) = gate();
        f.push(e.bound(Some(later), far()));
        f.bound_all(drain);
        let ending = &f.slots.iter().flatten().next().unwrap().ending;
        assert_eq!(ending.deadline_outcome, expected, "{drain:?}");
        assert_eq!(ending.deadline, drain.min(later));
    }
}

// S5: an async drain asking whether to sleep is told not to when a wake
// is already queued (else it would sleep on it until its deadline).
#[test]
fn s5_a_queued_wake_keeps_the_async_drain_awake() {
    let q = ReadyQueue::new();
    assert!(!q.woken_or_register(Waker::noop()), "nothing queued: sleep");
    q.push(0, 1);
    assert!(q.woken_or_register(Waker::noop()), "a wake is queued");
    let q = ReadyQueue::new();
    q.interrupt();
    assert!(q.woken_or_register(Waker::noop()), "interrupted");
}

/// Releases with the given outcome; its `Drop` panics.
struct Exploding(bool);

impl Socket for Exploding {
    fn unsent(&self) -> u64 {
        0
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), crate::BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), crate::BoxError> {
        Ok(())
    }
    fn release(&mut self) -> Result<(), crate::BoxError> {
        if self.0 {
            Ok(())
        } else {
            Err("release failed".into())
        }
    }
}

impl Drop for Exploding {
    fn drop(&mut self) {
        panic!("drop exploded");
    }
}

// L14, S2: a panicking `Drop` is the release's outcome only if the
// release itself went well; a failed release keeps its own report.
#[test]
fn l14_a_failed_release_is_not_hidden_by_a_panicking_drop() {
    let ok_then_panic = release_and_drop(Exploding(true));
    assert!(
        matches!(&ok_then_panic, HookOutcome::Panicked(p) if p.contains("drop exploded")),
        "{ok_then_panic:?}"
    );
    let failed = release_and_drop(Exploding(false));
    assert_eq!(failed, HookOutcome::Failed("release failed".into()));
}

/// Pending until `open`; counts polls; leaves its waker.
struct Gate {
    open: bool,
    polls: Arc<std::sync::atomic::AtomicUsize>,
    waker: Arc<std::sync::Mutex<Option<Waker>>>,
}

impl Socket for Gate {
    fn unsent(&self) -> u64 {
        u64::from(!self.open)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), crate::BoxError>> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.open {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
    fn abort(&mut self) -> Result<(), crate::BoxError> {
        Ok(())
    }
}

fn gate() -> (
    Ending<Gate>,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::Mutex<Option<Waker>>>,
) {
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let waker = Arc::new(std::sync::Mutex::new(None));
    let socket = Gate {
        open: false,
        polls: polls.clone(),
        waker: waker.clone(),
    };
    (
        Ending::new(SocketHandle::from_raw(1), socket, Linger::Background, 1),
        polls,
        waker,
    )
}

// S5: wakes between two polls coalesce into one queue entry, one poll.
#[test]
fn s5_wakes_before_the_next_poll_coalesce() {
    let mut f = Flusher::new();
    let (ending, polls, waker) = gate();
    f.push(ending);
    f.pass(&mut |_| panic!("still pending"));
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let w = waker.lock().unwrap().clone().unwrap();
    for _ in 0..3 {
        w.wake_by_ref();
    }
    assert_eq!(
        f.queue.state.lock().woken.len(),
        1,
        "three wakes, one entry"
    );
    f.pass(&mut |_| panic!("still pending"));
    assert_eq!(
        polls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one poll"
    );
    f.pass(&mut |_| panic!("not woken"));
    assert_eq!(
        polls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "not woken: no poll"
    );
}

// S5, S2: a waker of a finished ending, fired after its slot was reused
// by another ending, polls neither.
#[test]
fn s5_stale_wake_of_a_reused_slot_polls_nothing() {
    use std::sync::atomic::Ordering::SeqCst;
    let mut f = Flusher::new();
    let mut lines = Vec::new();
    let (a, polls_a, waker_a) = gate();
    let soon = Instant::now() + Duration::from_millis(20);
    f.push(a.bound(None, soon));
    f.pass(&mut |l| lines.push(l));
    assert_eq!(polls_a.load(SeqCst), 1);
    let stale = waker_a.lock().unwrap().clone().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    f.pass(&mut |l| lines.push(l));
    assert_eq!(lines.len(), 1, "the first ending met its deadline");
    assert_eq!(lines[0].outcome, SocketOutcome::Deadline);

    let (b, polls_b, _) = gate();
    f.push(b);
    assert_eq!(f.slots.len(), 1, "the slot was reused");
    f.pass(&mut |l| lines.push(l));
    assert_eq!(polls_b.load(SeqCst), 1);
    stale.wake();
    f.pass(&mut |l| lines.push(l));
    assert_eq!(
        polls_a.load(SeqCst),
        1,
        "the finished one is never polled again"
    );
    assert_eq!(polls_b.load(SeqCst), 1, "the new one was not woken");
    assert_eq!(lines.len(), 1);
}
