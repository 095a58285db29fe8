"""Deleting history past retention in bounded batches, each a closed range of keys in an index's order.

A batch is found by a plain read of the next `limit` keys after the previous batch (an index range,
no locks), then deleted by that key range: no statement touches more than `limit` rows, none scans
rows it keeps beyond its range, and every batch is its own transaction. A walk killed between
batches (or inside one, which rolls back) leaves only whole batches deleted; the next run starts over
from the oldest row left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from netwatch.db import outbox
from netwatch.db.tables import (
    checks,
    job_runs,
    register_log,
    rollups_daily,
    rollups_hourly,
    scan_counts,
    transitions,
)
from netwatch.db.tables import outbox as outbox_table

Key = tuple[Any, ...]

# The kinds of history, in the order cleanup walks them: the small ones first, so that a run stopped
# in the bulk of the raw checks has done them.
KINDS = ("job_runs", "outbox", "register_log", "scan_counts", "transitions", "rollups_daily", "rollups_hourly",
         "checks")


@dataclass(frozen=True)
class Walk:
    """The rows of one kind past retention, visited in the order of one index.

    `order`: the index's columns, unique together (a primary key, or a time column then the id);
    `where`: the rows that may go. The index serves `where`'s equalities and its range on `order[0]`.
    """

    kind: str
    table: Table
    order: tuple[ColumnElement[Any], ...]
    where: ColumnElement[bool]


def _after(order: Sequence[ColumnElement[Any]], key: Key) -> ColumnElement[bool]:
    """Rows after `key` in `order`; spelt with a plain range on the first column, which every
    optimizer turns into an index range (MariaDB does not for a row-value comparison)."""
    first, *rest = order
    if not rest:
        return first > key[0]
    return and_(first >= key[0], or_(first > key[0], _after(rest, key[1:])))


def _up_to(order: Sequence[ColumnElement[Any]], key: Key) -> ColumnElement[bool]:
    """Rows up to and including `key` in `order`."""
    first, *rest = order
    if not rest:
        return first <= key[0]
    return and_(first <= key[0], or_(first < key[0], _up_to(rest, key[1:])))


def next_batch(conn: Connection, walk: Walk, after: Key | None, limit: int) -> list[Key]:
    """The keys of the next (at most) `limit` rows of `walk` after `after` (from the start: None), in order."""
    query = select(*walk.order).where(walk.where).order_by(*walk.order).limit(limit)
    if after is not None:
        query = query.where(_after(walk.order, after))
    return [tuple(row) for row in conn.execute(query)]


def delete_batch(conn: Connection, walk: Walk, after: Key | None, last: Key) -> int:
    """Deletes the rows of `walk` after `after` up to `last` (a batch `next_batch` found); returns how many."""
    conditions = [walk.where, _up_to(walk.order, last)]
    if after is not None:
        conditions.append(_after(walk.order, after))
    return int(conn.execute(delete(walk.table).where(and_(*conditions))).rowcount)


def retention_walks(conn: Connection, cutoffs: Mapping[str, datetime], run_id: int) -> list[Walk]:
    """What cleanup deletes, kind by kind (`cutoffs`: the oldest moment each of KINDS keeps).

    job_runs: finished runs only (never one still running, never run `run_id`), one walk per job
    for the (job, started_at) index. outbox: delivered (`sent`) messages only, by delivery time;
    pending, failed, dead, undelivered and superseded ones are kept whatever their age. A sent
    message has no next attempt, so its rows are in id order in the (status, next_attempt_at) index.
    """
    jobs = sorted(conn.execute(select(job_runs.c.job).distinct()).scalars())
    walks = {
        "job_runs": [
            Walk("job_runs", job_runs, (job_runs.c.started_at, job_runs.c.id),
                 and_(job_runs.c.job == job, job_runs.c.started_at < cutoffs["job_runs"],
                      job_runs.c.finished_at.is_not(None), job_runs.c.id != run_id))
            for job in jobs
        ],
        "outbox": [
            Walk("outbox", outbox_table, (outbox_table.c.id,),
                 and_(outbox_table.c.status == outbox.SENT, outbox_table.c.next_attempt_at.is_(None),
                      outbox_table.c.delivered_at < cutoffs["outbox"]))
        ],
        "register_log": [_by_time("register_log", register_log, register_log.c.at, register_log.c.id, cutoffs)],
        "scan_counts": [_by_time("scan_counts", scan_counts, scan_counts.c.window_end, scan_counts.c.id, cutoffs)],
        "transitions": [_by_time("transitions", transitions, transitions.c.at, transitions.c.id, cutoffs)],
        "rollups_daily": [_by_time("rollups_daily", rollups_daily, rollups_daily.c.day, rollups_daily.c.target_id,
                                   cutoffs)],
        "rollups_hourly": [_by_time("rollups_hourly", rollups_hourly, rollups_hourly.c.hour,
                                    rollups_hourly.c.target_id, cutoffs)],
        "checks": [_by_time("checks", checks, checks.c.checked_at, checks.c.target_id, cutoffs)],
    }
    return [walk for kind in KINDS for walk in walks[kind]]


def _by_time(kind: str, table: Table, at: ColumnElement[Any], tie: ColumnElement[Any],
             cutoffs: Mapping[str, datetime]) -> Walk:
    """Rows older than the kind's cutoff, in the order of an index on (`at`, `tie`)."""
    return Walk(kind, table, (at, tie), at < cutoffs[kind])
