#!/usr/bin/env python3
"""Writes the Python package's blocking API, bindings-python/python/c2d/_sync.py, from its
asyncio API, aio.py, the one both are kept in: `async def` becomes `def`, `await`,
`async for` and `async with` lose their `async`, the asynchronous special methods and types
become their blocking twins, each native `*_async(` call becomes the blocking native call of
the same name, and a line marked `# asyncio only` is left out. The module's docstring is the
blocking one below.

    scripts/python-sync.py            writes _sync.py
    scripts/python-sync.py --check    fails when _sync.py is not what it would write
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bindings-python" / "python" / "c2d"
SOURCE, TARGET = PACKAGE / "aio.py", PACKAGE / "_sync.py"

DOCSTRING = '''"""The blocking clients. Every call that waits releases the GIL, and Ctrl-C interrupts it
within about 100 ms.

Written from ``aio.py`` by ``scripts/python-sync.py``: do not edit; edit ``aio.py`` and run
the script."""'''

# whole names, as tokens
NAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "AsyncIterator": "Iterator",
    "StopAsyncIteration": "StopIteration",
}


def blocking(source: str) -> str:
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    replaced = []
    for i, tok in enumerate(tokens):
        text, following = tok.string, tokens[i + 1].string if i + 1 < len(tokens) else ""
        if tok.type == tokenize.NAME:
            if (text == "async" and following in ("def", "for", "with")) or text == "await":
                text = ""
            elif text.endswith("_async") and following == "(":
                text = text[: -len("_async")]
            else:
                text = NAMES.get(text, text)
        replaced.append(text)
    return rebuild(source, tokens, replaced)


def rebuild(source: str, tokens: list[tokenize.TokenInfo], replaced: list[str]) -> str:
    """`source` with each token's text replaced (an empty one with the space after it)."""
    lines = source.splitlines(keepends=True)
    # edits per line, made from the right so that the columns stay valid
    edits: dict[int, list[tuple[int, int, str]]] = {}
    for tok, text in zip(tokens, replaced):
        if text == tok.string:
            continue
        (row, col), (end_row, end_col) = tok.start, tok.end
        assert row == end_row, "a replaced token spans lines"
        if text == "":
            # the word and the one space after it
            line = lines[row - 1]
            if end_col < len(line) and line[end_col] == " ":
                end_col += 1
        edits.setdefault(row, []).append((col, end_col, text))
    for row, changes in edits.items():
        line = lines[row - 1]
        for col, end, text in sorted(changes, reverse=True):
            line = line[:col] + text + line[end:]
        lines[row - 1] = line
    return "".join(lines)


def written() -> str:
    source = "".join(line for line in SOURCE.read_text().splitlines(keepends=True)
                     if not line.rstrip().endswith("# asyncio only"))
    match = re.match(r'\s*""".*?"""', source, re.S)
    if not match:
        raise SystemExit(f"{SOURCE} does not start with a docstring")
    return DOCSTRING + blocking(source[match.end():])


def main() -> int:
    text = written()
    if sys.argv[1:] == ["--check"]:
        if TARGET.read_text() != text:
            print(f"{TARGET} is not what scripts/python-sync.py writes from aio.py: run it", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
