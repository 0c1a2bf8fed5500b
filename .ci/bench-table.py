#!/usr/bin/env python3
"""README's performance table, from criterion's results.

Usage:
  python3 .ci/bench-table.py --runs 3     # runs the benches 3 times, rewrites README's table
  python3 .ci/bench-table.py              # prints the table of the runs already saved

With --runs, the table between README's `<!-- bench-table:begin -->` and
`<!-- bench-table:end -->` markers is replaced in place by the table of the
runs just made. Estimates are read from criterion's own directory
($CRITERION_HOME, else $CARGO_TARGET_DIR/criterion, else target/criterion),
and an estimate older than the run that should have written it is refused:
no stale number is printed under today's date.

Each run's medians (criterion's `median.point_estimate` in
target/criterion/<group>/<bench>/new/estimates.json) are copied to
target/bench-runs/<n>/; the table shows, per benchmark, the median of the
runs' medians, and every ratio is taken between numbers of the same run set.
Each run also repeats the final cleanup group with glibc's malloc thresholds
pinned (see PINNED), saved under target/bench-runs/<n>/pinned/.
"""
import glob, json, os, shutil, statistics, subprocess, sys, time

os.chdir(os.path.join(os.path.dirname(__file__), ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", "target")
CRITERION = os.environ.get("CRITERION_HOME", os.path.join(TARGET, "criterion"))
RUNS_DIR = os.path.join(TARGET, "bench-runs")
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"

# glibc's malloc adapts its mmap and trim thresholds to the program: after a
# final cleanup's large report is freed it may hand the memory back to the
# system, and the next iteration's report then lands on fresh pages (a page
# fault per 4 KiB) or not, run by run. Pinning both thresholds (which turns
# the adaptation off) keeps freed memory in the heap: the final cleanup group
# runs a second time that way, reported in rows of its own.
PINNED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"

# The timing benches: the core's, and the Winsock shim's `WSPSend` through
# its table (beside the core path and the floor, in the same run).
BENCHES = [
    ("provider-lifecycle", "contention"),
    ("provider-lifecycle", "drain"),
    ("provider-lifecycle-winsock", "send"),
]

def save(dest, since, prefix="", group=""):
    """Copies criterion's estimates (of `group`, or all) written since `since` under dest/prefix."""
    found = 0
    for est in glob.glob(os.path.join(CRITERION, group, "**/new/estimates.json"), recursive=True):
        if os.path.getmtime(est) < since:
            sys.exit(f"stale estimate (older than this run): {est}; remove {CRITERION} and rerun")
        found += 1
        name = os.path.relpath(os.path.dirname(os.path.dirname(est)), CRITERION)
        os.makedirs(os.path.join(dest, prefix, name), exist_ok=True)
        shutil.copy(est, os.path.join(dest, prefix, name, "estimates.json"))
    if not found:
        sys.exit(f"no estimates under {CRITERION}: is CRITERION_HOME or CARGO_TARGET_DIR pointing elsewhere?")

def run_benches(n):
    shutil.rmtree(RUNS_DIR, ignore_errors=True)
    for i in range(n):
        shutil.rmtree(CRITERION, ignore_errors=True)
        since = time.time()
        for package, bench in BENCHES:
            subprocess.run(["cargo", "bench", "-p", package, "--bench", bench], check=True,
                           stdout=subprocess.DEVNULL)
        dest = os.path.join(RUNS_DIR, str(i))
        save(dest, since)
        shutil.rmtree(os.path.join(CRITERION, "final_cleanup"), ignore_errors=True)
        since = time.time()
        subprocess.run(["cargo", "bench", "--bench", "drain", "--", "final_cleanup"], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, GLIBC_TUNABLES=PINNED))
        save(dest, since, "pinned", "final_cleanup")

def medians():
    runs = sorted(glob.glob(os.path.join(RUNS_DIR, "*")))
    if not runs:
        sys.exit("no saved runs: use --runs N")
    values = {}
    for r in runs:
        for est in glob.glob(os.path.join(r, "**/estimates.json"), recursive=True):
            name = os.path.relpath(os.path.dirname(est), r)
            ns = json.load(open(est))["median"]["point_estimate"]
            values.setdefault(name, []).append(ns)
    return {k: statistics.median(v) for k, v in values.items()}, len(runs)

def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.0f} µs"
    return f"{ns:.1f} ns"

