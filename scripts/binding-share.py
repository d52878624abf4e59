#!/usr/bin/env python3
"""How much hand-written code each binding holds, as a share of the engine it translates.

Counts the lines that are neither blank nor comments (nor Python docstrings) of:
  engine   core/src and hub/src (Rust), without the fuzzing entry points (hub/src/fuzzing.rs)
  C        ffi/src (Rust: the C ABI; its doxygen is comments; the header generator,
           ffi/header, is a build tool)
  Python   bindings-python/src (Rust) and bindings-python/python/c2d/*.py (the stubs, a
           module that says it is written by a script, "do not edit", as _sync.py is by
           scripts/python-sync.py, and the tests left out)
  Node.js  bindings-node/src (Rust) and bindings-node/index.ts (index.js, index.d.ts and
           native.d.ts are compiled or generated; the tests left out)
Unit-test module files (`tests.rs`) and test folders are left out everywhere; with
--strict, so are the `#[cfg(test)] mod tests { ... }` blocks inside source files (by default
they count, as in the measure issue 25 set its limits by). Prints each binding's share of the
engine. A binding that grows past about a sixth of the engine is translating it a second time
(see docs/architecture.md).

    scripts/binding-share.py [--strict] [REPOSITORY]   (this script's checkout by default)
"""

from __future__ import annotations

import ast
import io
import os
import sys
import tokenize

ARGS = [a for a in sys.argv[1:] if a != "--strict"]
STRICT = "--strict" in sys.argv[1:]
ROOT = os.path.abspath(ARGS[0] if ARGS else os.path.join(os.path.dirname(__file__), ".."))
SKIP_DIRS = {"node_modules", "target", "__pycache__", "tests", "test"}


def slash_comment_code(path: str) -> int:
    """Lines of Rust or TypeScript that are not blank, `//` or `/* */` comments, nor in a
    `#[cfg(test)] mod tests` module."""
    count, in_block = 0, False
    # the depth of braces in a unit-test module being passed over; None outside one (the
    # braces of its strings and comments count too: the test modules have none unbalanced)
    test_depth: int | None = None
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    for i, s in enumerate(lines):
        if STRICT and s == "#[cfg(test)]" and i + 1 < len(lines) and lines[i + 1].startswith("mod tests"):
            test_depth = 0
            continue
        if test_depth is not None:
            test_depth += s.count("{") - s.count("}")
            if test_depth <= 0 and ("}" in s or s.endswith(";")):
                test_depth = None
            continue
        if in_block:
            in_block = "*/" not in s
            continue
        if s.startswith("/*"):
            in_block = "*/" not in s
            continue
        if s and not s.startswith("//"):
            count += 1
    return count


def python_code(path: str) -> int:
    """Lines of Python that hold a token other than comments, and are not docstrings."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docstrings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    quiet = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in quiet:
            code.update(range(tok.start[0], tok.end[0] + 1))
    return len(code - docstrings)


def written_by_a_script(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        head = f.read(1000)
    return "do not edit" in head


def files(folder: str, extension: str, leave_out: tuple[str, ...] = ()) -> list[str]:
    found = []
    for here, dirs, names in os.walk(os.path.join(ROOT, folder)):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in names:
            relative = os.path.relpath(os.path.join(here, name), ROOT)
            if name.endswith(extension) and name != "tests.rs" and relative not in leave_out:
                if not (extension == ".py" and written_by_a_script(os.path.join(here, name))):
                    found.append(relative)
    return sorted(found)


def code(paths: list[str]) -> int:
    count = python_code if paths and paths[0].endswith(".py") else slash_comment_code
    return sum(count(os.path.join(ROOT, p)) for p in paths)


engine = code(files("core/src", ".rs")) + code(
    files("hub/src", ".rs", leave_out=("hub/src/fuzzing.rs",))
)
bindings = {
    "C (ffi)": code(files("ffi/src", ".rs")),
    "Python": code(files("bindings-python/src", ".rs"))
    + code(files("bindings-python/python", ".py")),
    "Node.js": code(files("bindings-node/src", ".rs")) + code(["bindings-node/index.ts"]),
}
print(f"engine (core + hub): {engine} lines{' (--strict)' if STRICT else ''}")
for name, lines in bindings.items():
    print(f"{name}: {lines} lines, {100 * lines / engine:.1f} % of the engine")
