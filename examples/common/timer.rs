//! A one-thread timer for in-memory example sockets: `wake_at(t, waker)`
//! wakes `waker` at `t`. The thread sleeps until the earliest deadline, so a
//! socket that waits for a time costs nothing until then.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

struct Timer {
    due: Mutex<BinaryHeap<Reverse<Entry>>>,
    cv: Condvar,
}

struct Entry(Instant, u64, Waker);

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            due: Mutex::new(BinaryHeap::new()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("example timer".into())
            .spawn(move || {
                let mut due = t.due.lock().unwrap();
                loop {
                    let now = Instant::now();
                    let mut fire = Vec::new();
                    while due.peek().is_some_and(|Reverse(e)| e.0 <= now) {
                        let Reverse(e) = due.pop().unwrap();
                        fire.push(e.2);
                    }
                    if !fire.is_empty() {
                        drop(due);
                        fire.into_iter().for_each(Waker::wake);
                        due = t.due.lock().unwrap();
                        continue;
                    }
                    due = match due.peek() {
                        Some(Reverse(e)) => {
                            let wait = e.0.saturating_duration_since(now);
                            t.cv.wait_timeout(due, wait).unwrap().0
                        }
                        None => t.cv.wait(due).unwrap(),
                    };
                }
            })
            .expect("timer thread");
        t
    })
}

/// Wakes `waker` at `at`.
pub fn wake_at(at: Instant, waker: Waker) {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = timer();
    let mut due = t.due.lock().unwrap();
    let earliest = due.peek().is_none_or(|Reverse(e)| at < e.0);
    due.push(Reverse(Entry(at, seq, waker)));
    drop(due);
    if earliest {
        t.cv.notify_one();
    }
}
