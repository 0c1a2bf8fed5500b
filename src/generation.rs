//! The provider's per-generation state ([`Provider::State`](crate::Provider::State)):
//! built by `initialize`, reachable only through a live guard or token
//! ([O1](crate::contract#O1) enforced by types), dropped by the final cleanup
//! after the sockets and before the registered resources.
//!
//! Each guard lane ([`LANES`](crate::raw::LANES)) has its own cell, so a
//! state a bounded final cleanup abandoned to operations still in flight
//! ([L16](crate::contract#L16)) stays where their guards find it while a
//! later generation stores its own elsewhere.
//!
//! A cell holds the state once, behind an `Arc`, and a copy of that `Arc`
//! in each of [`SHARDS`](crate::raw::SHARDS) cache-padded read-write locks:
//! a guard reads through the lock of the shard it is counted on, so two
//! threads reaching the state never write a shared cache line (the read
//! lock's add and subtract stay on the thread's own shard, like its guard
//! count). Writes happen only while no guard of the lane can exist: the
//! initializing thread stores the state before it publishes Active, and
//! the final cleanup takes it after the drain saw zero guards
//! ([O2](crate::contract#O2)). A reader therefore never waits for a writer,
//! and a writer never waits at all.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::raw::{LANES, SHARDS, lane_of};
use crate::sync::{CachePadded, RwLock, RwLockReadGuard};

/// One state cell per guard lane.
pub(crate) struct StateCells<S>([StateCell<S>; LANES]);

impl<S> StateCells<S> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> StateCells<S> {
        StateCells([const { StateCell::new() }; LANES])
    }

    #[cfg(loom)]
    pub(crate) fn new() -> StateCells<S> {
        StateCells(std::array::from_fn(|_| StateCell::new()))
    }

    /// The cell of `generation`'s lane.
    pub(crate) fn of(&self, generation: u64) -> &StateCell<S> {
        &self.0[lane_of(generation)]
    }

    /// The cell of the lane a guard counted at `index` is in.
    pub(crate) fn at(&self, index: usize) -> &StateCell<S> {
        &self.0[crate::raw::lane_at(index)]
    }

    /// Takes every state (the lifecycle is being dropped: no guard exists).
    pub(crate) fn take_all(&self) -> impl Iterator<Item = S> + '_ {
        self.0.iter().filter_map(StateCell::take)
    }
}

/// Holds one lane's state, if any: one copy of its `Arc` per shard.
pub(crate) struct StateCell<S>([CachePadded<RwLock<Option<Arc<S>>>>; SHARDS]);

impl<S> StateCell<S> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> StateCell<S> {
        StateCell([const { CachePadded::new(RwLock::new(None)) }; SHARDS])
    }

    #[cfg(loom)]
    pub(crate) fn new() -> StateCell<S> {
        StateCell(std::array::from_fn(|_| CachePadded::new(RwLock::new(None))))
    }

    /// Stores the state of the generation being initialized (no guard of
    /// this lane can exist: the state is not Active yet). A state an earlier
    /// generation of the lane abandoned ([L16](crate::contract#L16)) is
    /// leaked, never dropped: abandoned means never freed.
    pub(crate) fn set(&self, state: S) {
        let state = Arc::new(state);
        for shard in &self.0 {
            if let Some(abandoned) = shard.write().replace(Arc::clone(&state)) {
                std::mem::forget(abandoned);
            }
        }
    }

    /// Takes the state of the generation being torn down (no guard can
    /// exist: the drain saw zero, or the lifecycle is being dropped).
    pub(crate) fn take(&self) -> Option<S> {
        let mut last = None;
        for shard in &self.0 {
            last = shard.write().take().or(last);
        }
        // Every other copy was dropped above and no guard holds a reference:
        // this one is unique.
        last.and_then(|state| Arc::try_unwrap(state).ok())
    }

    /// The state, for a holder of a live guard or token counted at `index`
    /// (read through that shard's lock).
    pub(crate) fn read(&self, index: usize) -> StateRef<'_, S> {
        StateRef(self.0[index % SHARDS].read())
    }
}

/// A shared reference to the provider's per-generation state
/// ([`Provider::State`](crate::Provider::State)), from
/// [`OperationGuard::state`](crate::OperationGuard::state) or
/// [`OperationToken::state`](crate::OperationToken::state). It dereferences
/// to the state and borrows the guard or token it came from, so it cannot
/// outlive the operation: the final cleanup drops the state only after every
/// guard and token is gone.
///
/// Taking one costs a read lock on the guard's own shard (one atomic add and
/// one subtract on a cache line no other thread writes, unless two threads
/// share a shard); a writer never holds that lock while a guard lives, so
/// it never waits. Take
/// it once per operation rather than in an inner loop. It is `!Send`: keep
/// it out of `.await` points and call `state()` again after one.
///
/// ```
/// # use provider_lifecycle::*;
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = NoSocket;
/// #     type State = Vec<u8>;
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<Vec<u8>, Error> { Ok(vec![1, 2]) }
/// # }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let guard = l.enter()?;
/// let state = guard.state(); // derefs to the provider's state
/// assert_eq!(state.len(), 2);
/// # drop(state);
/// # drop(guard);
/// # Ok::<(), Error>(())
/// ```
pub struct StateRef<'g, S>(RwLockReadGuard<'g, Option<Arc<S>>>);

impl<S> Deref for StateRef<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        // Set before the generation was published Active, taken only after
        // the drain saw zero guards: while a guard or token lives (and this
        // borrows one), it is there.
        self.0
            .as_ref()
            .expect("the generation's state lives as long as its guards")
    }
}

impl<S: fmt::Debug> fmt::Debug for StateRef<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
