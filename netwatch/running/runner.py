"""The frame every job runs in: schema check, lease, `job_runs` row, summary line, exit code."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.config import Config, RunConfig
from netwatch.core.clockcheck import clock_problem
from netwatch.db import migrate, runs
from netwatch.db.engine import StatementCount, count_statements, db_error_line, describe_db_error, is_db_unavailable
from netwatch.deps import Deps
from netwatch.errors import ClockUntrusted, ConfigError, ExitCode, LeaseHeld, NetwatchError, Stopped
from netwatch.heartbeat import RunPings
from netwatch.running.lease import Lease

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    run_id: int
    now: datetime
    lease: Lease


@dataclass(frozen=True)
class JobOutcome:
    """What a job's work committed and how its delivery went.

    `trouble`: a delivery attempt did not end as sent (exit 1). `problem`: what kept part of the
    outbox from going out (exit 78 or 69); the work is committed and counted all the same.
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    trouble: bool = False
    problem: NetwatchError | None = None


def refuse_unready(config: Config, problems: Sequence[str]) -> None:
    """A job's refusal (exit 78) of a config that lacks what it needs: the first of its `problems`."""
    if problems:
        raise ConfigError(f"{config.source}: {problems[0]}")


def prepare_schema(engine: Engine, now: datetime) -> None:
    """Requires the current schema; an empty SQLite file (the embedded default) is initialised."""
    with engine.begin() as conn:
        version = migrate.current_version(conn)
        if conn.dialect.name == "sqlite" and version is None:
            migrate.upgrade(conn, now)
            log.info("initialised a new SQLite database")
            return
        migrate.require_version(conn, version)


@dataclass(frozen=True)
class LeaseGroup:
    """Jobs that change the same state: one lease for all of them, and one history for the clock check."""

    name: str
    jobs: tuple[str, ...]


def check_clock(deps: Deps, jobs: Collection[str], shard: str, now: datetime, tolerance_s: float) -> None:
    """Raises ClockUntrusted when this machine's clock is off (see netwatch/core/clockcheck.py).

    Compared with the last committed run of any of `jobs`: a job whose clock is behind the run of
    another job that changed the same state (alert-clear after event-scan) would undo its work.
    """
    with deps.engine.begin() as conn:
        last = runs.last_committed_run(conn, jobs, shard)
        problem = clock_problem(now, deps.server_clock(conn), last.started_at if last else None, tolerance_s,
                                last.job if last else "")
    if problem is not None:
        raise ClockUntrusted(f"{problem}; refusing to act")


def run_job(job: str, shard: str, settings: RunConfig, deps: Deps,
            work: Callable[[RunContext], JobOutcome], group: LeaseGroup | None = None) -> ExitCode:
    """Runs `work` under its lease with a `job_runs` row; returns the exit code.

    The lease is `<job>:<shard>`, or `<group.name>:<shard>` for jobs that change the same state
    and so must never run at the same time. Every error text stored in the run row is masked.
    The counts include `statements`: what the run sent to the database, which must not grow with
    the number of hosts or events. The heartbeat (netwatch/heartbeat.py) hears of the start once the
    lease is held and of every end but a held lease's.
    """
    pings = deps.heartbeat.for_run(job, shard)
    try:
        with count_statements(deps.engine) as statements:
            code = _run_job(job, shard, settings, deps, work, group, statements, pings)
    except LeaseHeld:
        raise
    except NetwatchError as exc:
        pings.finish(exc.exit_code)
        raise
    except Exception as exc:
        pings.finish(_describe_failure(exc)[0])
        raise
    pings.finish(code)
    return code


def _run_job(job: str, shard: str, settings: RunConfig, deps: Deps, work: Callable[[RunContext], JobOutcome],
             group: LeaseGroup | None, statements: StatementCount, pings: RunPings) -> ExitCode:
    started = time.monotonic()
    # From here a signal stops the run at its next safe point, with its run row and lease in order.
    deps.stop.arm()
    now = deps.clock()
    prepare_schema(deps.engine, now)
    check_clock(deps, group.jobs if group else (job,), shard, now, settings.clock_tolerance_seconds)
    lease = Lease(deps.engine, f"{group.name if group else job}:{shard}", deps.holder, settings.lease_seconds,
                  deps.server_clock)
    try:
        lease.acquire()
    except LeaseHeld as exc:
        with deps.engine.begin() as conn:
            runs.record_skipped_run(conn, job, shard, deps.holder, now, "lease_held", exc.exit_code,
                                    deps.redactor.mask(exc.message))
        raise
    pings.start()
    try:
        lease.keep_renewed()
        with deps.engine.begin() as conn:
            run_id = runs.start_run(conn, job, shard, deps.holder, now)
        try:
            outcome = work(RunContext(run_id=run_id, now=now, lease=lease))
        except NetwatchError as exc:
            result = "stopped" if isinstance(exc, Stopped) else "failed"
            _finish_quietly(deps, run_id, result, exc.exit_code, exc.message)
            raise
        except Exception as exc:
            code, message = _describe_failure(exc)
            _finish_quietly(deps, run_id, "failed", code, message)
            raise
        counts = {**outcome.counts, "statements": statements.value}
        result, code = _result(outcome)
        _finish(deps, run_id, result, code, counts, outcome.problem.message if outcome.problem else None)
        log.info(
            "%s finished", job,
            extra={"fields": {"shard": shard, "run_id": run_id, **counts,
                              "duration_s": round(time.monotonic() - started, 3), "exit_code": int(code)}},
        )
        if outcome.problem is not None:
            # The run's work is committed and counted; the problem still ends it with its code and line.
            raise outcome.problem
        return code
    finally:
        lease.release()


def _result(outcome: JobOutcome) -> tuple[str, ExitCode]:
    if outcome.problem is not None:
        return "failed", outcome.problem.exit_code
    if outcome.trouble:
        return "delivery_failed", ExitCode.DELIVERY_FAILED
    return "ok", ExitCode.OK


def _describe_failure(exc: Exception) -> tuple[int, str]:
    """Exit code and one line for the run row: a database outage (69, or 78 for a refused login), else a bug (70).

    A bug propagates with its traceback; the row names it and, for a database bug, adds the
    driver's line (never the message of an arbitrary exception, which could hold anything).
    """
    if isinstance(exc, SQLAlchemyError) and is_db_unavailable(exc):
        error = describe_db_error(exc)
        return error.exit_code, error.message
    detail = f": {db_error_line(exc)}" if isinstance(exc, SQLAlchemyError) else ""
    return ExitCode.SOFTWARE, f"netwatch bug ({type(exc).__name__}{detail}); see the traceback"


def _finish_quietly(deps: Deps, run_id: int, outcome: str, code: int, error: str) -> None:
    """Records a failed run if the database still answers; the original error is what matters."""
    try:
        _finish(deps, run_id, outcome, code, {}, error)
    except SQLAlchemyError as exc:
        log.warning("could not record the end of run %d: %s", run_id, type(exc).__name__)


def _finish(deps: Deps, run_id: int, outcome: str, code: int, counts: Mapping[str, int],
            error: str | None = None) -> None:
    with deps.engine.begin() as conn:
        runs.finish_run(conn, run_id, deps.clock(), outcome, code, counts,
                        deps.redactor.mask(error) if error else None)
