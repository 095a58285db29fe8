"""The state the run metrics report (netwatch/metrics.py): a few grouped reads, none per row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from netwatch.db.outbox import OPEN_STATUSES
from netwatch.db.tables import hosts, outbox, triggers
from netwatch.db.triggers import ACTIVE


@dataclass(frozen=True)
class OpenMessages:
    """Outbox rows of one channel and open status, and when the oldest of them was queued."""

    channel: str
    status: str
    count: int
    oldest: datetime


def state_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """Hosts and checks by (kind, status), for every shard."""
    rows = conn.execute(select(hosts.c.kind, hosts.c.status, func.count()).group_by(hosts.c.kind, hosts.c.status))
    return {(kind, status): int(count) for kind, status, count in rows}


def open_messages(conn: Connection) -> list[OpenMessages]:
    """Pending, failed and dead outbox rows per channel (a range of the status index: delivered rows are
    not read)."""
    rows = conn.execute(
        select(outbox.c.channel, outbox.c.status, func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.status.in_(OPEN_STATUSES)).group_by(outbox.c.channel, outbox.c.status))
    return [OpenMessages(channel, status, int(count), oldest) for channel, status, count, oldest in rows]


def active_alerts(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(triggers.c.status == ACTIVE)).scalar_one())
