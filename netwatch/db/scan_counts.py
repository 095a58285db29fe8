"""`scan_counts`: per-group event counts of each event-scan run, for later history queries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.engine import Connection

from netwatch.core.volume import GroupCount, GroupKey, by_key
from netwatch.db.tables import scan_counts


def record_counts(conn: Connection, run_id: int, start: datetime, end: datetime,
                  counts: Mapping[GroupKey, GroupCount], floor: int) -> int:
    """Stores the groups counted at least `floor` times in one batch; returns how many."""
    rows = [
        {"run_id": run_id, "window_start": start, "window_end": end, "account": key.account, "cuc": key.cuc,
         "code": key.code, "count": group.count}
        for key, group in by_key(counts)
        if group.count >= floor
    ]
    if rows:
        conn.execute(scan_counts.insert(), rows)
    return len(rows)
