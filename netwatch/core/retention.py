"""Retention cutoffs: which history is past its time. Pure code, no I/O.

A kind kept N days keeps the UTC day in progress and the N whole UTC days before it: everything
older than the start of the day N days before today is past retention. So a cutoff never falls
inside an hour or a day, and a rollup bucket is kept or deleted whole.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def cutoff(now: datetime, days: int) -> datetime:
    """The oldest moment kept: the start of the UTC day `days` days before `now`'s (aware UTC)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)
