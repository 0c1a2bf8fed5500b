//! Helper threads started through the operating system
//! ([L17](provider_lifecycle::contract#L17)): a provider DLL or shared
//! object passes [`os_spawner`] to
//! [`Config::with_spawner`](provider_lifecycle::Config::with_spawner) so that
//! starting its background flusher leaves nothing on the caller's thread.
//!
//! std's `thread::Builder::spawn` reads a thread-local of the *spawning*
//! thread (its spawn hooks) whose destructor is then registered on that
//! thread; glibc keeps a shared object mapped after `dlclose` while one of
//! its thread-exit destructors is pending on a live thread, so a host's main
//! thread that once made a background close would pin the provider in
//! memory for the life of the process. `pthread_create` registers nothing on
//! the caller. (On Windows a DLL's thread-local destructors run from its own
//! TLS callback, which `FreeLibrary` does not wait for, so std's spawner is
//! the right one there: [`os_spawner`] is `std_spawner` on Windows.)

use provider_lifecycle::{HelperJoin, HelperTask};

/// Starts `task` on a thread of the operating system's own
/// (`pthread_create` on Unix; `std::thread` on Windows) and returns how to
/// join it; `None` if no thread could be started.
///
/// ```
/// use provider_lifecycle::Config;
/// const CONFIG: Config = Config::new().with_spawner(provider_lifecycle_winsock::os_spawner);
/// # let _ = CONFIG;
/// ```
#[must_use]
pub fn os_spawner(task: HelperTask) -> Option<HelperJoin> {
    imp::spawn(task)
}

#[cfg(unix)]
mod imp {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use provider_lifecycle::{HelperJoin, HelperTask};

    /// The thread's entry: runs the task it owns.
    extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` is the Box::into_raw of a HelperTask that `spawn`
        // handed to exactly this thread.
        let task = unsafe { Box::from_raw(arg.cast::<HelperTask>()) };
        // A helper never unwinds (user code inside is called with panics
        // caught); an unwind must not cross this C frame regardless.
        let _ = catch_unwind(AssertUnwindSafe(move || task.run()));
        std::ptr::null_mut()
    }

    /// A started thread's id, to join once.
    struct Thread(libc::pthread_t);

    // SAFETY: a pthread id names the thread process-wide: any thread may
    // join it (once, which `HelperJoin` ensures).
    unsafe impl Send for Thread {}

    pub(super) fn spawn(task: HelperTask) -> Option<HelperJoin> {
        let arg = Box::into_raw(Box::new(task));
        let mut id: libc::pthread_t = 0;
        // SAFETY: `id` is writable; default attributes; `start` takes
        // ownership of `arg` only if the thread is created.
        let rc = unsafe { libc::pthread_create(&mut id, std::ptr::null(), start, arg.cast()) };
        if rc != 0 {
            // SAFETY: no thread was created, so `arg` is still ours.
            drop(unsafe { Box::from_raw(arg) });
            return None;
        }
        let thread = Thread(id);
        Some(HelperJoin::new(move || {
            let thread = thread;
            // SAFETY: a joinable thread created above, joined once (this
            // closure runs at most once).
            unsafe { libc::pthread_join(thread.0, std::ptr::null_mut()) };
        }))
    }
}

#[cfg(not(unix))]
mod imp {
    pub(super) use provider_lifecycle::std_spawner as spawn;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::time::Duration;

    use provider_lifecycle::HelperTask;

    // L13, L17: os_spawner runs the task on a thread of its own, and the
    // join returns only once the task has ended.
    #[test]
    fn l17_os_spawner_runs_the_task_on_its_own_thread_and_joins_it() {
        let caller = std::thread::current().id();
        let elsewhere = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (e, d) = (Arc::clone(&elsewhere), Arc::clone(&done));
        let task = HelperTask::new("spawn test", move || {
            std::thread::sleep(Duration::from_millis(20));
            e.store(std::thread::current().id() != caller, SeqCst);
            d.store(true, SeqCst);
        });
        let join = super::os_spawner(task).expect("a thread");
        join.join();
        assert!(done.load(SeqCst), "joined only after the task ended");
        assert!(elsewhere.load(SeqCst), "on another thread");
    }
}
