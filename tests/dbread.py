"""Reading back what the jobs stored, for assertions: helpers the jobs themselves never need."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from netwatch.core import rollup
from netwatch.core.volume import GroupKey
from netwatch.db.outbox import OutboxItem, item_from_row
from netwatch.db.runs import RunRow as JobRun
from netwatch.db.runs import run_row
from netwatch.db.tables import check_errors, checks, job_runs, outbox, scan_counts, targets


def list_items(conn: Connection, channel: str | None = None, status: str | None = None) -> list[OutboxItem]:
    """Outbox items, oldest first, optionally of one channel and status."""
    query = select(outbox).order_by(outbox.c.id)
    if channel is not None:
        query = query.where(outbox.c.channel == channel)
    if status is not None:
        query = query.where(outbox.c.status == status)
    return [item_from_row(row) for row in conn.execute(query).mappings()]


def count_by_status(conn: Connection) -> dict[str, int]:
    """How many outbox items are in each status."""
    rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    return {status: count for status, count in rows}


def named_checks(conn: Connection) -> list[dict[str, object]]:
    """Every raw check with its host's name, status and states by name and its error text; oldest first."""
    query = (select(checks, targets.c.name.label("host_name"), check_errors.c.text.label("error"))
             .join(targets, targets.c.id == checks.c.target_id)
             .outerjoin(check_errors, check_errors.c.id == checks.c.error_id)
             .order_by(checks.c.checked_at, targets.c.name))
    rows = []
    for row in conn.execute(query).mappings():
        named = dict(row)
        named["status"] = rollup.CHECK_NAMES[row["status"]]
        named["prior"], named["state"] = rollup.STATE_NAMES[row["prior"]], rollup.STATE_NAMES[row["state"]]
        rows.append(named)
    return rows


def counts_of_run(conn: Connection, run_id: int) -> dict[GroupKey, int]:
    """The group counts one event-scan run recorded."""
    rows = conn.execute(select(scan_counts).where(scan_counts.c.run_id == run_id)).mappings()
    return {GroupKey(r["account"], r["cuc"], r["code"]): r["count"] for r in rows}


def recent_runs(conn: Connection, job: str, limit: int = 20) -> list[JobRun]:
    """The latest runs of `job`, newest first."""
    rows = conn.execute(
        select(job_runs).where(job_runs.c.job == job).order_by(job_runs.c.id.desc()).limit(limit)
    ).mappings()
    return [run_row(row) for row in rows]
