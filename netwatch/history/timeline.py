"""The read models of one host's recent history (`netwatch history HOST`) and of each host's last check.

Raw checks (kept `retention.raw_days`) with the reason of a failure, and confirmed transitions.
`checks` has no index by host (see netwatch.db.tables): a host's checks are primary-key points
(checked_at, target_id), checked_at running over the starts of the ping-sweep runs (job_runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, func, select, type_coerce
from sqlalchemy.engine import Connection

from netwatch.core.rollup import CHECK_NAMES, STATE_NAMES
from netwatch.db.runs import run_seconds
from netwatch.db.tables import check_errors, checks, hosts, targets, transitions
from netwatch.db.types import EpochOf
from netwatch.errors import UsageError
from netwatch.excerpt import excerpt

COLUMNS = ("at", "kind", "status", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "reason", "from_state",
           "to_state", "streak", "held_s")
TABLE = ("at", "kind", "status", "loss_pct", "rtt_avg_ms", "reason", "streak", "held_s")
# netwatch/jobs/ping_sweep.py and http_check.py JOB: their runs' starts are the checks' times.
CHECKING_JOBS = ("ping-sweep", "http-check")
# Run times per statement of a host's checks: a day of runs a minute is 2 statements.
TIMES_PER_STATEMENT = 1_000


@dataclass(frozen=True)
class LastCheck:
    """A host's latest stored check: loss, RTT and the reason of a failure."""

    loss_pct: float | None
    rtt_avg_ms: float | None
    reason: str | None


def _ms(microseconds: int | None) -> float | None:
    return None if microseconds is None else round(microseconds / 1000, 3)


def _loss(sent: int, received: int) -> float | None:
    return None if sent == 0 else round(100 * (sent - received) / sent, 3)


def require_target(conn: Connection, name: str, option: str) -> int:
    """The history id of host `name`; a UsageError naming `option` when it was never checked."""
    found = conn.execute(select(targets.c.id).where(targets.c.name == name)).scalar_one_or_none()
    if found is None:
        raise UsageError(f"{option}: no host named {excerpt(name)} has ever been checked")
    return int(found)


def timeline_rows(conn: Connection, target_id: int, since: datetime) -> list[dict[str, Any]]:
    """A host's checks and transitions since `since`, newest first (a transition above the check that confirmed it).

    The checks: one point per ping-sweep or http-check run since `since` or the oldest raw check
    (job_runs are kept longer, and `--since` may reach back years), TIMES_PER_STATEMENT runs a statement.
    """
    oldest = conn.execute(select(func.min(checks.c.checked_at))).scalar()
    times = [] if oldest is None else run_seconds(conn, CHECKING_JOBS, max(since, oldest))
    at = type_coerce(checks.c.checked_at, Integer)
    check_rows = [
        row
        for first in range(0, len(times), TIMES_PER_STATEMENT)
        for row in conn.execute(
            select(checks, check_errors.c.text)
            .select_from(checks.outerjoin(check_errors, check_errors.c.id == checks.c.error_id))
            .where(and_(at.in_(times[first : first + TIMES_PER_STATEMENT]), checks.c.target_id == target_id))
        )
    ]
    rows: list[tuple[datetime, int, dict[str, Any]]] = [
        (row.checked_at, 0, {"at": row.checked_at, "kind": "check", "status": CHECK_NAMES[row.status],
                             "loss_pct": _loss(row.sent, row.received), "rtt_min_ms": _ms(row.rtt_min_us),
                             "rtt_avg_ms": _ms(row.rtt_avg_us), "rtt_max_ms": _ms(row.rtt_max_us),
                             "reason": row.text})
        for row in check_rows
    ]
    change_rows = conn.execute(
        select(transitions).where(and_(transitions.c.target_id == target_id, transitions.c.at >= since))
    )
    rows.extend(
        (row.at, 1, {"at": row.at, "kind": "transition", "status": STATE_NAMES[row.to_state],
                     "from_state": STATE_NAMES[row.from_state], "to_state": STATE_NAMES[row.to_state],
                     "streak": row.streak, "held_s": row.held_s})
        for row in change_rows
    )
    return [row for _, _, row in sorted(rows, key=lambda item: (item[0], item[1]), reverse=True)]


def last_checks(conn: Connection) -> dict[str, LastCheck]:
    """Each inventory host's latest check, by name: the point (hosts.last_check_at, its target), one statement."""
    rows = conn.execute(
        select(targets.c.name, checks.c.sent, checks.c.received, checks.c.rtt_avg_us, check_errors.c.text)
        .select_from(targets.join(hosts, hosts.c.name == targets.c.name)
                     .join(checks, and_(type_coerce(checks.c.checked_at, Integer) == EpochOf(hosts.c.last_check_at),
                                        checks.c.target_id == targets.c.id))
                     .outerjoin(check_errors, check_errors.c.id == checks.c.error_id))
    )
    return {row.name: LastCheck(_loss(row.sent, row.received), _ms(row.rtt_avg_us), row.text) for row in rows}
