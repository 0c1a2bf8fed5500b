//! A one-thread timer for in-memory example sockets: `wake_at(t, waker)`
//! wakes `waker` at `t`, rounded up to the next 1 ms tick (the resolution
//! of tokio's timer wheel). Wakers are kept per tick, and everything due in
//! a tick fires together: a thousand deadlines in one millisecond cost one
//! wake-up of the thread that waits for them. The timer thread sleeps until
//! the earliest tick, so a socket that waits for a time costs nothing until
//! then.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

/// The timer's resolution.
const TICK: Duration = Duration::from_millis(1);

struct Timer {
    origin: Instant,
    /// Tick number → wakers due then.
    due: Mutex<BTreeMap<u64, Vec<Waker>>>,
    cv: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            origin: Instant::now(),
            due: Mutex::new(BTreeMap::new()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("example timer".into())
            .spawn(move || t.run())
            .expect("timer thread");
        t
    })
}

impl Timer {
    fn tick_at(&self, tick: u64) -> Instant {
        self.origin + TICK * tick as u32
    }

    fn run(&self) {
        let mut due = self.due.lock().unwrap();
        loop {
            let now = Instant::now();
            let Some((&tick, _)) = due.first_key_value() else {
                due = self.cv.wait(due).unwrap();
                continue;
            };
            let at = self.tick_at(tick);
            if at > now {
                due = self.cv.wait_timeout(due, at - now).unwrap().0;
                continue;
            }
            let fire = due.pop_first().map(|(_, w)| w).unwrap_or_default();
            drop(due);
            fire.into_iter().for_each(Waker::wake);
            due = self.due.lock().unwrap();
        }
    }
}

/// Wakes `waker` at `at` (at the tick that contains it).
pub fn wake_at(at: Instant, waker: Waker) {
    let t = timer();
    let tick = at
        .saturating_duration_since(t.origin)
        .as_nanos()
        .div_ceil(TICK.as_nanos()) as u64;
    let mut due = t.due.lock().unwrap();
    let earliest = due.first_key_value().is_none_or(|(&first, _)| tick < first);
    due.entry(tick).or_default().push(waker);
    drop(due);
    if earliest {
        t.cv.notify_one();
    }
}
