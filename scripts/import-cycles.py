#!/usr/bin/env python3
"""No circles between files of src/ (issue 19 point 8): file A imports from file B and B,
directly or through others, from A.

An import is a `use` declaration (grouped trees `use crate::{a, b::{c, d}}` expanded) naming
`crate::`, `super::`, `self::` or a child module, or a `crate::…`/`super::…` path written out
in the code; each is resolved to the file that defines it (the longest module prefix that is
a file). Declaring a module (`mod x;`) is not an import. Test code does not count (files
named *_tests.rs or tests.rs, and everything after a top-level `#[cfg(test)]`). Prints each
circle; exits 1 if there is one.

Usage: import-cycles.py [SRC_DIR] [UNDER]   (UNDER: report only circles within that folder,
e.g. src/agent, while circles elsewhere are still being taken apart)
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
under = os.path.normpath(sys.argv[2]) if len(sys.argv) > 2 else None


def is_test_file(name):
    return name.endswith("_tests.rs") or name == "tests.rs"


def module_of(path):
    """The module path of a file: src/a/b.rs and src/a/b/mod.rs are ["a", "b"]."""
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel[-1] == "mod" or rel == ["lib"] or rel == ["main"]:
        rel = rel[:-1]
    return rel


def file_of(module):
    """The file defining `module` (a list of names), or None."""
    base = os.path.join(src, *module) if module else os.path.join(src, "lib")
    for cand in (base + ".rs", os.path.join(base, "mod.rs")):
        if os.path.isfile(cand):
            return cand
    return None


def code(path):
    """The file's code up to its top-level test module, comments removed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cut = re.search(r"^#\[cfg\(test\)\]", text, re.M)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [re.sub(r"\s+as\s+\w+$", "", tree)] if tree else []
    prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        for e in expand(p):
            out.append(prefix + e if e != "self" else prefix.rstrip(":"))
    return out


def imports(path):
    """The files `path` imports from."""
    here = module_of(path)
    found = set()
    text = code(path)
    uses = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
    paths = [p for m in uses.finditer(text) for p in expand(m.group(1))]
    # paths written out in the code (`super::history::History`) import as much as a `use`
    paths += re.findall(r"(?<![\w:])(?:crate|super)(?:::\w+)+", uses.sub("", text))
    for p in paths:
        segs = [s for s in p.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            mod, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            mod = list(here)
            while segs and segs[0] in ("super", "self"):
                if segs.pop(0) == "super":
                    mod = mod[:-1]
        elif file_of(here + segs[:1]):
            mod = list(here)  # a child module, named without `self::`
        else:
            continue
        # the longest prefix that is a file defines the item
        target = None
        for n in range(len(segs), -1, -1):
            target = file_of(mod + segs[:n])
            if target:
                break
        if target and os.path.normpath(target) != os.path.normpath(path):
            found.add(os.path.normpath(target))
    return found


graph = {}
for dirpath, _, files in os.walk(src):
    for name in sorted(files):
        if name.endswith(".rs") and not is_test_file(name) and name != "main.rs":
            path = os.path.normpath(os.path.join(dirpath, name))
            graph[path] = imports(path)

# Tarjan's strongly connected components: every component of two or more files is a circle.
index, low, stack, on, comps = {}, {}, [], set(), []


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
        if w not in graph:
            continue
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(graph):
    if v not in index:
        visit(v)

if under:
    comps = [c for c in comps if all(f.startswith(under + os.sep) for f in c)]
for comp in sorted(comps):
    print("import-cycles: circle: " + " <-> ".join(comp))
    for a in comp:
        for b in sorted(graph[a] & set(comp)):
            print(f"import-cycles:   {a} imports {b}")
if comps:
    print(f"import-cycles: {len(comps)} circles between files")
    sys.exit(1)
print(f"import-cycles: ok (no circle between the files of {under or src}/)")
