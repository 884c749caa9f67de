#!/usr/bin/env python3
"""Size limits of src/ (issue 12): no file over 700 lines, no function over 100 lines.

Test code does not count: files named *_tests.rs or tests.rs, and everything after a
top-level `#[cfg(test)]`. Assumes rustfmt'd code (a function ends at the first line that is
its own indentation followed by `}`). Prints each violation; exits 1 if there is one.

Usage: size-limits.py [SRC_DIR] [MAX_FILE_LINES] [MAX_FN_LINES]
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
max_file = int(sys.argv[2]) if len(sys.argv) > 2 else 700
max_fn = int(sys.argv[3]) if len(sys.argv) > 3 else 100

FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def is_test_file(name):
    return name.endswith("_tests.rs") or name == "tests.rs"


def code_lines(path):
    """The file's lines up to its top-level test module."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]"):
            return lines[:i]
    return lines


def long_functions(path, lines):
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith((";", "{}")):
            continue
        close = m.group(1) + "}"
        for j in range(i + 1, len(lines)):
            if lines[j] == close:
                n = j - i + 1
                if n > max_fn:
                    yield f"{path}:{i + 1}: fn {m.group(2)} is {n} lines (limit {max_fn})"
                break


problems = []
for dirpath, _, files in os.walk(src):
    for name in sorted(files):
        if not name.endswith(".rs") or is_test_file(name):
            continue
        path = os.path.join(dirpath, name)
        lines = code_lines(path)
        if len(lines) > max_file:
            problems.append(f"{path}: {len(lines)} lines (limit {max_file})")
        problems.extend(long_functions(path, lines))

for p in sorted(problems):
    print(f"size-limits: {p}")
if problems:
    print(f"size-limits: {len(problems)} over the limits; split the file or function")
    sys.exit(1)
print(f"size-limits: ok (files <= {max_file} lines, functions <= {max_fn} lines in {src}/)")
