"""`register_log`: the audit trail of alerts raised and cleared (who, what, count, threshold, window)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from netwatch.db.tables import register_log


@dataclass(frozen=True)
class RegisterEntry:
    at: datetime
    action: str                     # "raised" | "cleared"
    account: str
    cuc: str
    code: str
    generation: int
    count: int
    threshold: int
    window_minutes: int
    reason: str | None
    active_seconds: float | None
    account_name: str | None
    company: str | None
    client_group: str | None
    run_id: int | None


def append_entries(conn: Connection, entries: Sequence[RegisterEntry]) -> None:
    """Appends entries in one batch."""
    if entries:
        conn.execute(register_log.insert(), [vars(entry) for entry in entries])


def read_entries(conn: Connection, since: datetime | None) -> list[RegisterEntry]:
    """Entries in the order they were written, optionally only those at or after `since`."""
    query = select(register_log).order_by(register_log.c.id)
    if since is not None:
        query = query.where(register_log.c.at >= since)
    fields = RegisterEntry.__dataclass_fields__
    return [RegisterEntry(**{k: v for k, v in row.items() if k in fields}) for row in conn.execute(query).mappings()]
