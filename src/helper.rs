//! Helper threads the lifecycle starts — the background flusher
//! ([S4](crate::contract#S4)) and the async cleanup's timer — and who starts
//! them. Every helper is joined before the final cleanup returns
//! ([L13](crate::contract#L13)).
//!
//! By default ([`std_spawner`]) a helper is a `std::thread`. A provider that
//! is a library a host loads and unloads (a Winsock provider DLL, a plug-in
//! `dlopen`ed and `dlclose`d) may pass its own [`Spawner`] with
//! [`Config::with_spawner`](crate::Config::with_spawner): std's spawn
//! registers a thread-exit callback on the *calling* thread (its spawn-hook
//! list), and while a library's callback is pending on a live thread, glibc
//! keeps the library mapped after `dlclose` ([L17](crate::contract#L17)).
//! A spawner that starts the thread through the operating system directly
//! (the Winsock crate's `os_spawner` does, with `pthread_create`) leaves
//! nothing on the caller's thread.

use std::fmt;

/// A helper the lifecycle wants run on a thread of its own.
///
/// ```
/// use provider_lifecycle::{HelperJoin, HelperTask};
/// let task = HelperTask::new("demo", || println!("on the helper thread"));
/// assert_eq!(task.name(), "demo");
/// let handle = std::thread::spawn(move || task.run());
/// let join = HelperJoin::new(move || {
///     let _ = handle.join();
/// });
/// join.join(); // what the lifecycle does before a final cleanup returns
/// ```
pub struct HelperTask {
    name: &'static str,
    run: Box<dyn FnOnce() + Send + 'static>,
}

impl HelperTask {
    /// A task named `name` running `run` (the lifecycle makes its own; a
    /// [`Spawner`]'s tests make theirs).
    pub fn new(name: &'static str, run: impl FnOnce() + Send + 'static) -> HelperTask {
        HelperTask {
            name,
            run: Box::new(run),
        }
    }

    /// The helper's name (for the thread's name).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the helper to its end, on the calling thread (the new one). It
    /// never unwinds: user code inside is called with panics caught.
    pub fn run(self) {
        (self.run)();
    }
}

impl fmt::Debug for HelperTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperTask")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How to wait for a started helper thread to end.
///
/// ```
/// use provider_lifecycle::HelperJoin;
/// let handle = std::thread::spawn(|| {});
/// let join = HelperJoin::new(move || {
///     let _ = handle.join();
/// });
/// join.join(); // blocks until the thread has ended
/// ```
pub struct HelperJoin(Box<dyn FnOnce() + Send + 'static>);

impl HelperJoin {
    /// Wraps the function that blocks until the thread has ended.
    pub fn new(join: impl FnOnce() + Send + 'static) -> HelperJoin {
        HelperJoin(Box::new(join))
    }

    /// Blocks until the helper thread has ended.
    pub fn join(self) {
        (self.0)();
    }
}

impl fmt::Debug for HelperJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperJoin").finish_non_exhaustive()
    }
}

/// Starts `task` on a new thread (which calls [`HelperTask::run`]) and
/// returns how to join it, or `None` if no thread could be started (the
/// lifecycle then makes the same progress another way: background closes
/// finish at [`Lifecycle::poll_background`](crate::Lifecycle::poll_background) or
/// the final cleanup).
///
/// ```
/// use provider_lifecycle::{Config, HelperJoin, HelperTask};
///
/// fn counted(task: HelperTask) -> Option<HelperJoin> {
///     let thread = std::thread::Builder::new()
///         .name(task.name().to_owned())
///         .spawn(move || task.run())
///         .ok()?;
///     Some(HelperJoin::new(move || {
///         let _ = thread.join();
///     }))
/// }
/// const CONFIG: Config = Config::new().with_spawner(counted);
/// # let _ = CONFIG;
/// ```
pub type Spawner = fn(HelperTask) -> Option<HelperJoin>;

/// The default [`Spawner`]: a named `std::thread`.
#[must_use]
pub fn std_spawner(task: HelperTask) -> Option<HelperJoin> {
    let thread = std::thread::Builder::new()
        .name(task.name().to_owned())
        .spawn(move || task.run())
        .ok()?;
    Some(HelperJoin::new(move || {
        // The helper never unwinds (user code runs with panics caught).
        let _ = thread.join();
    }))
}
