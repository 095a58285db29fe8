"""Text for a terminal or a line-based log: control characters shown as escapes, never acted on.

A value from an API or the inventory may hold a newline or an escape sequence; written as is, it
would forge a log line, break a table row or move the cursor.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with every control character replaced by a visible escape (\\n, \\x1b, \\u2028 ...)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
