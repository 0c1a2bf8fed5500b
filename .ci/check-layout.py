#!/usr/bin/env python3
"""Layout rules of the crate (issue: renovation), checked in CI:
- no module of src/ imports (by `use crate::...` or a `crate::` path in code)
  a module that imports it back, directly or through others;
- no file in src/ (of the core or of the Winsock shim crate) is above 700
  lines;
- the READMEs, the contract and the sources never point outside the
  repository (no `shared/`);
- the core never uses `unsafe` (it also `#![forbid(unsafe_code)]`);
- the import graph documented in src/docs/architecture.rs is exactly the
  graph of the code (so the documented one cannot go stale);
- no `use super::*` outside test modules (each file lists what it uses).
Prints the import graph; exits 1 on any violation."""
import glob, os, re, sys

os.chdir(os.path.join(os.path.dirname(__file__), ".."))
mods = [os.path.basename(p)[:-3] for p in glob.glob("src/*.rs")]
lib = open("src/lib.rs").read()
reexported = {}
for m in re.finditer(r"pub use (\w+)::\{?([^;]*?)\}?;", lib, re.S):
    for name in re.findall(r"\w+", m.group(2)):
        reexported[name] = m.group(1)

graph = {}
# A child module's file (src/lifecycle/teardown.rs) counts as its parent's.
# A file is read up to its test module (`#[cfg(test)] mod ...`), not up to
# the first `#[cfg(test)]`, which may mark a helper above non-test code.
for path in sorted(glob.glob("src/*.rs") + glob.glob("src/*/*.rs")):
    parts = os.path.relpath(path, "src").split(os.sep)
    mod = parts[0][:-3] if len(parts) == 1 else parts[0]
    if mod in ("lib", "contract"):
        continue
    code = re.split(r"#\[cfg\((?:all\()?test[^\]]*\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\b", open(path).read())[0]
    code = "\n".join(l for l in code.split("\n") if not l.strip().startswith("//"))
    deps = set()
    for m in re.finditer(r"crate::(\w+)", code):
        name = m.group(1)
        deps.add(name if name in mods else reexported.get(name, ""))
    for m in re.finditer(r"use crate::\{([^;]*)\};", code, re.S):
        for name in re.findall(r"\b\w+\b", m.group(1)):
            deps.add(name if name in mods else reexported.get(name, ""))
    deps -= {mod, ""}
    graph[mod] = sorted(set(graph.get(mod, [])) | deps)

def reaches(a, b, seen):
    for d in graph.get(a, []):
        if d == b:
            return True
        if d not in seen:
            seen.add(d)
            if reaches(d, b, seen):
                return True
    return False

bad = []
for mod, deps in sorted(graph.items()):
    print(f"{mod:10} -> {', '.join(deps)}")
cycles = [m for m in graph if reaches(m, m, set())]
if cycles:
    bad.append(f"import cycles through: {', '.join(sorted(cycles))}")
shim = "provider-lifecycle-winsock"
sources = glob.glob("src/**/*.rs", recursive=True) + glob.glob(f"{shim}/src/**/*.rs", recursive=True)
for path in sources:
    n = sum(1 for _ in open(path))
    if n > 700:
        bad.append(f"{path} has {n} lines (> 700)")
for path in ["README.md", "docs/CONTRACT.md", f"{shim}/README.md"] + sources:
    if not os.path.exists(path):
        bad.append(f"{path} is missing")
        continue
    if "shared/" in open(path).read():
        bad.append(f"{path} points outside the repository (shared/)")
# The documented graph: the ```text block under "# Who imports whom".
arch = open("src/docs/architecture.rs").read()
block = arch.split("//! # Who imports whom", 1)[1].split("//! ```text", 1)[1].split("//! ```", 1)[0]
documented = {}
for line in block.splitlines():
    line = line.removeprefix("//!").strip()
    if "->" in line:
        mod, deps = line.split("->", 1)
        documented[mod.strip()] = sorted(d.strip() for d in deps.split(",") if d.strip())
for mod in sorted(set(graph) | set(documented)):
    if graph.get(mod) != documented.get(mod):
        bad.append(
            f"src/docs/architecture.rs documents {mod} -> {documented.get(mod)}, "
            f"the code has {graph.get(mod)}"
        )
# `use super::*` only in test modules: a tests.rs file, or after #[cfg(test)].
for path in sources:
    if path.endswith("/tests.rs"):
        continue
    code = re.split(r"#\[cfg\((?:all\()?test[^\]]*\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\b", open(path).read())[0]
    if re.search(r"^\s*use super::\*;", code, re.M):
        bad.append(f"{path} has `use super::*` outside a test module")
if "#![forbid(unsafe_code)]" not in lib:
    bad.append("src/lib.rs lost #![forbid(unsafe_code)]")
for b in bad:
    print("layout:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
