"""`netwatch run cleanup`: delete the history past its retention, in bounded batches."""

from __future__ import annotations

import logging

from netwatch.config import Config, RetentionConfig
from netwatch.core.retention import cutoff
from netwatch.db.retention import KINDS, Position, RunWalk, Walk, count_batch, delete_batch, next_batch, retention_walks
from netwatch.deps import Deps
from netwatch.running.runner import JobOutcome, RunContext, run_job

log = logging.getLogger(__name__)

JOB = "cleanup"


def kept_days(retention: RetentionConfig) -> dict[str, int]:
    """The days each kind of history (netwatch.db.retention.KINDS) is kept before today."""
    days = {
        "job_runs": retention.runs_days,
        "outbox": retention.outbox_days,
        "register_log": retention.register_days,
        "scan_counts": retention.scan_counts_days,
        "transitions": retention.transitions_days,
        "rollups_daily": retention.daily_days,
        "rollups_hourly": retention.hourly_days,
        "checks": retention.raw_days,
    }
    return {kind: days[kind] for kind in KINDS}


def run_cleanup(config: Config, deps: Deps, dry_run: bool) -> int:
    """One pass under the job's own lease (it runs beside the other jobs); returns the exit code."""
    return run_job(JOB, "0/1", config.run, deps, lambda run: cleanup(config.retention, deps, run, dry_run))


def cleanup(retention: RetentionConfig, deps: Deps, run: RunContext, dry_run: bool) -> JobOutcome:
    """Every kind past its cutoff (from the run's `now`), batch by batch, each batch its own transaction.

    A stop (SIGTERM) takes effect between batches: what earlier batches deleted stays deleted and
    the next run goes on from there. `dry_run` finds the same batches and counts them, deleting nothing.
    """
    cutoffs = {kind: cutoff(run.now, days) for kind, days in kept_days(retention).items()}
    log.info("cleanup %s what is older than: %s", "counts" if dry_run else "deletes",
             ", ".join(f"{kind} {at.date().isoformat()}" for kind, at in cutoffs.items()))
    with deps.engine.begin() as conn:
        walks = retention_walks(conn, cutoffs, run.run_id)
    counts = dict.fromkeys(KINDS, 0)
    batches = 0
    for walk in walks:
        rows, steps = _walk(walk, retention.batch_rows, deps, run, dry_run)
        counts[walk.kind] += rows
        batches += steps
    return JobOutcome({**counts, "batches": batches, "dry_run": int(dry_run)})


def _walk(walk: Walk | RunWalk, limit: int, deps: Deps, run: RunContext, dry_run: bool) -> tuple[int, int]:
    """Deletes (or counts) `walk`'s rows `limit` at a time; returns the rows and the batches."""
    rows = batches = 0
    after: Position | None = None
    while True:
        deps.stop.check()
        with deps.engine.begin() as conn:
            batch = next_batch(conn, walk, after, limit)
            if batch is None:
                return rows, batches
            done = count_batch(conn, walk, batch) if dry_run else delete_batch(conn, walk, batch)
            run.lease.fence(conn)
        if done:
            rows += done
            batches += 1
        if batch.resume is None:
            return rows, batches
        after = batch.resume
