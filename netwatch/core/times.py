"""Aware UTC time only: the current instant, and the one check that a datetime is timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime


def require_aware(value: datetime, name: str) -> None:
    """Raises ValueError naming `name` when `value` is naive: a programming error, never input."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


def utc_now() -> datetime:
    """This machine's clock, as aware UTC (the production `Deps.clock`)."""
    return datetime.now(UTC)
