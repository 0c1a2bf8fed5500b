//! The `SOCKET` values the shim handed out and what each names, reached
//! without a lock shared between two sockets.
//!
//! A `SOCKET` leads to its core handle without a table: it *is* the raw
//! handle when the shim made it, and when `WPUCreateSocketHandle` made it,
//! the handle is the context it was created with, which
//! `WPUQuerySocketHandleContext` (the upcall table's) hands back. The
//! handle's slot index then picks the shim's record of it: its `SOCKET`
//! value, whether ws2_32 made it, and the shim's id of the socket (shared
//! by duplicates). A record is read with a version check (the handle
//! itself, unique for the slot's life, is the version), written only when
//! the socket opens and closes.
//!
//! A host whose upcall table has no `WPUQuerySocketHandleContext` (test
//! fakes) gets its `WPUCreateSocketHandle` values mapped back through a
//! locked map instead, written at open and close, read per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Mutex, OnceLock};

use provider_lifecycle::{Error, SocketHandle};

use crate::shim::lock;
use crate::sys::{LPWPUQUERYSOCKETHANDLECONTEXT, SOCKET};

/// One `SOCKET` value the shim handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) handle: SocketHandle,
    /// The value came from `WPUCreateSocketHandle` (its close goes back
    /// through `WPUCloseSocketHandle`).
    pub(crate) upcall: bool,
    /// The shim's id of the socket, shared by its duplicate handles.
    pub(crate) socket: u64,
}

/// The core's handles carry their slot index in their low 24 bits.
const INDEX_BITS: u32 = 24;
const PAGE_BITS: u32 = 12;
const PAGES: usize = 1 << (INDEX_BITS - PAGE_BITS);
/// Records per page.
const PAGE: usize = 1 << PAGE_BITS;

/// The record of the handle in one slot. `handle` is 0 while the record
/// is being written or empty.
#[derive(Default)]
struct Record {
    handle: AtomicU64,
    socket: AtomicU64,
    /// The socket id shifted left by one, the low bit set for a
    /// `WPUCreateSocketHandle` value.
    meta: AtomicU64,
}

/// The shim's `SOCKET` values of one generation.
pub(crate) struct Sockets {
    /// Arrays of fixed length: an index masked to its bits needs no
    /// bounds check.
    pages: Box<[OnceLock<Box<[Record; PAGE]>>; PAGES]>,
    /// `WPUCreateSocketHandle` values made while the upcall table had no
    /// `WPUQuerySocketHandleContext`: value → raw handle.
    unqueried: Mutex<HashMap<SOCKET, u64>>,
}

impl Default for Sockets {
    fn default() -> Sockets {
        Sockets {
            pages: (0..PAGES)
                .map(|_| OnceLock::new())
                .collect::<Box<[_]>>()
                .try_into()
                .unwrap_or_else(|_| unreachable!("PAGES pages")),
            unqueried: Mutex::default(),
        }
    }
}

#[inline]
fn place(handle: u64) -> (usize, usize) {
    let index = (handle & ((1 << INDEX_BITS) - 1)) as usize;
    (index >> PAGE_BITS, index & ((1 << PAGE_BITS) - 1))
}

impl Sockets {
    #[inline]
    fn record(&self, handle: u64) -> Option<&Record> {
        let (page, at) = place(handle);
        self.pages[page].get().map(|p| &p[at])
    }

    /// Records `s` for `entry` (a handle just issued, whose slot no other
    /// live handle holds).
    /// `queried`: the upcall table in force has
    /// `WPUQuerySocketHandleContext`.
    pub(crate) fn remember(&self, s: SOCKET, entry: Entry, queried: bool) {
        let handle = entry.handle.to_raw();
        let (page, at) = place(handle);
        let page = self.pages[page].get_or_init(|| {
            (0..PAGE)
                .map(|_| Record::default())
                .collect::<Box<[_]>>()
                .try_into()
                .unwrap_or_else(|_| unreachable!("PAGE records"))
        });
        let r = &page[at];
        r.handle.store(0, Ordering::Relaxed);
        // Release: a reader that sees the old handle after reading the new
        // fields fails its second check (see `read`).
        fence(Ordering::Release);
        r.socket.store(s as u64, Ordering::Relaxed);
        r.meta.store(
            entry.socket << 1 | u64::from(entry.upcall),
            Ordering::Relaxed,
        );
        r.handle.store(handle, Ordering::Release);
        if entry.upcall && !queried {
            lock(&self.unqueried).insert(s, handle);
        }
    }

