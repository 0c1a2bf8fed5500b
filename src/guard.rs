//! Operation guards ([O1](crate::contract#O1)–[O3](crate::contract#O3),
//! [L11](crate::contract#L11), [L15](crate::contract#L15)): the guard type
//! and its per-thread bookkeeping. The counting protocol lives in
//! `raw.rs`; the per-thread record in `thread.rs`.

use std::fmt;
use std::marker::PhantomData;

use crate::Error;
use crate::generation::{StateCell, StateCells, StateRef};
use crate::raw::RawLifecycle;
use crate::state::Word;
use crate::thread::{self, Held};

/// Proof that an operation is in flight: while it lives, the final cleanup
/// does not close a socket, release a resource or run prepare-to-unload
/// ([O2](crate::contract#O2)). Taken with
/// [`Lifecycle::enter`](crate::Lifecycle::enter).
///
/// # Guards and threads
///
/// A guard is `!Send`: it is counted on the thread that took it, and that
/// thread's record of held guards is what lets a final cleanup issued from
/// inside a guard fail with [`Error::InProgress`] instead of waiting for
/// itself ([L11](crate::contract#L11)), however many lifecycles the thread
/// holds guards of ([L15](crate::contract#L15)). A guard held by *another*
/// thread is simply waited for, after the provider's
/// [`cancel_pending`](crate::Provider::cancel_pending) hook has been asked
/// to unblock it. Work that completes on another thread takes its own guard
/// there. A `Wait`-policy startup issued while holding a guard during
/// Draining would wait for itself too; it fails with `InProgress`.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<provider_lifecycle::OperationGuard<'static>>();
/// ```
///
/// The guard is also the only way to the provider's per-generation state
/// ([`state`](OperationGuard::state)); `S` is the provider's
/// [`State`](crate::Provider::State).
///
/// A guard that is leaked (`mem::forget`) is never released: the final
/// cleanup then waits for it until its bound
/// ([`Config::with_guard_wait_limit`](crate::Config::with_guard_wait_limit);
/// forever by default), since freeing anything under it would break
/// rule [O2](crate::contract#O2); past the bound it abandons what the guard
/// may touch ([L16](crate::contract#L16)). The leak does not affect other lifecycles, even one later built
/// at the same address: threads key their records by a unique id.
#[must_use = "the operation is only protected while the guard lives"]
pub struct OperationGuard<'a, S = ()> {
    raw: &'a RawLifecycle,
    state: &'a StateCell<S>,
    shard: usize,
    generation: u64,
    held: Held,
    _not_send: PhantomData<*const ()>,
}

impl<'a, S> OperationGuard<'a, S> {
    /// Takes a guard if the state is Active ([O1](crate::contract#O1)); also returns the word seen.
    /// Always inlined: as a call, moving its result out costs a fifth of
    /// a provider call (benches/instructions.rs, `with_socket`).
    #[inline(always)]
    pub(crate) fn enter(
        raw: &'a RawLifecycle,
        states: &'a StateCells<S>,
    ) -> Result<(OperationGuard<'a, S>, Word), Error> {
        let (shard, w) = raw.enter_on(thread::shard_key_as_is())?;
        // Recorded after the count, so a refused enter records nothing;
        // nothing can ask this thread's record in between.
        let held = thread::hold(raw.active_id());
        Ok((
            OperationGuard {
                raw,
                state: states.at(shard),
                shard,
                generation: w.generation(),
                held,
                _not_send: PhantomData,
            },
            w,
        ))
    }

    /// The provider's state for this generation, as its
    /// [`initialize`](crate::Provider::initialize) built it. The guard keeps
    /// it alive: the final cleanup drops it only after every guard and token
    /// is gone ([O2](crate::contract#O2)).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = String;
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<String, Error> { Ok("pool".to_owned()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let guard = l.enter()?;
    /// assert_eq!(*guard.state(), "pool"); // what `initialize` built
    /// # drop(guard);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn state(&self) -> StateRef<'_, S> {
        self.state.read(self.shard)
    }

    /// The generation this guard's operation runs in (it cannot end while
    /// the guard lives, unless a bounded final cleanup abandoned the guard:
    /// [L16](crate::contract#L16)).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let guard = l.enter()?;
    /// assert_eq!(guard.generation(), l.generation());
    /// # drop(guard);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this guard was taken from `raw`.
    pub(crate) fn is_of(&self, raw: &RawLifecycle) -> bool {
        std::ptr::eq(self.raw, raw)
    }
}

impl<S> Drop for OperationGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        thread::unhold(|| self.raw.id(), self.held);
        self.raw.leave(self.shard);
    }
}

