"""Bounded views of input values for error messages: a hostile file cannot make an error line huge."""

from __future__ import annotations

import reprlib

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
