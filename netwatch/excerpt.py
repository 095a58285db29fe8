"""Bounded views of values for error messages: a hostile file or server cannot make an error line huge."""

from __future__ import annotations

import reprlib

from netwatch.printable import printable

WIDTH = 80


def _make_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxstring = shown.maxother = shown.maxlong = WIDTH
    shown.maxlist = shown.maxtuple = shown.maxdict = shown.maxset = 5
    shown.maxlevel = 3
    return shown


_REPR = _make_repr()


def excerpt(value: object) -> str:
    """repr(value), cut to about WIDTH characters and a few items per level."""
    return _REPR.repr(value)


def clip(text: str, width: int = 2 * WIDTH) -> str:
    """`text` itself (a path, a key), or its start and end around '...' when longer than `width`."""
    if len(text) <= width:
        return text
    half = (width - 3) // 2
    return f"{text[:half]}...{text[-half:]}"


def one_line(text: str, limit: int) -> str:
    """Server text as one short line: whitespace runs as one space, control characters escaped, cut at `limit`."""
    line = printable(" ".join(text[: limit * 4].split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."
