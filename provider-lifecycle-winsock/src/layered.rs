//! A layered provider's view of the provider below it
//! ([W5](provider_lifecycle::contract#W5)): started through the lower
//! `WSPStartup`, its dispatch table checked before anything is used, its
//! sockets closed abortively, and its cleanup called exactly once per
//! successful lower startup.

use std::fmt;

use provider_lifecycle::{Error, Version};

use crate::sys::{
    LINGER, LPWSPSTARTUP, SO_LINGER, SOCKET, SOL_SOCKET, WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE,
    WSPUPCALLTABLE,
};

/// The number of entries of a `WSPPROC_TABLE`.
pub const PROC_TABLE_ENTRIES: usize = 30;

/// How many entries of `table` are null (0: the table is usable).
///
/// ```
/// use provider_lifecycle_winsock::{PROC_TABLE_ENTRIES, null_entries, sys::WSPPROC_TABLE};
/// assert_eq!(null_entries(&WSPPROC_TABLE::default()), PROC_TABLE_ENTRIES); // all null
/// ```
#[must_use]
pub fn null_entries(table: &WSPPROC_TABLE) -> usize {
    let t = table;
    [
        t.lpWSPAccept.is_none(),
        t.lpWSPAddressToString.is_none(),
        t.lpWSPAsyncSelect.is_none(),
        t.lpWSPBind.is_none(),
        t.lpWSPCancelBlockingCall.is_none(),
        t.lpWSPCleanup.is_none(),
        t.lpWSPCloseSocket.is_none(),
        t.lpWSPConnect.is_none(),
        t.lpWSPDuplicateSocket.is_none(),
        t.lpWSPEnumNetworkEvents.is_none(),
        t.lpWSPEventSelect.is_none(),
        t.lpWSPGetOverlappedResult.is_none(),
        t.lpWSPGetPeerName.is_none(),
        t.lpWSPGetSockName.is_none(),
        t.lpWSPGetSockOpt.is_none(),
        t.lpWSPGetQOSByName.is_none(),
        t.lpWSPIoctl.is_none(),
        t.lpWSPJoinLeaf.is_none(),
        t.lpWSPListen.is_none(),
        t.lpWSPRecv.is_none(),
        t.lpWSPRecvDisconnect.is_none(),
        t.lpWSPRecvFrom.is_none(),
        t.lpWSPSelect.is_none(),
        t.lpWSPSend.is_none(),
        t.lpWSPSendDisconnect.is_none(),
        t.lpWSPSendTo.is_none(),
        t.lpWSPSetSockOpt.is_none(),
        t.lpWSPShutdown.is_none(),
        t.lpWSPSocket.is_none(),
        t.lpWSPStringToAddress.is_none(),
    ]
    .iter()
    .filter(|&&null| null)
    .count()
}

/// One successful startup of the provider below, with its validated table.
/// Dropping it without [`cleanup`](Lower::cleanup) calls the lower cleanup
/// anyway: a lower startup is always balanced by exactly one lower cleanup.
pub struct Lower {
    table: WSPPROC_TABLE,
    data: WSPDATA,
    cleaned: bool,
}

impl fmt::Debug for Lower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lower")
            .field("version", &Version::from_word(self.data.wVersion))
            .field("cleaned", &self.cleaned)
            .finish_non_exhaustive()
    }
}

