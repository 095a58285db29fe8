"""The one check that a datetime is timezone-aware (netwatch uses aware UTC only)."""

from __future__ import annotations

from datetime import datetime


def require_aware(value: datetime, name: str) -> None:
    """Raises ValueError naming `name` when `value` is naive: a programming error, never input."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
