"""`triggers`: one row per (account, CUC, code) alarm-volume group that has ever raised an alert.

The primary key makes raising idempotent: a group has at most one row, `status` says whether its
alert is active, and `generation` counts how often it was raised (part of notification keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from netwatch.core.volume import ActiveTrigger, GroupKey
from netwatch.db.tables import triggers
from netwatch.db.upsert import upsert_rows

ACTIVE = "active"
CLEARED = "cleared"
_UPDATED = [c.name for c in triggers.columns if c.name not in ("account", "cuc", "code")]


@dataclass(frozen=True)
class TriggerRow:
    key: GroupKey
    status: str
    generation: int
    count: int
    peak: int
    threshold: int
    first_seen: datetime
    last_seen: datetime
    raised_at: datetime
    cleared_at: datetime | None
    clear_reason: str | None
    account_name: str | None
    company: str | None
    client_group: str | None
    updated_at: datetime
    partition: str | None = None
    zone: str | None = None

    def active(self) -> ActiveTrigger:
        """The state the volume rules need."""
        return ActiveTrigger(key=self.key, count=self.count, peak=self.peak, threshold=self.threshold,
                             raised_at=self.raised_at, last_seen=self.last_seen)


def load_triggers(conn: Connection, only_active: bool = False) -> dict[GroupKey, TriggerRow]:
    """All trigger rows (or the active ones), by group, in one query."""
    query = select(triggers)
    if only_active:
        query = query.where(triggers.c.status == ACTIVE)
    return {row.key: row for row in (_row(r) for r in conn.execute(query).mappings())}


def save_triggers(conn: Connection, rows: Sequence[TriggerRow]) -> None:
    """Upserts every row in one statement."""
    upsert_rows(conn, triggers, [_values(row) for row in rows], key=["account", "cuc", "code"], update=_UPDATED)


def list_triggers(conn: Connection, active_only: bool, since: datetime | None) -> list[TriggerRow]:
    """Triggers for reports, most recently seen first."""
    query = select(triggers).order_by(triggers.c.last_seen.desc(), triggers.c.account, triggers.c.cuc)
    if active_only:
        query = query.where(triggers.c.status == ACTIVE)
    if since is not None:
        query = query.where(triggers.c.last_seen >= since)
    return [_row(r) for r in conn.execute(query).mappings()]


def _values(row: TriggerRow) -> dict[str, object]:
    return {
        "account": row.key.account, "cuc": row.key.cuc, "code": row.key.code, "status": row.status,
        "generation": row.generation, "count": row.count, "peak": row.peak, "threshold": row.threshold,
        "first_seen": row.first_seen, "last_seen": row.last_seen, "raised_at": row.raised_at,
        "cleared_at": row.cleared_at, "clear_reason": row.clear_reason, "account_name": row.account_name,
        "company": row.company, "client_group": row.client_group, "updated_at": row.updated_at,
        "partition_code": row.partition, "zone_code": row.zone,
    }


def _row(r: object) -> TriggerRow:
    m = dict(r)  # type: ignore[call-overload]
    return TriggerRow(
        key=GroupKey(m["account"], m["cuc"], m["code"]), status=m["status"], generation=m["generation"],
        count=m["count"], peak=m["peak"], threshold=m["threshold"], first_seen=m["first_seen"],
        last_seen=m["last_seen"], raised_at=m["raised_at"], cleared_at=m["cleared_at"],
        clear_reason=m["clear_reason"], account_name=m["account_name"], company=m["company"],
        client_group=m["client_group"], updated_at=m["updated_at"], partition=m["partition_code"],
        zone=m["zone_code"],
    )