    /// The record of `handle` if it names `s`.
    #[inline]
    fn read(&self, handle: u64, s: SOCKET) -> Option<Entry> {
        let r = self.record(handle)?;
        if handle == 0 || r.handle.load(Ordering::Acquire) != handle {
            return None;
        }
        let socket = r.socket.load(Ordering::Relaxed);
        let meta = r.meta.load(Ordering::Relaxed);
        // Acquire: pairs with `remember`'s release fence, so fields written
        // for a later handle make the check below fail.
        fence(Ordering::Acquire);
        if r.handle.load(Ordering::Relaxed) != handle || socket != s as u64 {
            return None;
        }
        Some(Entry {
            handle: SocketHandle::from_raw(handle),
            upcall: meta & 1 == 1,
            socket: meta >> 1,
        })
    }

    /// What `s` names; `query` is the upcall table's
    /// `WPUQuerySocketHandleContext`.
    #[inline]
    pub(crate) fn entry(
        &self,
        s: SOCKET,
        query: LPWPUQUERYSOCKETHANDLECONTEXT,
    ) -> Result<Entry, Error> {
        // A record whose handle and value are both `s` is the shim's own
        // value (or one ws2_32 happened to make equal to its context: the
        // same record either way).
        match self.read(s as u64, s) {
            Some(e) => Ok(e),
            None => self.upcall_entry(s, query),
        }
    }

    /// [`entry`](Sockets::entry) for a value ws2_32 made (out of line, so
    /// the shim's own values take the short path).
    #[inline(never)]
    fn upcall_entry(
        &self,
        s: SOCKET,
        query: LPWPUQUERYSOCKETHANDLECONTEXT,
    ) -> Result<Entry, Error> {
        let handle = match query {
            Some(query) => {
                let (mut context, mut errno) = (0usize, 0);
                // SAFETY: ws2_32's upcall, with pointers to two locals.
                let r = unsafe { query(s, &mut context, &mut errno) };
                (r == 0).then_some(context as u64)
            }
            None => None,
        };
        let handle = handle.or_else(|| lock(&self.unqueried).get(&s).copied());
        handle
            .and_then(|h| self.read(h, s))
            .filter(|e| e.upcall)
            .ok_or(Error::NotSocket)
    }