impl Lower {
    /// Starts the lower provider through its `WSPStartup`, passing the
    /// upcall table this layer received down unchanged
    /// ([W1](provider_lifecycle::contract#W1)), then checks its dispatch
    /// table ([W5](provider_lifecycle::contract#W5)).
    ///
    /// # Errors
    ///
    /// The lower startup's own error (as [`Error::ProviderFailedInit`],
    /// 10106, unless it is a version refusal, kept as 10092); a table with
    /// a null entry is [`Error::InvalidProcTable`] (10104), after one call
    /// of the lower cleanup (if it has one) so the lower startup is
    /// balanced; a null `startup` is [`Error::InvalidProcTable`] too.
    ///
    /// # Safety
    ///
    /// `startup` is a lower provider's `WSPStartup`; `protocol` is null or
    /// points to a valid `WSAPROTOCOL_INFOW` for the call.
    pub unsafe fn start(
        startup: LPWSPSTARTUP,
        version: Version,
        protocol: *const WSAPROTOCOL_INFOW,
        upcalls: WSPUPCALLTABLE,
    ) -> Result<Lower, Error> {
        let startup = startup.ok_or(Error::InvalidProcTable)?;
        let mut data = WSPDATA::default();
        let mut table = WSPPROC_TABLE::default();
        // SAFETY: the lower provider's WSPStartup with valid out-pointers
        // (WSPDATA's from a mutable place: the lower provider writes it).
        let code = unsafe {
            startup(
                version.to_word(),
                (&raw mut data).cast_const(),
                protocol,
                upcalls,
                &mut table,
            )
        };
        lower_startup(code)?;
        if null_entries(&table) > 0 {
            if let Some(cleanup) = table.lpWSPCleanup {
                let mut errno = 0;
                // SAFETY: the lower provider's own cleanup, balancing the
                // startup that just succeeded.
                unsafe { cleanup(&mut errno) };
            }
            return Err(Error::InvalidProcTable);
        }
        Ok(Lower {
            table,
            data,
            cleaned: false,
        })
    }

    /// The lower dispatch table (every entry set).
    #[must_use]
    pub fn table(&self) -> &WSPPROC_TABLE {
        &self.table
    }

    /// The version the lower provider negotiated.
    #[must_use]
    pub fn version(&self) -> Version {
        Version::from_word(self.data.wVersion)
    }

    /// Closes a lower socket abortively (see [`close_abortively`]).
    ///
    /// # Errors
    ///
    /// As [`close_abortively`].
    ///
    /// # Safety
    ///
    /// `s` is a socket of the lower provider.
    pub unsafe fn close_abortively(&self, s: SOCKET) -> Result<LowerClose, Error> {
        // SAFETY: forwarded.
        unsafe { close_abortively(&self.table, s) }
    }

    /// Calls the lower `WSPCleanup`, once.
    ///
    /// # Errors
    ///
    /// The lower cleanup's Winsock error (e.g. 10093 as
    /// [`Error::NotInitialised`]).
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.cleanup_once()
    }

    fn cleanup_once(&mut self) -> Result<(), Error> {
        if std::mem::replace(&mut self.cleaned, true) {
            return Ok(());
        }
        let cleanup = self.table.lpWSPCleanup.expect("validated table");
        let mut errno = 0;
        // SAFETY: the lower provider's cleanup, once per lower startup.
        if unsafe { cleanup(&mut errno) } == 0 {
            Ok(())
        } else {
            Err(code_to_error(errno))
        }
    }
}

impl Drop for Lower {
    fn drop(&mut self) {
        let _ = self.cleanup_once();
    }
}

/// The lower `WSPStartup`'s return code as this layer reports it: a version
/// refusal stays 10092, any other failure is the layer's own startup
/// failing (10106).
fn lower_startup(code: i32) -> Result<(), Error> {
    match code {
        0 => Ok(()),
        10092 => Err(Error::VersionNotSupported),
        _ => Err(Error::ProviderFailedInit),
    }
}

/// How [`close_abortively`] closed a lower socket: what really happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LowerClose {
    /// `SO_LINGER {1, 0}` was accepted: the close was abortive.
    Abortive,
    /// The lower provider refused `SO_LINGER {1, 0}` (its error is here),
    /// so the close applied the socket's own linger, graceful as far as
    /// this layer knows.
    Graceful(Error),
}

