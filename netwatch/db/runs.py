"""`job_runs`: one row per run of a job, written at start and completed at the end."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from netwatch.db.tables import job_runs


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    shard: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    exit_code: int | None
    counts: dict[str, int]
    error: str | None


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


def recent_runs(conn: Connection, job: str, limit: int = 20) -> list[JobRun]:
    """The latest runs of `job`, newest first."""
    rows = conn.execute(
        select(job_runs).where(job_runs.c.job == job).order_by(job_runs.c.id.desc()).limit(limit)
    ).mappings()
    return [
        JobRun(
            id=row["id"],
            job=row["job"],
            shard=row["shard"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            outcome=row["outcome"],
            exit_code=row["exit_code"],
            counts=json.loads(row["counts"]) if row["counts"] else {},
            error=row["error"],
        )
        for row in rows
    ]