impl<S> fmt::Debug for OperationGuard<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationGuard")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

/// An owned, `Send` operation guard ([O4](crate::contract#O4)): the same
/// guarantees as [`OperationGuard`] ([O1](crate::contract#O1),
/// [O2](crate::contract#O2): while it lives the final cleanup frees
/// nothing, and the drain counts it exactly), but it can cross threads and
/// `.await` points, so work handed to a pool or an async task can carry
/// it. Taken with [`Lifecycle::token`](crate::Lifecycle::token); for a
/// `static` lifecycle it is `'static`.
///
/// Its holder can learn that the final cleanup has begun: cheaply with
/// [`is_draining`](OperationToken::is_draining) (one load), or by waiting
/// with [`cancelled`](OperationToken::draining) (a future) or
/// [`wait_draining`](OperationToken::wait_draining) (blocking). The
/// signal fires at the final cleanup's cancel step, right after the flip to
/// Draining and before the drain waits for guards and tokens
/// ([L6.1](crate::contract#L6.1)); it is silent to the application.
///
/// # Tokens and L11
///
/// A token is not tied to a thread, so holding one does not by itself mark
/// the thread that runs its work. Run that work *in the token's scope* and
/// [L11](crate::contract#L11) holds exactly as for a guard: a final cleanup
/// issued there, blocking or async, answers [`Error::InProgress`] instead
/// of waiting for the token it runs under.
///
/// - [`track`](OperationToken::track) wraps a future (the
///   `TaskTracker::track_future` shape): every `poll` of it runs in scope;
/// - [`scope`](OperationToken::scope) runs a closure in scope, for work
///   handed to a thread pool.
///
/// Outside a scope the token is simply waited for, like a guard held by
/// another thread: a task that keeps a bare token and awaits the final
/// cleanup waits for itself. The scope costs what a guard's own
/// bookkeeping costs (a per-thread table entry), so take a guard instead of
/// a token where the work stays on one thread.
///
/// The token also reaches the provider's per-generation state
/// ([`state`](OperationToken::state)).
///
/// ```
/// # use provider_lifecycle::*;
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = NoSocket;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let token = l.token()?; // Send: it may cross threads
/// std::thread::scope(|s| {
///     s.spawn(move || {
///         let _state = token.state();
///         // ... the operation; the token is dropped at its end
///     });
/// });
/// assert!(l.cleanup()?.is_final());
/// # Ok::<(), Error>(())
/// ```
#[must_use = "the operation is only protected while the token lives"]
pub struct OperationToken<'a, S = ()> {
    raw: &'a RawLifecycle,
    state: &'a StateCell<S>,
    shard: usize,
    generation: u64,
}

