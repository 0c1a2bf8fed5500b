//! The fuzz harness on stable: replays the checked-in corpus
//! (`fuzz/corpus/table`, grown by `cargo fuzz run table`) and a fixed set of
//! generated inputs through `WSPStartup` and the table only, with the
//! harness's oracle (no silent failure, no count drift, no byte lost). CI
//! runs this binary under valgrind too.

#[path = "../fuzz/harness.rs"]
mod harness;

mod support;

use std::path::Path;

/// The corpus's inputs, in a stable order.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/table");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus is in the repo")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

// D3, E1, L4, L8, S3, W3, W4, W6, W7: every input of the corpus keeps the
// harness's oracle.
#[test]
fn fuzz_corpus_replays_without_a_finding() {
    let _w = support::watchdog(600);
    let inputs = corpus();
    assert!(inputs.len() >= 20, "the corpus has {} inputs", inputs.len());
    for (name, bytes) in inputs {
        eprintln!("{name}");
        harness::run(&bytes);
    }
}

// The same oracle on inputs made by a fixed generator (xorshift), so a
// stable run covers more than the corpus.
#[test]
fn fuzz_generated_inputs_keep_the_oracle() {
    let _w = support::watchdog(600);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for _ in 0..cases {
        let len = 16 + (x % 240) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        harness::run(&input);
    }
}