    /// Forgets `s` (closed): its record, unless a later handle of the same
    /// slot has replaced it already.
    pub(crate) fn forget(&self, s: SOCKET, entry: Entry) {
        let handle = entry.handle.to_raw();
        if let Some(r) = self.record(handle) {
            let _ = r
                .handle
                .compare_exchange(handle, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        if entry.upcall {
            lock(&self.unqueried).remove(&s);
        }
    }

    /// The `WPUCreateSocketHandle` values still recorded (at the
    /// generation's end).
    pub(crate) fn upcall_values(&mut self) -> Vec<SOCKET> {
        self.pages
            .iter_mut()
            .filter_map(OnceLock::get_mut)
            .flat_map(|page| page.iter_mut())
            .filter_map(|r| {
                let live = *r.handle.get_mut() != 0 && *r.meta.get_mut() & 1 == 1;
                live.then(|| *r.socket.get_mut() as SOCKET)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Entry, Sockets};
    use provider_lifecycle::{Error, SocketHandle};

    fn entry(raw: u64, upcall: bool, socket: u64) -> Entry {
        Entry {
            handle: SocketHandle::from_raw(raw),
            upcall,
            socket,
        }
    }

    // S7: a SOCKET reaches only the record of the handle it was issued
    // for; a later handle of the same slot replaces it, and the earlier
    // close's forget does not erase the later record.
    #[test]
    fn s7_a_value_reaches_only_its_own_record() {
        let table = None;
        let s = Sockets::default();
        let h1 = 1 << 24 | 5;
        s.remember(h1 as usize, entry(h1, false, 7), false);
        assert_eq!(s.entry(h1 as usize, table), Ok(entry(h1, false, 7)));
        let h2 = 2 << 24 | 5;
        assert_eq!(s.entry(h2 as usize, table), Err(Error::NotSocket));
        s.remember(h2 as usize, entry(h2, false, 8), false);
        s.forget(h1 as usize, entry(h1, false, 7));
        assert_eq!(s.entry(h1 as usize, table), Err(Error::NotSocket));
        assert_eq!(s.entry(h2 as usize, table), Ok(entry(h2, false, 8)));
        s.forget(h2 as usize, entry(h2, false, 8));
        assert_eq!(s.entry(h2 as usize, table), Err(Error::NotSocket));
    }

    // Without WPUQuerySocketHandleContext, ws2_32's values map back through
    // the locked map; an upcall value never passes as a raw handle.
    #[test]
    fn upcall_values_without_a_query_map_back() {
        let table = None;
        let mut s = Sockets::default();
        let h = 3 << 24 | 9;
        s.remember(0x4000, entry(h, true, 1), false);
        assert_eq!(s.entry(0x4000, table), Ok(entry(h, true, 1)));
        assert_eq!(s.entry(h as usize, table), Err(Error::NotSocket));
        assert_eq!(s.upcall_values(), [0x4000]);
        s.forget(0x4000, entry(h, true, 1));
        assert_eq!(s.entry(0x4000, table), Err(Error::NotSocket));
        assert!(s.upcall_values().is_empty());
    }

    // S7: many values at once, across pages, each reach their own record;
    // a value of 0 (never a handle) reaches none, even where the page of
    // slot 0 exists and its record is empty.
    #[test]
    fn s7_many_values_across_pages_reach_their_own_records() {
        let s = Sockets::default();
        let indices = [5u64, 6, 7, 8, 9, 4095, 4096, 4097, 5000, 1 << 20];
        for (i, &index) in indices.iter().enumerate() {
            let h = (i as u64 + 1) << 24 | index;
            s.remember(h as usize, entry(h, false, i as u64), false);
        }
        for (i, &index) in indices.iter().enumerate() {
            let h = (i as u64 + 1) << 24 | index;
            assert_eq!(s.entry(h as usize, None), Ok(entry(h, false, i as u64)));
        }
        assert_eq!(s.entry(0, None), Err(Error::NotSocket));
    }

    // S7: a host whose query maps a value to a live handle made for another
    // value (a reused context) does not reach that handle's socket.
    #[test]
    fn s7_a_query_naming_another_values_handle_reaches_nothing() {
        unsafe extern "system" fn query(_: usize, ctx: *mut usize, _: *mut i32) -> i32 {
            // SAFETY: the shim passes a pointer to its local.
            unsafe { *ctx = 3 << 24 | 9 };
            0
        }
        let s = Sockets::default();
        let h = 3 << 24 | 9;
        s.remember(0x4000, entry(h, true, 1), true);
        assert_eq!(s.entry(0x4000, Some(query)), Ok(entry(h, true, 1)));
        assert_eq!(s.entry(0x5000, Some(query)), Err(Error::NotSocket));
    }

    // With WPUQuerySocketHandleContext, the value's context is its handle:
    // no map is written or read.
    #[test]
    fn upcall_values_with_a_query_need_no_map() {
        unsafe extern "system" fn query(s: usize, ctx: *mut usize, _: *mut i32) -> i32 {
            if s != 0x4000 {
                return -1;
            }
            // SAFETY: the shim passes a pointer to its local.
            unsafe { *ctx = 3 << 24 | 9 };
            0
        }
        let table = Some(query as _);
        let s = Sockets::default();
        let h = 3 << 24 | 9;
        s.remember(0x4000, entry(h, true, 1), true);
        assert!(super::lock(&s.unqueried).is_empty());
        assert_eq!(s.entry(0x4000, table), Ok(entry(h, true, 1)));
        assert_eq!(s.entry(0x4004, table), Err(Error::NotSocket));
    }
}
