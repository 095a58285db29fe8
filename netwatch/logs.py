"""Logging to stderr: human lines or JSON lines, with every known secret masked.

Text lines start with a UTC timestamp and the level; control characters in a message or a field
are escaped so that no value can forge a line. JSON lines carry the same fields as keys, plus the
`machine_fields` a person reading text does not need (the exit code of an error line).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from netwatch.printable import printable

LOG_FORMATS = ("text", "json")
_MASK = "***"


class Redactor(logging.Filter):
    """The secrets of one process (tokens, passwords): masked in every log line and stored text."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []  # longest first

    def add(self, secret: str | None) -> None:
        """Masks `secret` from now on, in logs and in whatever `mask` is given."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def mask(self, text: str) -> str:
        """`text` with every known secret replaced by ***, the longest first: a secret that holds a
        shorter one is masked whole, not cut into pieces that stay visible."""
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.mask(record.getMessage()), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {key: self.mask(value) if isinstance(value, str) else value
                             for key, value in fields.items()}
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        tail = "".join(f" {key}={printable(str(value))}" for key, value in fields.items())
        return f"{_timestamp(record)} {record.levelname.lower()}: {printable(record.getMessage())}{tail}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        entry.update(getattr(record, "machine_fields", None) or {})
        return json.dumps(entry, default=str)


def setup_logging(fmt: str, level: str, redactor: Redactor, stream: TextIO | None = None) -> None:
    """Routes the `netwatch` loggers to `stream` (stderr) in `fmt` ("text" or "json"), masked by `redactor`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(redactor)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger("netwatch")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
