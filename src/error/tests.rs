use super::*;

// D2, L4: each NotActive says which condition it met, in
// Display too; the code stays 10093.
#[test]
fn l4_not_initialised_says_which() {
    let all = [
        (NotActive::NeverStarted, "it was never started"),
        (
            NotActive::Unpaired,
            "a cleanup without a startup to pair with",
        ),
        (NotActive::Draining, "the final cleanup is running"),
        (
            NotActive::Released,
            "it was torn down (a startup begins a new generation)",
        ),
        (
            NotActive::Reported,
            "a socket or lower provider reported it",
        ),
    ];
    for (why, text) in all {
        assert_eq!(why.describe(), text);
        assert_eq!(why.to_string(), text);
        let e = Error::NotInitialised(why);
        assert_eq!(e.wsa_code(), 10093);
        assert_eq!(
            e.to_string(),
            format!("the provider is not initialised: {text} (WSANOTINITIALISED, 10093)")
        );
    }
}

// E1: a code with its cause keeps both: the code for lpErrno, the
// cause as the source; its text is the code's own.
#[test]
fn e1_a_caused_code_keeps_its_source() {
    use std::error::Error as _;
    let e = Error::with_cause(10054, "peer reset");
    assert_eq!(e.wsa_code(), 10054);
    assert_eq!(e.wsa_name(), "WSAECONNRESET");
    assert_eq!(e.source().unwrap().to_string(), "peer reset");
    assert_eq!(e.to_string(), Error::Winsock(10054).to_string());
    let e = Error::with_cause(10093, "x");
    assert_eq!(e.wsa_name(), "WSANOTINITIALISED");
    assert_eq!(
        e.to_string(),
        Error::NotInitialised(NotActive::Reported).to_string()
    );
    for (code, name) in [
        (10092, "WSAVERNOTSUPPORTED"),
        (10091, "WSASYSNOTREADY"),
        (10067, "WSAEPROCLIM"),
        (10036, "WSAEINPROGRESS"),
        (10038, "WSAENOTSOCK"),
        (10035, "WSAEWOULDBLOCK"),
        (10014, "WSAEFAULT"),
        (10050, "WSAENETDOWN"),
        (10104, "WSAEINVALIDPROCTABLE"),
        (10106, "WSAEPROVIDERFAILEDINIT"),
        (10004, "WSAEINTR"),
        (995, "WSA_OPERATION_ABORTED"),
    ] {
        assert_eq!(Error::with_cause(code, "c").wsa_name(), name);
        assert_eq!(Error::from_wsa_code(code).wsa_name(), name);
    }
}

// E1: I/O errors map to the Winsock code of what happened.
#[test]
fn e1_io_errors_map_to_their_winsock_codes() {
    use std::io::{Error as Io, ErrorKind as K};
    for (kind, code) in [
        (K::ConnectionReset, 10054),
        (K::ConnectionAborted, 10053),
        (K::ConnectionRefused, 10061),
        (K::NotConnected, 10057),
        (K::BrokenPipe, 10058),
        (K::AddrInUse, 10048),
        (K::AddrNotAvailable, 10049),
        (K::TimedOut, 10060),
        (K::WouldBlock, 10035),
        (K::Interrupted, 10004),
        (K::InvalidInput, 10022),
        (K::PermissionDenied, 10013),
        (K::OutOfMemory, 10055),
        (K::Unsupported, 10045),
        (K::HostUnreachable, 10065),
        (K::NetworkUnreachable, 10051),
        (K::NetworkDown, 10050),
        (K::Other, 10050),
    ] {
        let e = Error::from_io(Io::from(kind));
        assert_eq!(e.wsa_code(), code, "{kind:?}");
        let Error::Caused(_, cause) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(cause.get().downcast_ref::<Io>().unwrap().kind(), kind);
    }
}

// D2: every variant maps to its Winsock code.
#[test]
fn d2_codes() {
    let table = [
        (Error::NotInitialised(NotActive::Reported), 10093),
        (Error::VersionNotSupported, 10092),
        (Error::system_not_ready("x"), 10091),
        (Error::ProcessLimit, 10067),
        (Error::InProgress, 10036),
        (Error::NotSocket, 10038),
        (Error::WouldBlock, 10035),
        (Error::Fault, 10014),
        (Error::NetworkDown, 10050),
        (Error::InvalidProcTable, 10104),
        (Error::ProviderFailedInit, 10106),
        (Error::Interrupted, 10004),
        (Error::OperationAborted, 995),
        (Error::Winsock(10054), 10054),
    ];
    for (e, code) in table {
        assert_eq!(e.wsa_code(), code, "{e}");
        assert!(e.to_string().contains(&code.to_string()), "{e}");
        assert!(e.to_string().contains(e.wsa_name()), "{e}");
        // E1: every variant's code maps back to the same variant.
        assert_eq!(Error::from_wsa_code(code).wsa_code(), code);
        if !matches!(e, Error::SystemNotReady(_)) {
            assert_eq!(Error::from_wsa_code(code), e);
        }
    }
}

// E1: any other code travels unchanged, with its name where it has one.
#[test]
fn e1_other_codes_are_carried_unchanged() {
    let names = [
        (996, "WSA_IO_INCOMPLETE"),
        (997, "WSA_IO_PENDING"),
        (10022, "WSAEINVAL"),
        (10040, "WSAEMSGSIZE"),
        (10045, "WSAEOPNOTSUPP"),
        (10053, "WSAECONNABORTED"),
        (10054, "WSAECONNRESET"),
        (10055, "WSAENOBUFS"),
        (10057, "WSAENOTCONN"),
        (10058, "WSAESHUTDOWN"),
        (10060, "WSAETIMEDOUT"),
        (10061, "WSAECONNREFUSED"),
        (12345, "a Winsock error"),
    ];
    for (code, name) in names {
        let e = Error::from_wsa_code(code);
        assert_eq!(e, Error::Winsock(code));
        assert_eq!((e.wsa_code(), e.wsa_name()), (code, name));
    }
    assert_eq!(
        Error::from_wsa_code(10091).wsa_code(),
        10091,
        "SystemNotReady with a cause"
    );
}

// D2: the provider's failure is kept whole as the source; `?` on an
// io::Error produces SystemNotReady.
#[test]
fn d2_system_not_ready_keeps_its_source() {
    use std::error::Error as _;
    fn init() -> Result<(), Error> {
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "port taken",
        ))?;
        Ok(())
    }
    let e = init().unwrap_err();
    assert_eq!(e.wsa_code(), 10091);
    let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(
        io.map(std::io::Error::kind),
        Some(std::io::ErrorKind::AddrInUse)
    );
    assert!(
        !e.to_string().contains("port taken"),
        "the cause is the source, not repeated"
    );

    let msg = Error::system_not_ready("disk on fire");
    assert_eq!(
        msg.source().map(|s| s.to_string()).as_deref(),
        Some("disk on fire")
    );
    assert_eq!(msg, Error::system_not_ready(String::from("disk on fire")));
    assert_ne!(msg, Error::system_not_ready("other"));
    let clone = msg.clone();
    assert_eq!(clone, msg);
    assert!(Error::NotSocket.source().is_none());
    if let Error::SystemNotReady(c) = &msg {
        assert_eq!(format!("{c}"), "disk on fire");
        assert!(format!("{c:?}").contains("disk on fire"));
    }
}