impl<'a, S> OperationToken<'a, S> {
    /// Takes a token if the state is Active (O1).
    pub(crate) fn enter(
        raw: &'a RawLifecycle,
        states: &'a StateCells<S>,
    ) -> Result<OperationToken<'a, S>, Error> {
        let (shard, w) = raw.enter()?;
        Ok(OperationToken {
            raw,
            state: states.at(shard),
            shard,
            generation: w.generation(),
        })
    }

    /// The provider's state for this generation (see
    /// [`OperationGuard::state`]).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = u32;
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<u32, Error> { Ok(7) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.token()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(move || assert_eq!(*token.state(), 7)); // tokens are Send
    /// });
    /// # Ok::<(), Error>(())
    /// ```
    pub fn state(&self) -> StateRef<'_, S> {
        self.state.read(self.shard)
    }

    /// Runs `f` in this token's scope: a final cleanup of the same
    /// lifecycle issued inside it answers [`Error::InProgress`]
    /// ([L11](crate::contract#L11)) instead of waiting for the token.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = String;
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<String, Error> { Ok("pool".to_owned()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.token()?;
    /// // A final cleanup inside the token's scope would wait for the token
    /// // forever; it answers InProgress instead (L11).
    /// assert_eq!(token.scope(|| l.cleanup()).err(), Some(Error::InProgress));
    /// drop(token);
    /// assert!(l.cleanup()?.is_final());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _scope = Scope::enter(self.raw);
        f()
    }

    /// Wraps `future` so that it owns this token and every `poll` of it runs
    /// in the token's scope (see [`scope`](OperationToken::scope)): a
    /// `cleanup_async` awaited inside it answers `InProgress` rather than
    /// wait for the token forever. The token is released when the wrapper is
    /// dropped.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(l.token()?.track(async {
    ///     // A cleanup awaited in here would wait for this very token: it
    ///     // answers InProgress instead (L11).
    ///     assert_eq!(l.cleanup_async().await.err(), Some(Error::InProgress));
    /// }));
    /// assert!(l.cleanup()?.is_final()); // the token went with the future
    /// # Ok::<(), Error>(())
    /// ```
    pub fn track<F: std::future::Future>(self, future: F) -> Tracked<'a, F, S> {
        Tracked {
            token: self,
            future,
        }
    }

    /// The generation this token's operation runs in.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.token()?;
    /// assert_eq!(token.generation(), 0);
    /// # drop(token);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the final cleanup of this token's generation has begun: it
    /// drains, or is over (one load of the state word). Not a cancellation
    /// anyone requested, as a `CancellationToken`'s is: the lifecycle's
    /// last cleanup is what ends the generation. It only ever turns from
    /// `false` to `true`: a later generation is never taken for this one,
    /// even for a token a bounded guard wait abandoned
    /// ([L16](crate::contract#L16)).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = String;
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<String, Error> { Ok("pool".to_owned()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.token()?;
    /// assert!(!token.is_draining()); // Active: keep working
    /// # drop(token);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn is_draining(&self) -> bool {
        !self.raw.is_active_in(Some(self.generation))
    }

    /// A future that completes when the final cleanup has begun (at its
    /// cancel step). Runtime-agnostic (plain `std::task`).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.token()?;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// std::thread::scope(|s| {
    ///     let cleanup = s.spawn(|| l.cleanup());
    ///     rt.block_on(async {
    ///         token.draining().await; // the final cleanup began: wind down
    ///     });
    ///     drop(token); // the cleanup was waiting for it
    ///     assert!(cleanup.join().unwrap().unwrap().is_final());
    /// });
    /// # Ok::<(), Error>(())
    /// ```
    pub fn draining(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        DrainBegun::new(self.raw, self.generation)
    }

    /// Blocks the calling thread until the final cleanup has begun.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.token()?;
    /// std::thread::scope(|s| {
    ///     let cleanup = s.spawn(|| l.cleanup());
    ///     token.wait_draining(); // returns once the final cleanup began
    ///     drop(token);
    ///     assert!(cleanup.join().unwrap().unwrap().is_final());
    /// });
    /// # Ok::<(), Error>(())
    /// ```
    pub fn wait_draining(&self) {
        wait_draining(self.raw, self.generation);
    }
}

/// Blocks the calling thread until the final cleanup of `raw` has begun.
pub(crate) fn wait_draining(raw: &RawLifecycle, generation: u64) {
    let signal = std::sync::Arc::new(Signal::default());
    let waker = std::task::Waker::from(std::sync::Arc::clone(&signal));
    let mut key = None;
    loop {
        if let Some(k) = key.take() {
            raw.forget_cancel(k);
        }
        match raw.on_cancel(waker.clone(), Some(generation)) {
            None => return,
            Some(k) => key = Some(k),
        }
        signal.wait();
    }
}

impl<S> Drop for OperationToken<'_, S> {
    #[inline]
    fn drop(&mut self) {
        // The shard it was counted on, whichever thread drops it.
        self.raw.leave(self.shard);
    }
}

impl<S> fmt::Debug for OperationToken<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationToken")
            .field("generation", &self.generation)
            .field("cancelled", &self.is_draining())
            .finish_non_exhaustive()
    }
}

