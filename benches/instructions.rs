//! Instruction-count cases, one thread: `.ci/instructions.py` runs each
//! case under valgrind's callgrind at two iteration counts and divides the
//! difference by the difference in iterations, so that set-up cancels out
//! and what is left is the instructions of one operation. Instruction
//! counts do not move with the machine's load, as timings do; the script
//! compares them with `benches/instructions.baseline` and fails on growth.
//!
//! Run one case by hand: `cargo bench --bench instructions -- CASE N`;
//! `-- --list` names the cases.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use provider_lifecycle::Lifecycle;

mod common;
use common::*;

/// A case: its name, what it measures, and a runner of `n` iterations.
type Case = (&'static str, &'static str, fn(u64));

const CASES: &[Case] = &[
    (
        "startup_cleanup",
        "startup + cleanup pair, count held at 1",
        startup_cleanup,
    ),
    (
        "floor_checked_add",
        "floor: checked fetch_add + fetch_sub",
        floor_checked_add,
    ),
    ("floor_arc", "floor: Arc clone + drop", floor_arc),
    ("guard", "guard enter + exit", guard),
    ("token", "operation token take + drop", token),
    (
        "floor_shard",
        "floor: this thread's shard add + sub",
        floor_shard,
    ),
    (
        "with_socket",
        "provider call: with_socket on its own socket",
        with_socket,
    ),
    (
        "operate",
        "provider call: operate (state + socket)",
        operate,
    ),
    (
        "floor_provider_call",
        "floor: shard add/sub + the socket's own mutex",
        floor_provider_call,
    ),
];

fn startup_cleanup(n: u64) {
    let l = Lifecycle::new(Bench);
    l.startup(V).unwrap();
    for _ in 0..n {
        black_box(&l).startup(V).unwrap();
        black_box(&l).cleanup().unwrap();
    }
    l.cleanup().unwrap();
}

fn floor_checked_add(n: u64) {
    let a = AtomicU64::new(1);
    for _ in 0..n {
        checked_add_pair(black_box(&a));
    }
}

fn floor_arc(n: u64) {
    let a = Arc::new(0u64);
    for _ in 0..n {
        drop(black_box(Arc::clone(&a)));
    }
}

fn guard(n: u64) {
    let l = Lifecycle::new(Bench);
    l.startup(V).unwrap();
    for _ in 0..n {
        drop(black_box(&l).enter().unwrap());
    }
    l.cleanup().unwrap();
}

fn token(n: u64) {
    let l = Lifecycle::new(Bench);
    l.startup(V).unwrap();
    for _ in 0..n {
        drop(black_box(&l).token().unwrap());
    }
    l.cleanup().unwrap();
}

fn floor_shard(n: u64) {
    let s = Shards::new();
    for _ in 0..n {
        shard_pair(black_box(&s));
    }
}

fn with_socket(n: u64) {
    let l = Lifecycle::new(Socketed);
    l.startup(V).unwrap();
    let h = l.register_socket(Sock(0)).unwrap();
    for _ in 0..n {
        l.with_socket(black_box(h), |s| s.0 = black_box(s.0 + 1))
            .unwrap();
    }
    l.cleanup().unwrap();
}

fn operate(n: u64) {
    let l = Lifecycle::new(Socketed);
    l.startup(V).unwrap();
    let h = l.register_socket(Sock(0)).unwrap();
    for _ in 0..n {
        l.operate(black_box(h), |st, s| s.0 = black_box(s.0 + *st))
            .unwrap();
    }
    l.cleanup().unwrap();
}

fn floor_provider_call(n: u64) {
    let s = Shards::new();
    let socket = std::sync::Mutex::new(0);
    for _ in 0..n {
        provider_call_floor(black_box(&s), black_box(&socket));
    }
}

fn main() {
    // `cargo bench` passes `--bench` first; the case and count follow.
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
        // `cargo bench` with no arguments (and `cargo test --benches`):
        // a quick smoke run of every case.
        _ => {
            for (_, _, run) in CASES {
                run(10);
            }
        }
    }
}
