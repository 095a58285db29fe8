"""Logging to stderr: human lines or JSON lines, with every registered secret masked."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")
_MASK = "***"


class _Redactor(logging.Filter):
    """Replaces every registered secret in the final message text, whatever put it there."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, _MASK)
        record.msg, record.args = message, None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {key: self._clean(value) for key, value in fields.items()}
        return True

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, _MASK)
        return value


_redactor = _Redactor()


def register_secret(secret: str) -> None:
    """Masks `secret` in every later log line."""
    if secret:
        _redactor.secrets.add(secret)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        tail = "".join(f" {key}={value}" for key, value in fields.items())
        return f"{record.levelname.lower()}: {record.getMessage()}{tail}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        return json.dumps(entry, default=str)


def setup_logging(fmt: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Routes the `netwatch` loggers to `stream` (stderr) in `fmt` ("text" or "json")."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_redactor)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger("netwatch")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
