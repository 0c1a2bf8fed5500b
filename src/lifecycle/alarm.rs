//! The async final cleanup's one timer ([L13](crate::contract#L13)): a
//! helper thread that wakes a task at a deadline.

use std::time::Instant;

/// A helper thread that wakes a task at a deadline: the one timer a
/// runtime-agnostic future needs (the drain's socket deadlines). Started on
/// first use, joined when dropped (L13).
#[cfg(not(loom))]
pub(crate) struct Alarm {
    shared: Option<std::sync::Arc<AlarmShared>>,
    thread: Option<crate::sync::JoinHandle>,
    spawner: crate::Spawner,
}

#[cfg(not(loom))]
struct AlarmShared {
    state: crate::sync::Mutex<(Option<(Instant, std::task::Waker)>, bool)>,
    cv: crate::sync::Condvar,
}

#[cfg(not(loom))]
impl Alarm {
    pub(crate) fn new(spawner: crate::Spawner) -> Alarm {
        Alarm {
            shared: None,
            thread: None,
            spawner,
        }
    }

    /// Wakes `task` at `at` (replacing any earlier setting).
    pub(crate) fn set(&mut self, at: Instant, task: &std::task::Waker) {
        let shared = self.shared.get_or_insert_with(|| {
            std::sync::Arc::new(AlarmShared {
                state: crate::sync::Mutex::new((None, false)),
                cv: crate::sync::Condvar::new(),
            })
        });
        shared.state.lock().0 = Some((at, task.clone()));
        shared.cv.notify_all();
        if self.thread.is_none() {
            let shared = std::sync::Arc::clone(shared);
            self.thread = crate::sync::spawn(self.spawner, "provider-lifecycle alarm", move || {
                let mut state = shared.state.lock();
                loop {
                    if state.1 {
                        return;
                    }
                    match state.0.take() {
                        None => state = shared.cv.wait(state),
                        Some((at, task)) if Instant::now() >= at => {
                            drop(state);
                            task.wake();
                            state = shared.state.lock();
                        }
                        Some((at, task)) => {
                            state.0 = Some((at, task));
                            state = shared.cv.wait_until(state, at);
                        }
                    }
                }
            });
        }
    }
}

#[cfg(not(loom))]
impl Drop for Alarm {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.state.lock().1 = true;
            shared.cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            t.join();
        }
    }
}
