#!/usr/bin/env python3
"""Lists, for each walk of `provider_lifecycle::docs::architecture`, every
file of the crate whose code runs in it: builds `examples/walks.rs` in a
debug build (nothing inlined away), runs it once under callgrind per walk
with collection toggled on for that walk's function, and reads the files
of the functions that ran from callgrind_annotate's inclusive listing.

    python3 .ci/walks.py           # list them
    python3 .ci/walks.py --check   # and fail unless the counts are the
                                   # table's in src/docs/architecture.rs
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WALKS = ["startup", "provider_call", "graceful_close", "final_cleanup"]


def main():
    subprocess.run(["cargo", "build", "--locked", "--quiet", "--example", "walks"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "debug", "examples", "walks")
    src = os.path.join(ROOT, "src") + os.sep
    crate_files = sorted(
        os.path.relpath(os.path.join(d, f), src)
        for d, _, fs in os.walk(src)
        for f in fs
        if f.endswith(".rs") and f != "tests.rs" and "docs" not in os.path.relpath(d, src).split(os.sep)
        and f != "docs.rs"
    )
    pattern = re.compile(re.escape(src) + r"([A-Za-z0-9_/]+\.rs)")
    documented = {}
    with open(os.path.join(src, "docs", "architecture.rs")) as f:
        doc = f.read()
    for m in re.finditer(r"^//! \| (\w+) \| (\d+) \| (\d+) \|$", doc, re.M):
        documented[m.group(1)] = int(m.group(3))
    # The doc's "out of the crate's N source files", joined across lines.
    total = re.search(r"crate's (\d+) source files", re.sub(r"\s*\n//!\s*", " ", doc))
    failed = total is None or int(total.group(1)) != len(crate_files)
    if failed:
        print(f"docs::architecture's file count is not {len(crate_files)}")
    with tempfile.TemporaryDirectory() as tmp:
        for walk in WALKS:
            out = os.path.join(tmp, walk + ".out")
            subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                 "--toggle-collect=walks::walk_" + walk, exe],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            listing = subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                check=True, capture_output=True, text=True,
            ).stdout
            files = sorted(set(pattern.findall(listing)))
            print(f"{walk}: {len(files)} of {len(crate_files)} files")
            print("  " + " ".join(files))
            if documented.get(walk) != len(files):
                print(f"  docs::architecture says {documented.get(walk)}")
                failed = True
    if failed and "--check" in sys.argv:
        print("walks.py: the architecture doc's walk table is stale")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
