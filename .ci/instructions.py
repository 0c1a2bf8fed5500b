#!/usr/bin/env python3
"""Instruction counts per operation, from valgrind's callgrind, checked
against a baseline.

Each case of the instruction benches (`benches/instructions.rs` in the core,
`provider-lifecycle-winsock/benches/instructions.rs` in the shim) runs under
callgrind at two iteration counts; the difference in instructions divided by
the difference in iterations is one operation's count, with every set-up
cost cancelled. Instruction counts do not move with the machine's load.

    python3 .ci/instructions.py            # measure, compare, fail on growth
    python3 .ci/instructions.py --update   # measure, rewrite the baseline and README's table

The baseline (`benches/instructions.baseline`) records the rustc it was
measured with: another compiler emits other code, so a run with another
rustc reports the comparison without failing (re-baseline with --update).
A case fails when it grows by more than TOLERANCE over its baseline.
"""
import json
import os
import subprocess
import sys
import tempfile

TOLERANCE = 0.03
LOW, HIGH = 2_000, 12_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "benches", "instructions.baseline")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- instructions:begin -->", "<!-- instructions:end -->"
# README's rows: (label, case, floor case, floor label).
ROWS = [
    ("startup + cleanup", "startup_cleanup", "floor_checked_add", "checked `fetch_add` + `fetch_sub`"),
    ("startup + cleanup", "startup_cleanup", "floor_arc", "`Arc` clone + drop"),
    ("guard enter + exit", "guard", "floor_shard", "this thread's shard add + sub"),
    ("operation token take + drop", "token", "floor_shard", "this thread's shard add + sub"),
    ("`with_socket` (guard + lookup + the socket's lock)", "with_socket", "floor_provider_call", "shard add/sub + the socket's own mutex"),
    ("`operate` (the same + `state()`)", "operate", "floor_provider_call", "shard add/sub + the socket's own mutex"),
    ("`WSPSend` of 1 KiB through the table", "wsp_send", "core_operate_send", "the same send through `operate`"),
    ("`WSPSend`, a `WPUCreateSocketHandle` value", "wsp_send_upcall", "core_operate_send", "the same send through `operate`"),
    ("the same send through `with_socket`", "core_send", "floor_send", "shard add/sub + the socket's mutex + the copy"),
]


def write_readme(measured):
    per = {case: n for case, n, _ in measured}
    lines = [
        f"<!-- instructions per operation, one thread, from `python3 .ci/instructions.py --update`; {rustc()} -->",
        "| operation | instructions | floor | ratio |",
        "|---|---|---|---|",
    ]
    for label, case, floor, floor_label in ROWS:
        if case in per and floor in per:
            lines.append(f"| {label} | {per[case]:.0f} | {floor_label}: {per[floor]:.0f} | {per[case] / per[floor]:.2f}× |")
    text = open(README).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"README.md has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open(README, "w").write(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)
PACKAGES = ["provider-lifecycle", "provider-lifecycle-winsock"]


def bench_binaries():
    out = subprocess.run(
        ["cargo", "bench", "--locked", "--no-run", "--message-format=json", "--bench", "instructions"]
        + [a for p in PACKAGES for a in ("-p", p)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    bins = []
    for line in out.splitlines():
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable") \
                and m["target"]["name"] == "instructions":
            bins.append((m["package_id"], m["executable"]))
    if len(bins) != len(PACKAGES):
        sys.exit(f"expected {len(PACKAGES)} instruction benches, found {bins}")
    return [b for _, b in bins]


def instructions(binary, case, n):
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", binary, case, str(n)],
            check=True, capture_output=True,
        )
        for line in open(out.name):
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit(f"no totals in callgrind's output for {case}")


def rustc():
    return subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def read_baseline():
    counts, version = {}, None
    if os.path.exists(BASELINE):
        for line in open(BASELINE):
            line = line.strip()
            if line.startswith("# rustc:"):
                version = line.split(":", 1)[1].strip()
            elif line and not line.startswith("#"):
                name, count = line.split()[:2]
                counts[name] = float(count)
    return version, counts


def main():
    update = "--update" in sys.argv
    measured = []
    for binary in bench_binaries():
        listing = subprocess.run([binary, "--list"], check=True, capture_output=True, text=True).stdout
        for row in listing.splitlines():
            case, what = row.split("\t", 1)
            per = (instructions(binary, case, HIGH) - instructions(binary, case, LOW)) / (HIGH - LOW)
            measured.append((case, per, what))
    version, base = read_baseline()
    same_compiler = version == rustc()
    failed = []
    print(f"{'case':<24} {'instr/op':>9} {'baseline':>9}  what")
    for case, per, what in measured:
        b = base.get(case)
        mark = ""
        if b is not None and per > b * (1 + TOLERANCE) + 0.5:
            mark = "  <-- grew"
            failed.append(case)
        print(f"{case:<24} {per:>9.1f} {b if b is not None else '-':>9}  {what}{mark}")
    if update:
        with open(BASELINE, "w") as f:
            f.write("# Instructions per operation, one thread, from callgrind\n")
            f.write("# (python3 .ci/instructions.py --update). A case fails CI when it\n")
            f.write(f"# grows by more than {TOLERANCE:.0%} over this.\n")
            f.write(f"# rustc: {rustc()}\n")
            for case, per, what in measured:
                f.write(f"{case} {per:.1f}\n")
        write_readme(measured)
        print(f"baseline written: {BASELINE}; README's table rewritten")
        return
    missing = [c for c, _, _ in measured if c not in base]
    if missing:
        sys.exit(f"cases without a baseline: {missing} (run with --update)")
    if failed and same_compiler:
        sys.exit(f"instruction counts grew more than {TOLERANCE:.0%}: {failed}")
    if failed:
        print(f"grew, but the baseline is from {version!r}, this is {rustc()!r}: not failing")


if __name__ == "__main__":
    main()
