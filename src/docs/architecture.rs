//! The architecture: one concept per file, who imports whom, and the walk
//! of each operation through the files.
//!
//! # Rooms
//!
//! Each file holds one concept; a file is as long as its concept needs.
//!
//! | file | its one concept |
//! |---|---|
//! | `lib.rs` | the crate docs and re-exports |
//! | `contract.rs` | the contract (`docs/CONTRACT.md`) as a doc module |
//! | `docs.rs`, `docs/*.rs` | these design notes |
//! | `lifecycle.rs` | [`Lifecycle`](crate::Lifecycle): its fields, what it reports, guards and tokens, its `Drop` |
//! | `lifecycle/startup.rs` | counted startups and the initialization |
//! | `lifecycle/cleanup.rs` | counted cleanups, up to the start of the final one |
//! | `lifecycle/teardown.rs` | the final cleanup's machine (L6.1–L6.6) |
//! | `lifecycle/cleanup_future.rs` | that machine driven from a future (`cleanup_async`) |
//! | `lifecycle/alarm.rs` | the async final cleanup's timer thread |
//! | `lifecycle/trace.rs` | the final cleanup's `tracing` events |
//! | `lifecycle/sockets.rs` | the socket methods (register, operate, close, ...) |
//! | `lifecycle/resources.rs` | registering resources |
//! | `lifecycle/owned.rs` | [`OwnedToken`](crate::OwnedToken) |
//! | `lifecycle/exit.rs` | ending a generation at process exit (L18) |
//! | `lifecycle/outcome.rs` | what startups, cleanups and snapshots return |
//! | `session.rs` | [`Session`](crate::Session): a startup whose cleanup runs on drop |
//! | `raw.rs` | the raw lifecycle's struct and its slow-path lock |
//! | `raw/shards.rs` | the guard shards, their lanes and the `PARKED` protocol (its leavers' half) |
//! | `raw/identity.rs` | a lifecycle's id in the per-thread records (L11) |
//! | `raw/resources.rs` | the current generation's resource list |
//! | `raw/cancel.rs` | the blocking waits the cancel step ends (S6) |
//! | `raw/wakers.rs` | the one registry of wakers |
//! | `raw/startup.rs` | the startup slow path and its frame |
//! | `raw/teardown.rs` | the final cleanup's frame: the guard wait (the drainer's half of `PARKED`), cancel, Released |
//! | `state.rs` | the packed state word and every transition of it |
//! | `state/entry.rs` | the entry hint: where an enter counts and what it expects of the word; the thread's shard key |
//! | `guard.rs` | [`OperationGuard`](crate::OperationGuard), [`OperationToken`](crate::OperationToken), scopes |
//! | `thread.rs` | the calling thread's record: shard, held guards (L11) |
//! | `generation.rs` | the provider's state of each generation ([`StateRef`](crate::StateRef)) |
//! | `registry.rs` | the open sockets: a slot and a lock per handle |
//! | `handle.rs` | [`SocketHandle`](crate::SocketHandle)'s bit packing |
//! | `socket.rs` | the [`Socket`](crate::Socket) trait |
//! | `linger.rs` | [`Linger`](crate::Linger) and its Winsock encoding |
//! | `close.rs` | every close decision: the linger table, the open-socket policy, L12 |
//! | `flush.rs` | a socket's end and the engine that flushes many |
//! | `background.rs` | background closes while Active (S4) |
//! | `deadline.rs` | deadlines that never overflow |
//! | `resource.rs` | [`Resource`](crate::Resource) and release in reverse order |
//! | `provider.rs` | [`Provider`](crate::Provider), [`Registrar`](crate::Registrar) |
//! | `hook.rs` | calling user code with panics caught |
//! | `report.rs` | [`DrainReport`](crate::DrainReport) and its totals |
//! | `report/line.rs` | a socket's line in it ([`SocketReport`](crate::SocketReport)) |
//! | `version.rs` | versions and their negotiation |
//! | `error.rs` | [`Error`](crate::Error) with Winsock codes |
//! | `config.rs` | [`Config`](crate::Config) and the policies |
//! | `helper.rs` | helper threads and who starts them |
//! | `sync.rs` | the only file naming `std::sync` or loom |
//!
//! # Who imports whom
//!
//! Each line lists the top-level modules a module imports from the crate
//! (a child file counts as its parent); every import points down, no
//! module imports one that imports it back. `.ci/check-layout.py` computes
//! this graph from the code's `crate::` paths and fails CI unless it is
//! exactly this list.
//!
//! ```text
//! background -> config, flush, helper, report, socket, sync
//! close      -> config, deadline, error, flush, handle, hook, linger, raw, registry, report, socket
//! config     -> helper, state
//! deadline   ->
//! docs       ->
//! error      ->
//! flush      -> deadline, error, handle, hook, linger, report, socket, sync
//! generation -> raw, sync
//! guard      -> error, generation, raw, state, sync, thread
//! handle     ->
//! helper     ->
//! hook       -> error
//! lifecycle  -> background, close, config, deadline, error, flush, generation, guard, handle, helper, hook, linger, provider, raw, registry, report, resource, socket, state, sync, version
//! linger     ->
//! provider   -> error, report, resource, socket, version
//! raw        -> config, error, resource, state, sync, thread
//! registry   -> error, handle, hook, sync
//! report     -> handle, hook, linger
//! resource   -> error, hook, report
//! session    -> error, lifecycle, provider, version
//! socket     -> error, linger
//! state      -> error, sync
//! sync       -> helper
//! thread     -> state, sync
//! version    -> error
//! ```
//!
//! # Walks
//!
//! The files an operation's steps are decided or done in, in order. Taking
//! a guard is one step, in `guard.rs` (which builds on `raw/shards.rs`,
//! `raw/identity.rs` and `thread.rs` for the count and the L11 record, and
//! reads the word's `state.rs` accessors and its `generation.rs` cell); the
//! helpers every walk shares are not counted: calling user code with
//! panics caught (`hook.rs`), the report's types (`report.rs`,
//! `report/line.rs`), locks (`sync.rs`), errors (`error.rs`), deadline
//! sums (`deadline.rs`), settings read (`config.rs`), the handle's bits
//! (`handle.rs`), the user's traits (`socket.rs`, `provider.rs`) and the
//! helper threads' start (`helper.rs`).
//!
//! **A startup** that initializes a generation (5 files):
//! `lifecycle/startup.rs` (negotiate with the provider, `version.rs` by
//! default; the fast path's join fails) → `state.rs` (the checked add
//! refuses: not Active) → `raw/startup.rs` (the initialization frame: the
//! `INITIALIZING` flag, waits of other startups) → `provider.rs` (the
//! provider's `initialize` with its [`Registrar`](crate::Registrar)) →
//! `generation.rs` (the state stored in its lane, then Active published
//! by the frame). A startup that joins an Active generation stops at
//! `state.rs`: one `fetch_add`.
//!
//! **A provider call** (`operate`, 3 files): `lifecycle/sockets.rs` →
//! `guard.rs` (the guard) → `registry.rs` (the slot's lock, its sequence
//! checked) — and `generation.rs` when it reads the state.
//!
//! **A graceful close** while Active (`Linger::Background` with data left,
//! 6 files): `lifecycle/sockets.rs` → `guard.rs` → `close.rs` (the socket
//! probed; the linger table decides) → `registry.rs` (one pass takes it
//! out) → `flush.rs` (its `Ending`) → `background.rs`
//! (handed to the background flusher, which runs `flush.rs`'s engine).
//!
//! **A final cleanup** (blocking, 10 files): `lifecycle/cleanup.rs` (the
//! decrement to 0) → `state.rs` (the flip to Draining) → `raw/teardown.rs`
//! (the frame: the L11 check against the thread's record, every shard
//! parked, the guards counted and waited for; the drainer's half of the
//! `PARKED` protocol, whose leavers' half is the guard's) →
//! `lifecycle/teardown.rs` (the machine: cancel hook, then each step
//! below) → `background.rs` (the background flusher joined, its endings
//! adopted) → `registry.rs` (the open sockets taken out) → `close.rs`
//! (closed by the open-socket policy) → `flush.rs` (flushed until done or
//! the deadline) → `generation.rs` (the state dropped) → `resource.rs`
//! (released in reverse order); the frame's drop in `raw/teardown.rs`
//! publishes Released.
//!
//! These walks count the files a step is decided in. Every file whose
//! code runs is more: the shared helpers above and the rooms a step builds
//! on (the thread's record, the guard shards, the waker registry, the
//! resource list under the slow-path lock). `python3 .ci/walks.py` runs
//! each walk of `examples/walks.rs` under callgrind (a debug build, so
//! nothing is inlined away) and lists those files; CI checks the last
//! column against it (`--check`), out of the crate's 46 source files
//! (tests and this `docs` module not counted):
//!
//! | walk | files its steps are decided in | files whose code runs |
//! |---|---|---|
//! | startup | 5 | 16 |
//! | provider_call | 3 | 11 |
//! | graceful_close | 6 | 21 |
//! | final_cleanup | 10 | 25 |
