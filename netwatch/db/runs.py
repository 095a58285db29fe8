"""`job_runs`: one row per run of a job, written at start and completed at the end."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from netwatch.db.tables import job_runs


def start_run(conn: Connection, job: str, shard: str, holder: str, now: datetime) -> int:
    """Marks runs left `running` by a crashed holder as `abandoned`, then records this run."""
    conn.execute(
        update(job_runs)
        .where(and_(job_runs.c.job == job, job_runs.c.shard == shard, job_runs.c.outcome == "running"))
        .values(outcome="abandoned", finished_at=now)
    )
    result = conn.execute(
        job_runs.insert().values(job=job, shard=shard, holder=holder, started_at=now, outcome="running")
    )
    return int(result.inserted_primary_key[0])


# Outcomes of runs that committed their work and ended well (enough for a clock to compare with).
COMMITTED = ("ok", "delivery_failed")


@dataclass(frozen=True)
class LastRun:
    job: str
    started_at: datetime


def last_committed_run(conn: Connection, jobs: Collection[str], shard: str) -> LastRun | None:
    """The latest-starting committed run of any of `jobs` (and shard), with its start by its own clock.

    One query per job, for the newest run of that job: the (job, started_at) index yields it at once,
    where one query over all the jobs would sort every committed run of them (job_runs grows by
    thousands of rows a day).
    """
    latest = []
    for job in sorted(jobs):
        row = conn.execute(
            select(job_runs.c.job, job_runs.c.started_at)
            .where(and_(job_runs.c.job == job, job_runs.c.shard == shard, job_runs.c.outcome.in_(COMMITTED)))
            .order_by(job_runs.c.started_at.desc())
            .limit(1)
        ).first()
        if row is not None:
            latest.append(LastRun(row.job, row.started_at))
    return max(latest, key=lambda run: run.started_at, default=None)


def record_skipped_run(
    conn: Connection, job: str, shard: str, holder: str, now: datetime, outcome: str, exit_code: int, error: str
) -> None:
    """A run that did nothing (another run held the lease), recorded complete in one row."""
    conn.execute(
        job_runs.insert().values(job=job, shard=shard, holder=holder, started_at=now, finished_at=now,
                                 outcome=outcome, exit_code=exit_code, error=error)
    )


def finish_run(
    conn: Connection,
    run_id: int,
    now: datetime,
    outcome: str,
    exit_code: int,
    counts: Mapping[str, int],
    error: str | None = None,
) -> None:
    """Completes the run row with its outcome, counts and (one-line) error."""
    conn.execute(
        update(job_runs)
        .where(job_runs.c.id == run_id)
        .values(
            finished_at=now,
            outcome=outcome,
            exit_code=exit_code,
            counts=json.dumps(dict(counts), sort_keys=True),
            error=error,
        )
    )


# Outcomes `netwatch runs --failed` lists: the run did not end well (a skipped run is no failure).
FAILED = ("failed", "delivery_failed", "abandoned", "stopped")


@dataclass(frozen=True)
class RunRow:
    id: int
    job: str
    shard: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    exit_code: int | None
    counts: dict[str, int]
    error: str | None


def list_runs(conn: Connection, job: str | None, since: datetime, failed_only: bool) -> list[RunRow]:
    """Runs started since `since` (of `job`, failed ones only when asked), newest first."""
    conditions = [job_runs.c.started_at >= since]
    if job is not None:
        conditions.append(job_runs.c.job == job)
    if failed_only:
        conditions.append(job_runs.c.outcome.in_(FAILED))
    rows = conn.execute(select(job_runs).where(and_(*conditions))
                        .order_by(job_runs.c.started_at.desc(), job_runs.c.id.desc())).mappings()
    return [run_row(row) for row in rows]


def run_row(row: Mapping[str, Any]) -> RunRow:
    """A `job_runs` row (as a mapping) with its counts decoded."""
    return RunRow(id=row["id"], job=row["job"], shard=row["shard"], started_at=row["started_at"],
                  finished_at=row["finished_at"], outcome=row["outcome"], exit_code=row["exit_code"],
                  counts=json.loads(row["counts"]) if row["counts"] else {}, error=row["error"])


def run_seconds(conn: Connection, jobs: Sequence[str], since: datetime) -> list[int]:
    """The whole epoch seconds (floored) the runs of `jobs` started in, ascending, from `since` on.

    Those are the times a run writes history at (`checks.checked_at` is a ping-sweep or http-check
    run's start, floored): a second at or after `since` is one that a run started at or after its
    ceiling began. A range of the (job, started_at) index per job.
    """
    first = datetime.fromtimestamp(math.ceil(since.timestamp()), UTC)
    starts = conn.execute(select(job_runs.c.started_at)
                          .where(and_(job_runs.c.job.in_(jobs), job_runs.c.started_at >= first))).scalars()
    return sorted({math.floor(started.timestamp()) for started in starts})