/// Marks the current thread as inside an operation of `raw` (L11) until
/// dropped, unwinding included.
pub(crate) struct Scope<'a> {
    raw: &'a RawLifecycle,
    held: Held,
}

impl<'a> Scope<'a> {
    pub(crate) fn enter(raw: &'a RawLifecycle) -> Scope<'a> {
        Scope {
            raw,
            held: thread::hold(raw.id()),
        }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        thread::unhold(|| self.raw.id(), self.held);
    }
}

pin_project_lite::pin_project! {
    /// A future that owns an [`OperationToken`] and polls its inner future
    /// in the token's scope ([L11](crate::contract#L11)); from
    /// [`OperationToken::track`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<'a, F, S = ()> {
        token: OperationToken<'a, S>,
        #[pin]
        future: F,
    }
}

impl<F: std::future::Future, S> std::future::Future for Tracked<'_, F, S> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _scope = Scope::enter(this.token.raw);
        this.future.poll(cx)
    }
}

impl<F, S> fmt::Debug for Tracked<'_, F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// A waker a thread blocks on. Not `std::thread::park`: that needs
/// `thread::current()`, which on a thread std did not start (a host's)
/// registers a thread-exit destructor (L17).
#[derive(Default)]
struct Signal {
    woken: crate::sync::Mutex<bool>,
    cv: crate::sync::Condvar,
}

impl Signal {
    /// Blocks until woken since the last wait.
    fn wait(&self) {
        let mut woken = self.woken.lock();
        while !*woken {
            woken = self.cv.wait(woken);
        }
        *woken = false;
    }
}

impl std::task::Wake for Signal {
    fn wake(self: std::sync::Arc<Self>) {
        *self.woken.lock() = true;
        self.cv.notify_all();
    }
}

/// The future of [`OperationToken::draining`].
pub(crate) struct DrainBegun<'a> {
    raw: &'a RawLifecycle,
    generation: u64,
    key: Option<u64>,
}

impl<'a> DrainBegun<'a> {
    pub(crate) fn new(raw: &'a RawLifecycle, generation: u64) -> DrainBegun<'a> {
        DrainBegun {
            raw,
            generation,
            key: None,
        }
    }
}

impl std::future::Future for DrainBegun<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(k) = self.key.take() {
            self.raw.forget_cancel(k);
        }
        match self
            .raw
            .on_cancel(cx.waker().clone(), Some(self.generation))
        {
            None => std::task::Poll::Ready(()),
            Some(k) => {
                self.key = Some(k);
                std::task::Poll::Pending
            }
        }
    }
}

impl Drop for DrainBegun<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.raw.forget_cancel(k);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn active() -> RawLifecycle {
        RawLifecycle::active_for_tests()
    }

    static NO_STATE: StateCells<()> = StateCells::new();

    // O4: a `draining()` future that is polled and dropped (a select loop)
    // leaves no waker behind; re-polling one replaces its registration.
    #[test]
    fn o4_cancelled_futures_do_not_pile_up_wakers() {
        let raw = active();
        let token = OperationToken::enter(&raw, &NO_STATE).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut f = std::pin::pin!(token.draining());
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(raw.cancel_waiters(), 1, "one registration per live future");
        }
        assert_eq!(raw.cancel_waiters(), 0, "dropped futures forget theirs");
        assert!(!token.is_draining());
    }

    // O4, S6: registrations are forgotten one by one: dropping one waiter
    // leaves the others registered (each has its own key).
    #[test]
    fn o4_each_waiter_forgets_only_its_own_registration() {
        let raw = active();
        let token = OperationToken::enter(&raw, &NO_STATE).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut a = Box::pin(token.draining());
        let mut b = Box::pin(token.draining());
        let mut c = Box::pin(token.draining());
        for f in [&mut a, &mut b, &mut c] {
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
        }
        assert_eq!(raw.cancel_waiters(), 3);
        drop(b);
        assert_eq!(raw.cancel_waiters(), 2, "only b's registration went");
        assert_eq!(a.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(
            raw.cancel_waiters(),
            2,
            "a re-registered in place of its own"
        );
        drop((a, c));
        assert_eq!(raw.cancel_waiters(), 0);
    }
}
