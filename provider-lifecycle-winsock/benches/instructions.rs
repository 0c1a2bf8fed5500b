//! Instruction-count cases of the shim, one thread (see the core's
//! `benches/instructions.rs` and `.ci/instructions.py`): a 1 KiB `WSPSend`
//! through the table, on the shim's own `SOCKET` values and on values
//! ws2_32 made (mapped back through `WPUQuerySocketHandleContext`), against
//! the same send on the core's provider-call path and the floor.
#![allow(missing_docs)]

use std::hint::black_box;

mod common;
use common::*;

/// A case: its name, what it measures, and a runner of `n` iterations.
type Case = (&'static str, &'static str, fn(u64));

const CASES: &[Case] = &[
    ("wsp_send", "WSPSend of 1 KiB through the table", wsp_send),
    (
        "wsp_send_upcall",
        "the same on a WPUCreateSocketHandle value",
        wsp_send_upcall,
    ),
    ("core_send", "the same send through with_socket", core),
    (
        "core_operate_send",
        "the same send through operate (state + socket)",
        core_operate,
    ),
    (
        "floor_send",
        "floor: shard add/sub + the socket's mutex + the copy",
        floor,
    ),
];

const DATA: [u8; 1024] = [7; 1024];

fn through_table(n: u64, handles: bool) {
    let t = start(upcalls(handles));
    let s = socket(&t);
    for _ in 0..n {
        black_box(send(&t, black_box(s), &DATA));
    }
    cleanup(&t);
}

fn wsp_send(n: u64) {
    through_table(n, false);
}

fn wsp_send_upcall(n: u64) {
    through_table(n, true);
}

fn core(n: u64) {
    let t = start(upcalls(false));
    let s = socket(&t);
    for _ in 0..n {
        black_box(core_send(black_box(s), &DATA));
    }
    cleanup(&t);
}

fn core_operate(n: u64) {
    let t = start(upcalls(false));
    let s = socket(&t);
    for _ in 0..n {
        black_box(core_operate_send(black_box(s), &DATA));
    }
    cleanup(&t);
}

fn floor(n: u64) {
    let shards = Shards::new();
    let socket = std::sync::Mutex::new(Queued::new());
    for _ in 0..n {
        black_box(floor_send(&shards, &socket, &DATA));
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.as_slice() {
        [flag] if flag == "--list" => {
            for (name, what, _) in CASES {
                println!("{name}\t{what}");
            }
        }
        [case, n] => {
            let n: u64 = n.parse().expect("N: a number of iterations");
            let (_, _, run) = CASES
                .iter()
                .find(|(name, _, _)| name == case)
                .unwrap_or_else(|| panic!("no case {case}; --list names them"));
            run(n);
        }
        _ => {
            for (_, _, run) in CASES {
                run(10);
            }
        }
    }
}