/// Closes a lower socket abortively: `SO_LINGER {1, 0}` through the lower
/// `WSPSetSockOpt`, then the lower `WSPCloseSocket` — what a layer does with
/// its lower sockets before the lower cleanup. `table` is a validated lower
/// table (a layer's socket keeps a copy of it). If the lower provider
/// refuses the option the socket is still closed, and the result says the
/// close was not abortive ([`LowerClose::Graceful`]).
///
/// # Errors
///
/// The lower close's Winsock error, unchanged
/// ([E1](provider_lifecycle::contract#E1)).
///
/// # Safety
///
/// `table` is a lower provider's dispatch table whose provider is still
/// started, and `s` one of its sockets.
pub unsafe fn close_abortively(table: &WSPPROC_TABLE, s: SOCKET) -> Result<LowerClose, Error> {
    let (Some(set), Some(close)) = (table.lpWSPSetSockOpt, table.lpWSPCloseSocket) else {
        return Err(Error::InvalidProcTable);
    };
    let hard = LINGER {
        l_onoff: 1,
        l_linger: 0,
    };
    let mut set_errno = 0;
    // SAFETY: the lower provider's entries, with a LINGER that outlives the
    // call.
    let set_result = unsafe {
        set(
            s,
            SOL_SOCKET,
            SO_LINGER,
            (&raw const hard).cast(),
            size_of::<LINGER>() as i32,
            &mut set_errno,
        )
    };
    let mut errno = 0;
    // SAFETY: as above.
    if unsafe { close(s, &mut errno) } != 0 {
        return Err(code_to_error(errno));
    }
    Ok(lower_close(set_result, set_errno))
}

/// What the lower `WSPSetSockOpt(SO_LINGER {1, 0})`'s answer means for the
/// close that followed it.
fn lower_close(set_result: i32, set_errno: i32) -> LowerClose {
    if set_result == 0 {
        LowerClose::Abortive
    } else {
        LowerClose::Graceful(code_to_error(set_errno))
    }
}

/// The crate's error for a Winsock code a lower provider reported: the
/// code unchanged ([E1](provider_lifecycle::contract#E1)), as
/// [`Error::from_wsa_code`] maps it.
///
/// ```
/// use provider_lifecycle::Error;
/// use provider_lifecycle_winsock::code_to_error;
/// assert_eq!(code_to_error(10054), Error::Winsock(10054)); // WSAECONNRESET, unchanged
/// assert_eq!(code_to_error(10054).wsa_code(), 10054);
/// assert_eq!(code_to_error(10038), Error::NotSocket);
/// ```
#[must_use]
pub fn code_to_error(code: i32) -> Error {
    Error::from_wsa_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    // W5: how a lower startup's code reaches the layer above.
    #[test]
    fn w5_lower_startup_codes() {
        assert_eq!(lower_startup(0), Ok(()));
        assert_eq!(lower_startup(10092), Err(Error::VersionNotSupported));
        assert_eq!(lower_startup(10091), Err(Error::ProviderFailedInit));
        assert_eq!(lower_startup(-1), Err(Error::ProviderFailedInit));
    }

    // A refused SO_LINGER {1, 0} is reported as a graceful close, with the
    // lower provider's own code (E1).
    #[test]
    fn a_refused_abortive_linger_is_reported_graceful() {
        assert_eq!(lower_close(0, 0), LowerClose::Abortive);
        assert_eq!(
            lower_close(-1, 10042),
            LowerClose::Graceful(Error::Winsock(10042))
        );
    }

    // E1: every code travels unchanged.
    #[test]
    fn e1_code_to_error_keeps_every_code() {
        for code in [
            995, 10004, 10014, 10035, 10036, 10038, 10045, 10050, 10054, 10055, 10057, 10067,
            10091, 10092, 10093, 10104, 10106,
        ] {
            assert_eq!(code_to_error(code).wsa_code(), code);
        }
        assert_eq!(code_to_error(10054), Error::Winsock(10054));
    }
}
