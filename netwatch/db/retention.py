"""Deleting history past retention in bounded batches, each a range of its table's keys.

Most kinds (`Walk`): a batch is found by a plain read of the next `limit` keys after the previous
batch (an index range, no locks), then deleted by that key range. The raw checks (`RunWalk`, the
bulk: one row per host per run) go a run at a time, in primary-key order: as many whole runs
(every row of one checked_at) as fit in `limit` rows, a run too big for one batch split by target
id. Each of their statements is a plain range of the primary key, so none reads beyond its batch.
No statement touches more than `limit` rows and every batch is its own transaction. A walk killed
between batches (or inside one, which rolls back) leaves only whole batches deleted; the next run
starts over from the oldest row left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Table, and_, delete, func, literal, or_, select, type_coerce, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from netwatch.core.mtd import month_start
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


@dataclass(frozen=True)
class RunWalk:
    """The raw checks older than `before`, run by run in primary-key order (checked_at, target_id)."""

    kind: str
    before: datetime

    @property
    def table(self) -> Table:
        return checks


@dataclass(frozen=True)
class _FromRun:
    """A RunWalk's next batch starts with the run at `at` (epoch seconds) or the first one after it."""

    at: int


@dataclass(frozen=True)
class _InRun:
    """A RunWalk's next batch is the rest of the run at `at`, from target id `target_id` on."""

    at: int
    target_id: int


Position = Key | _FromRun | _InRun


@dataclass(frozen=True)
class Batch:
    """The rows of one batch (`where`; `rows` of them, None when not counted yet) and where the next
    one starts (`resume`; None after the last)."""

    where: ColumnElement[bool]
    rows: int | None
    resume: Position | None


def next_batch(conn: Connection, walk: Walk | RunWalk, after: Position | None, limit: int) -> Batch | None:
    """The next batch of at most `limit` rows of `walk` from `after` (from the start: None); None when none is left."""
    if isinstance(walk, RunWalk):
        return _next_runs(conn, walk, after if isinstance(after, _FromRun | _InRun) else _FromRun(0), limit)
    query = select(*walk.order).where(walk.where).order_by(*walk.order).limit(limit)
    conditions = [walk.where]
    if after is not None:
        query = query.where(_after(walk.order, after))
        conditions.append(_after(walk.order, after))
    keys = [tuple(row) for row in conn.execute(query)]
    if not keys:
        return None
    conditions.append(_up_to(walk.order, keys[-1]))
    return Batch(and_(*conditions), len(keys), keys[-1] if len(keys) == limit else None)


def _next_runs(conn: Connection, walk: RunWalk, at: _FromRun | _InRun, limit: int) -> Batch | None:
    """A RunWalk's batch, found by one read of the keys `limit` rows apart: the first row of this
    batch and of the next. Whole runs up to the next batch's run; a run with more rows left than
    `limit`, `limit` of them."""
    checked_at, target_id = type_coerce(checks.c.checked_at, Integer), checks.c.target_id
    before = int(walk.before.astimezone(UTC).timestamp())
    if isinstance(at, _InRun):
        run = and_(checked_at == at.at, target_id >= at.target_id)
        following = conn.execute(select(target_id).where(run).order_by(target_id).offset(limit).limit(1)).scalar()
        if following is None:
            return Batch(run, None, _FromRun(at.at + 1))
        return Batch(and_(run, target_id < following), limit, _InRun(at.at, following))
    rest = and_(checked_at >= at.at, checked_at < before)

    def key_at(place: int) -> Any:
        ordered = select(literal(place).label("place"), checked_at.label("at"), target_id.label("id")).where(rest)
        return ordered.order_by(checked_at, target_id).offset(place).limit(1).subquery().select()

    found = {row.place: row for row in conn.execute(union_all(key_at(0), key_at(limit)))}
    if 0 not in found:
        return None
    if limit not in found:
        return Batch(rest, None, None)
    first, following = found[0], found[limit]
    if following.at > first.at:
        return Batch(and_(checked_at >= at.at, checked_at < following.at), None, _FromRun(following.at))
    return Batch(and_(checked_at == first.at, target_id < following.id), limit, _InRun(first.at, following.id))


def delete_batch(conn: Connection, walk: Walk | RunWalk, batch: Batch) -> int:
    """Deletes the rows of `batch` (one `next_batch` found); returns how many."""
    return int(conn.execute(delete(walk.table).where(batch.where)).rowcount)


def count_batch(conn: Connection, walk: Walk | RunWalk, batch: Batch) -> int:
    """How many rows `batch` holds (a dry run's count of what `delete_batch` would delete)."""
    if batch.rows is not None:
        return batch.rows
    return int(conn.execute(select(func.count()).select_from(walk.table).where(batch.where)).scalar_one())


def retention_walks(conn: Connection, cutoffs: Mapping[str, datetime], run_id: int) -> list[Walk | RunWalk]:
    """What cleanup deletes, kind by kind (`cutoffs`: the oldest moment each of KINDS keeps).

    job_runs: finished runs only (never one still running, never run `run_id`), one walk per job
    for the (job, started_at) index. outbox: delivered (`sent`) messages only, by delivery time;
    pending, failed, dead, undelivered and superseded ones are kept whatever their age. A sent
    message has no next attempt, so its rows are in id order in the (status, next_attempt_at) index.
    """
    jobs = sorted(conn.execute(select(job_runs.c.job).distinct()).scalars())
    walks: dict[str, list[Walk | RunWalk]] = {
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
        # Whole months only: a daily row's month-to-date totals continue its month's earlier rows.
        "rollups_daily": [Walk("rollups_daily", rollups_daily, (rollups_daily.c.day, rollups_daily.c.target_id),
                               rollups_daily.c.day < _month_of(cutoffs["rollups_daily"]))],
        "rollups_hourly": [_by_time("rollups_hourly", rollups_hourly, rollups_hourly.c.hour,
                                    rollups_hourly.c.target_id, cutoffs)],
        "checks": [RunWalk("checks", cutoffs["checks"])],
    }
    return [walk for kind in KINDS for walk in walks[kind]]


def _month_of(cutoff: datetime) -> datetime:
    """The start of the UTC month holding `cutoff`."""
    return datetime.fromtimestamp(month_start(int(cutoff.timestamp())), UTC)


def _by_time(kind: str, table: Table, at: ColumnElement[Any], tie: ColumnElement[Any],
             cutoffs: Mapping[str, datetime]) -> Walk:
    """Rows older than the kind's cutoff, in the order of an index on (`at`, `tie`)."""
    return Walk(kind, table, (at, tie), at < cutoffs[kind])
