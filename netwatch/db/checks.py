"""`check_results`: one row per host per run with the numbers of its ping check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from netwatch.core.checks import CheckResult
from netwatch.db.tables import check_results

ERROR_WIDTH = 255


@dataclass(frozen=True)
class CheckRow:
    run_id: int
    host_name: str
    checked_at: datetime
    address: str | None
    result: CheckResult


def insert_check_results(conn: Connection, rows: Sequence[CheckRow]) -> None:
    """Inserts all rows in one batch."""
    if not rows:
        return
    conn.execute(
        check_results.insert(),
        [
            {
                "run_id": row.run_id,
                "host_name": row.host_name,
                "checked_at": row.checked_at,
                "address": row.address,
                "sent": row.result.sent,
                "received": row.result.received,
                "loss_percent": row.result.loss_percent,
                "rtt_min_ms": row.result.rtt_min_ms,
                "rtt_avg_ms": row.result.rtt_avg_ms,
                "rtt_max_ms": row.result.rtt_max_ms,
                "status": str(row.result.status),
                "attempts": row.result.attempts,
                "error": row.result.error[:ERROR_WIDTH] if row.result.error else None,
            }
            for row in rows
        ],
    )


def results_of_run(conn: Connection, run_id: int) -> list[dict[str, object]]:
    """The check rows a run wrote, by host name (for reports and tests)."""
    rows = conn.execute(
        select(check_results).where(check_results.c.run_id == run_id).order_by(check_results.c.host_name)
    ).mappings()
    return [dict(row) for row in rows]
