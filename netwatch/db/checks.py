"""`check_results`: one row per host per run with the numbers of its ping check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from netwatch import limits
from netwatch.core.checks import CheckResult
from netwatch.db.tables import check_results


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
                "error": row.result.error[: limits.ERROR_TEXT] if row.result.error else None,
            }
            for row in rows
        ],
    )
