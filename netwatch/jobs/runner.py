"""The frame every job runs in: schema check, lease, `job_runs` row, summary line, exit code."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import leases, migrate, runs
from netwatch.deps import Deps
from netwatch.errors import ExitCode, LeaseHeld, NetwatchError, Stopped

log = logging.getLogger(__name__)


class Lease:
    """A job's lease row: acquired once, renewed in the background, checked inside the commit."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl_seconds: float,
                 clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> None:
        """Claims the lease or raises LeaseHeld naming the current holder."""
        with self.engine.begin() as conn:
            if leases.acquire_lease(conn, self.name, self.holder, self.clock(), self.ttl_seconds):
                return
            current = leases.read_lease(conn, self.name)
        until = current.expires_at.isoformat() if current.expires_at else "unknown"
        raise LeaseHeld(f"another run holds the {self.name} lease ({current.holder}, until {until}); exiting")

    def keep_renewed(self) -> None:
        """Renews every third of the TTL until `release`, on its own connection."""
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_seconds / 3):
            try:
                with self.engine.begin() as conn:
                    if not leases.renew_lease(conn, self.name, self.holder, self.clock(), self.ttl_seconds):
                        self.lost = True
                        log.warning("lease %s was taken by another run", self.name)
                        return
            except SQLAlchemyError as exc:
                log.warning("could not renew lease %s: %s", self.name, type(exc).__name__)

    def fence(self, conn: Connection) -> None:
        """Inside the job's transaction: renews the lease or raises so the commit never happens."""
        if self.lost or not leases.renew_lease(conn, self.name, self.holder, self.clock(), self.ttl_seconds):
            raise LeaseHeld(f"lost the {self.name} lease to another run; nothing committed")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.engine.begin() as conn:
            leases.release_lease(conn, self.name, self.holder)


@dataclass(frozen=True)
class RunContext:
    run_id: int
    now: datetime
    lease: Lease


@dataclass(frozen=True)
class JobOutcome:
    counts: Mapping[str, int] = field(default_factory=dict)
    delivery_failed: bool = False


def prepare_schema(engine: Engine, now: datetime) -> None:
    """Requires the current schema; an empty SQLite file (the embedded default) is initialised."""
    with engine.begin() as conn:
        version = migrate.current_version(conn)
        if conn.dialect.name == "sqlite" and version is None:
            migrate.upgrade(conn, now)
            log.info("initialised a new SQLite database")
            return
        migrate.require_version(version)


def run_job(job: str, shard: str, lease_seconds: float, deps: Deps,
            work: Callable[[RunContext], JobOutcome]) -> ExitCode:
    """Runs `work` under the job's lease with a `job_runs` row; returns the exit code."""
    started = time.monotonic()
    now = deps.clock()
    prepare_schema(deps.engine, now)
    lease = Lease(deps.engine, f"{job}:{shard}", deps.holder, lease_seconds, deps.clock)
    try:
        lease.acquire()
    except LeaseHeld as exc:
        with deps.engine.begin() as conn:
            runs.record_skipped_run(conn, job, shard, deps.holder, now, "lease_held", exc.exit_code, exc.message)
        raise
    try:
        lease.keep_renewed()
        with deps.engine.begin() as conn:
            run_id = runs.start_run(conn, job, shard, deps.holder, now)
        try:
            outcome = work(RunContext(run_id=run_id, now=now, lease=lease))
        except NetwatchError as exc:
            result = "stopped" if isinstance(exc, Stopped) else "failed"
            _finish(deps, run_id, result, exc.exit_code, {}, exc.message)
            raise
        code = ExitCode.DELIVERY_FAILED if outcome.delivery_failed else ExitCode.OK
        _finish(deps, run_id, "delivery_failed" if outcome.delivery_failed else "ok", code, outcome.counts)
        log.info(
            "%s finished", job,
            extra={"fields": {"shard": shard, "run_id": run_id, **outcome.counts,
                              "duration_s": round(time.monotonic() - started, 3), "exit_code": int(code)}},
        )
        return code
    finally:
        lease.release()


def _finish(deps: Deps, run_id: int, outcome: str, code: int, counts: Mapping[str, int],
            error: str | None = None) -> None:
    with deps.engine.begin() as conn:
        runs.finish_run(conn, run_id, deps.clock(), outcome, code, counts, error)