def main():
    fresh = "--runs" in sys.argv
    if fresh:
        run_benches(int(sys.argv[sys.argv.index("--runs") + 1]))
    m, n = medians()
    lines = table(m, n)
    if fresh:
        write_readme(lines)
    print("\n".join(lines))

def write_readme(lines):
    """Replaces the table between README's markers with `lines`."""
    text = open("README.md").read()
    if BEGIN not in text or END not in text:
        sys.exit(f"README.md has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open("README.md", "w").write(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)

def table(m, n):
    out = []
    rows = [
        ("startup + cleanup, 1 thread", "startup_cleanup/lifecycle/1", "startup_cleanup/arc/1", "`Arc` clone + drop"),
        ("startup + cleanup, 2 threads", "startup_cleanup/lifecycle/2", "startup_cleanup/arc/2", "`Arc` clone + drop"),
        ("startup + cleanup, 1 thread", "startup_cleanup/lifecycle/1", "startup_cleanup/checked_add/1", "checked `fetch_add` + `fetch_sub` floor"),
        ("startup + cleanup, 2 threads", "startup_cleanup/lifecycle/2", "startup_cleanup/checked_add/2", "checked `fetch_add` + `fetch_sub` floor"),
        ("startup + cleanup, 2 threads", "startup_cleanup/lifecycle/2", "startup_cleanup/load_cas/2", "load-then-CAS pair"),
        ("startup + cleanup, 1 thread", "startup_cleanup/lifecycle/1", "startup_cleanup/std_mutex/1", "`std::sync::Mutex<usize>` counter"),
        ("startup + cleanup, 2 threads", "startup_cleanup/lifecycle/2", "startup_cleanup/std_mutex/2", "`std::sync::Mutex<usize>` counter"),
        ("startup + cleanup, 1 thread", "startup_cleanup/lifecycle/1", "startup_cleanup/rc_singleton/1", "`reference-counted-singleton` get + drop"),
        ("startup + cleanup, 2 threads", "startup_cleanup/lifecycle/2", "startup_cleanup/rc_singleton/2", "`reference-counted-singleton` get + drop"),
        ("guard enter + exit, 1 thread", "enter_exit/lifecycle/1", "enter_exit/shard/1", "per-thread `CachePadded` shard floor"),
        ("guard enter + exit, 2 threads", "enter_exit/lifecycle/2", "enter_exit/shard/2", "per-thread `CachePadded` shard floor"),
        ("guard enter + exit, 4 threads (2 cores)", "enter_exit/lifecycle/4", "enter_exit/shard/4", "per-thread `CachePadded` shard floor"),
        ("guard enter + exit, 1 thread", "enter_exit/lifecycle/1", "enter_exit/task_tracker/1", "tokio-util `TaskTracker::token()`"),
        ("guard enter + exit, 2 threads", "enter_exit/lifecycle/2", "enter_exit/task_tracker/2", "tokio-util `TaskTracker::token()`"),
        ("guard enter + exit, 4 threads (2 cores)", "enter_exit/lifecycle/4", "enter_exit/task_tracker/4", "tokio-util `TaskTracker::token()`"),
        ("operation token take + drop, 1 thread", "token/lifecycle/1", "token/task_tracker/1", "tokio-util `TaskTracker::token()`"),
        ("operation token take + drop, 2 threads", "token/lifecycle/2", "token/task_tracker/2", "tokio-util `TaskTracker::token()`"),
        ("operation token take + drop, 4 threads (2 cores)", "token/lifecycle/4", "token/task_tracker/4", "tokio-util `TaskTracker::token()`"),
        ("owned token (`Arc`ed lifecycle) take + drop, 1 thread", "token/owned/1", "token/task_tracker/1", "tokio-util `TaskTracker::token()`"),
        ("owned token (`Arc`ed lifecycle) take + drop, 2 threads", "token/owned/2", "token/task_tracker/2", "tokio-util `TaskTracker::token()`"),
        ("owned token clone + drop, 2 threads", "token/owned_clone/2", "token/task_tracker/2", "tokio-util `TaskTracker::token()`"),
        ("`with_socket`, own socket per thread, 1 thread", "socket/with_socket/1", "socket/floor/1", "shard add/sub + the socket's own mutex floor"),
        ("`with_socket`, own socket per thread, 2 threads", "socket/with_socket/2", "socket/floor/2", "shard add/sub + the socket's own mutex floor"),
        ("`operate`, own socket per thread, 1 thread", "socket/operate/1", "socket/floor/1", "shard add/sub + the socket's own mutex floor"),
        ("`operate`, own socket per thread, 2 threads", "socket/operate/2", "socket/floor/2", "shard add/sub + the socket's own mutex floor"),
        ("`with_socket`, own socket per thread, 4 threads (2 cores)", "socket/with_socket/4", "socket/floor/4", "shard add/sub + the socket's own mutex floor"),
        ("`with_socket`, own socket per thread, 2 threads", "socket/with_socket/2", "socket/with_socket/1", "its 1-thread time"),
        ("`with_socket`, own socket per thread, 4 threads (2 cores)", "socket/with_socket/4", "socket/with_socket/1", "its 1-thread time"),
        ("`WSPSend` of 1 KiB through the shim's table, 1 thread", "send/wsp_send/1", "send/core/1", "the same send through `with_socket`"),
        ("`WSPSend` of 1 KiB through the shim's table, 2 threads", "send/wsp_send/2", "send/core/2", "the same send through `with_socket`"),
        ("`WSPSend` of 1 KiB through the shim's table, 1 thread", "send/wsp_send/1", "send/core_operate/1", "the same send through `operate` (state + socket)"),
        ("`WSPSend` of 1 KiB through the shim's table, 2 threads", "send/wsp_send/2", "send/core_operate/2", "the same send through `operate` (state + socket)"),
        ("`WSPSend`, `WPUCreateSocketHandle` values, 1 thread", "send/wsp_send_upcall/1", "send/core_operate/1", "the same send through `operate` (state + socket)"),
        ("`WSPSend` of 1 KiB through the shim's table, 2 threads", "send/wsp_send/2", "send/wsp_send/1", "its 1-thread time"),
        ("the same send through `with_socket`, 1 thread", "send/core/1", "send/floor/1", "shard add/sub + the socket's own mutex + the copy floor"),
        ("`enter` + `state()`, 1 thread", "socket/enter_state/1", "enter_exit/shard/1", "per-thread `CachePadded` shard floor"),
        ("`enter` + `state()`, 2 threads", "socket/enter_state/2", "enter_exit/shard/2", "per-thread `CachePadded` shard floor"),
        ("final cleanup, 10,000 idle sockets + 10,000 resources", "final_cleanup/lifecycle/10000", "final_cleanup/vec_drop/10000", "dropping a `Vec` of the same boxed objects"),
        ("final cleanup, 100,000 + 100,000", "final_cleanup/lifecycle/100000", "final_cleanup/vec_drop/100000", "dropping a `Vec` of the same boxed objects"),
        ("final cleanup, 10,000 + 10,000, glibc thresholds pinned", "pinned/final_cleanup/lifecycle/10000", "pinned/final_cleanup/vec_drop/10000", "dropping a `Vec` of the same boxed objects"),
        ("final cleanup, 100,000 + 100,000, glibc thresholds pinned", "pinned/final_cleanup/lifecycle/100000", "pinned/final_cleanup/vec_drop/100000", "dropping a `Vec` of the same boxed objects"),
    ]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    cores = os.cpu_count()
    out.append(f"<!-- {n} run(s) of `cargo bench --bench contention`, `--bench drain` and `-p provider-lifecycle-winsock --bench send` "
               f"(and `-- final_cleanup` with GLIBC_TUNABLES={PINNED}), "
               f"{time.strftime('%Y-%m-%d')}, {cpu}, {cores} cores; medians of the runs' criterion medians -->")
    out.append("| benchmark | lifecycle | baseline | ratio |")
    out.append("|---|---|---|---|")
    for label, ours, base, base_label in rows:
        if ours in m and base in m:
            out.append(f"| {label} | {fmt(m[ours])} | {base_label} {fmt(m[base])} | {m[ours] / m[base]:.2f}× |")
    g = "graceful_drain/1000x1ms"
    if g in m:
        out.append(f"| drain of 1,000 closed graceful sockets that each need 1 ms | {fmt(m[g])} | one after another: ≥ 1,000 ms | — |")
    return out

main()
