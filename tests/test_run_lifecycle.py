"""The frame every job runs in, under stress: lease renewal and fencing, SIGTERM at the later safe
points, and database errors in the middle of a run. Real databases, real loopback HTTP and ICMP,
the real CLI process where the operator's view (exit code, one line) is the point.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dbread
import pytest
from fakeapi import FakeApis
from jobkit import TOKEN, Netwatch, log_lines
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from netwatch.config import Config, RunConfig, parse_config
from netwatch.core.times import utc_now
from netwatch.db import runs, tables
from netwatch.db.clock import server_now
from netwatch.db.engine import describe_db_error, is_db_unavailable
from netwatch.db.leases import LeaseInfo, read_lease
from netwatch.deps import Deps, build_deps
from netwatch.errors import ExitCode, LeaseHeld, Stopped
from netwatch.jobs.ping_sweep import run_ping_sweep
from netwatch.logs import Redactor
from netwatch.running.lease import Lease
from netwatch.running.runner import JobOutcome, RunContext, run_job
from netwatch.running.stopflag import StopFlag
from netwatch.shard import Shard

ENV = {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN}
JOB = "lifecycle"
LEASE = f"{JOB}:0/1"
QUICK_PING = {"count": 1, "timeout_seconds": 0.5, "interval_ms": 0, "rate_limit_pps": 10000, "retries": 0}
TWO_HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"},
             {"name": "lo-2", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "002"}]


def _setup(db_url: str, tmp_path: Path, stop: StopFlag | None = None, **sections: Any) -> tuple[Config, Deps]:
    config = parse_config({"database": {"url": db_url}, **sections}, "test", tmp_path, {})
    return config, build_deps(config, ENV, stop or StopFlag(), Redactor())


@pytest.fixture
def deps(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[Deps]:
    """Real Deps on a database with the current schema (the `engine` fixture is another process's view)."""
    _, built = _setup(db_url, tmp_path)
    yield built
    built.engine.dispose()


def _sweep_sections(fake: FakeApis) -> dict[str, Any]:
    return {"hosts": TWO_HOSTS, "ping": QUICK_PING,
            "thresholds": {"down_after": 1, "up_after": 1, "notify_initial": True, "min_transition_seconds": 0},
            "sigma": {"base_url": fake.url, "retry_backoff_seconds": 0}, "segware": {"base_url": fake.url}}


def _lease(engine: Engine, name: str = LEASE) -> LeaseInfo:
    with engine.begin() as conn:
        return read_lease(conn, name)


def _runs(engine: Engine, job: str = JOB) -> list[runs.JobRun]:
    with engine.begin() as conn:
        return dbread.recent_runs(conn, job)


def _count(engine: Engine, table: str) -> int:
    with engine.begin() as conn:
        return len(conn.execute(select(tables.metadata.tables[table])).all())


def _all_leases_free(engine: Engine) -> bool:
    with engine.begin() as conn:
        return all(row.holder is None for row in conn.execute(select(tables.leases)))


def _take_over(engine: Engine, holder: str, name: str = LEASE) -> None:
    """Another process takes the lease: expired by hand, then acquired (retried if a renewal got between)."""
    rival = Lease(engine, name, holder, 60, server_now)
    for _ in range(20):
        with engine.begin() as conn:
            conn.execute(update(tables.leases).where(tables.leases.c.name == name)
                         .values(expires_at=utc_now() - timedelta(seconds=1)))
        if rival.try_acquire():
            return
    raise AssertionError(f"{holder} could not take {name}")


def _cache_row(now: datetime) -> dict[str, Any]:
    return {"account": "written-by-the-run", "found": False, "payload": None, "fetched_at": now}


# 1. Lease renewal and fencing

def test_run_longer_than_its_lease_keeps_it_through_renewal(deps: Deps, engine: Engine) -> None:
    rival = Lease(engine, LEASE, "rival", 60, server_now)
    polls: list[tuple[bool, datetime, datetime | None]] = []

    def work(run: RunContext) -> JobOutcome:
        stop_at = time.monotonic() + 2.0  # more than three TTLs
        while time.monotonic() < stop_at:
            polls.append((rival.try_acquire(), utc_now(), _lease(engine).expires_at))
            time.sleep(0.1)
        return JobOutcome(counts={"polls": len(polls)})

    assert run_job(JOB, "0/1", RunConfig(lease_seconds=0.6), deps, work) == ExitCode.OK
    assert len(polls) >= 10
    assert [taken for taken, _, _ in polls] == [False] * len(polls)
    assert all(expires is not None and expires > seen for _, seen, expires in polls), polls
    expiries = [expires for _, _, expires in polls if expires is not None]
    assert max(expiries) - min(expiries) >= timedelta(seconds=1), "the renewal moved the expiry on"
    [done] = _runs(engine)
    statements = done.counts.pop("statements")
    assert (done.outcome, done.exit_code, done.counts) == ("ok", 0, {"polls": len(polls)})
    assert statements > 0, "the run counts its own statements (renewals among them)"
    assert _lease(engine).holder is None
    assert rival.try_acquire()


def test_lease_taken_mid_run_fences_the_commit_and_exits_75(deps: Deps, engine: Engine) -> None:
    def work(run: RunContext) -> JobOutcome:
        _take_over(engine, "rival")
        with deps.engine.begin() as conn:
            conn.execute(tables.account_cache.insert().values(**_cache_row(run.now)))
            run.lease.fence(conn)
        return JobOutcome()

    with pytest.raises(LeaseHeld) as caught:
        run_job(JOB, "0/1", RunConfig(lease_seconds=30), deps, work)
    assert caught.value.exit_code == ExitCode.LEASE_HELD == 75
    assert caught.value.message == f"lost the {LEASE} lease to another run; nothing committed"
    assert _count(engine, "account_cache") == 0
    [done] = _runs(engine)
    assert (done.outcome, done.exit_code, done.error) == ("failed", 75, caught.value.message)
    assert _lease(engine).holder == "rival", "our release must not free the new holder's lease"


def test_lease_lost_between_commits_is_noticed_by_the_renewal(deps: Deps, engine: Engine) -> None:
    noticed: list[bool] = []

    def work(run: RunContext) -> JobOutcome:
        _take_over(engine, "rival")
        give_up = time.monotonic() + 5
        while not run.lease.lost and time.monotonic() < give_up:
            time.sleep(0.05)
        noticed.append(run.lease.lost)
        with deps.engine.begin() as conn:
            conn.execute(tables.account_cache.insert().values(**_cache_row(run.now)))
            run.lease.fence(conn)
        return JobOutcome()

    with pytest.raises(LeaseHeld):
        run_job(JOB, "0/1", RunConfig(lease_seconds=0.6), deps, work)
    assert noticed == [True]
    assert _count(engine, "account_cache") == 0
    assert [(r.outcome, r.exit_code) for r in _runs(engine)] == [("failed", 75)]
    assert _lease(engine).holder == "rival"


# 2. SIGTERM at the later safe points

class StopInsideTransaction(StopFlag):
    """Sets itself at the first check() made while the job holds a database connection.

    In ping-sweep that is the check inside its write transaction; the checks before it (around the
    sweep) find no connection checked out. The lease renewal, every TTL/3 of 120 s, is idle then.
    """

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self.fired_inside_transaction = False

    def check(self) -> None:
        pool = self.engine.pool if self.engine is not None else None
        if isinstance(pool, QueuePool) and pool.checkedout() > 0 and not self.is_set():
            self.fired_inside_transaction = True
            self.set()
        super().check()


def test_sigterm_inside_the_write_transaction_rolls_it_back(
    engine: Engine, db_url: str, tmp_path: Path, fake: FakeApis
) -> None:
    stop = StopInsideTransaction()
    config, deps = _setup(db_url, tmp_path, stop, **_sweep_sections(fake))
    stop.engine = deps.engine
    try:
        with pytest.raises(Stopped) as caught:
            run_ping_sweep(config, deps, Shard())
    finally:
        deps.engine.dispose()
    assert stop.fired_inside_transaction
    assert caught.value.exit_code == ExitCode.STOPPED == 143
    assert [_count(engine, t) for t in ("checks", "hosts", "outbox")] == [0, 0, 0]
    assert fake.requests_to("POST", "/v1/events") == []
    assert [(r.outcome, r.exit_code) for r in _runs(engine, "ping-sweep")] == [("stopped", 143)]
    assert _all_leases_free(engine)

    _, again = _setup(db_url, tmp_path, **_sweep_sections(fake))
    try:
        assert run_ping_sweep(config, again, Shard()) == ExitCode.OK
    finally:
        again.engine.dispose()
    assert [_count(engine, t) for t in ("checks", "hosts", "outbox")] == [2, 2, 2]
    assert [e["host"]["name"] for e in fake.sigma_events()] == ["lo-1", "lo-2"]


@dataclass
class SigtermOnFirstEvent(FakeApis):
    """Sends SIGTERM to `target` when Sigma receives its first event, before answering it."""

    target: subprocess.Popen[str] | None = None

    def answer(self, method: str, path: str, headers: dict[str, str], raw_body: bytes,
               query: str = "") -> tuple[int, Any]:
        decided = super().answer(method, path, headers, raw_body, query)
        if (method, path) == ("POST", "/v1/events") and self.target is not None:
            self.target.send_signal(signal.SIGTERM)
            self.target = None
        return decided


def test_sigterm_during_delivery_keeps_what_was_sent_and_exits_143(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    nw = Netwatch(tmp_path, db_url, dict(ENV))
    with SigtermOnFirstEvent(token=TOKEN) as sigma:
        nw.write_config(TWO_HOSTS, ping=QUICK_PING, thresholds={"notify_initial": True},
                        sigma={"base_url": sigma.url, "retry_backoff_seconds": 0}, segware={"base_url": sigma.url})
        running = nw.start("run", "ping-sweep")
        sigma.target = running
        _, err = running.communicate(timeout=60)
        assert running.returncode == 143, err
        assert "stopped by SIGTERM" in err and "Traceback" not in err
        assert [e["host"]["name"] for e in sigma.sigma_events()] == ["lo-1"]
        assert [_count(engine, t) for t in ("checks", "hosts")] == [2, 2], "committed before delivery"
        assert [(i.subject, i.status, i.attempts) for i in nw.outbox()] == [("lo-1", "sent", 1),
                                                                            ("lo-2", "pending", 0)]
        assert [(r.outcome, r.exit_code) for r in _runs(engine, "ping-sweep")] == [("stopped", 143)]
        assert _all_leases_free(engine)

        after = nw.sweep()
        assert after.returncode == 0, after.stderr
        assert [e["host"]["name"] for e in sigma.sigma_events()] == ["lo-1", "lo-2"]
        assert len(sigma.requests_to("POST", "/v1/events")) == 2, "lo-1 is not sent again"
    assert [(i.subject, i.status, i.attempts) for i in nw.outbox()] == [("lo-1", "sent", 1), ("lo-2", "sent", 1)]


# 3. Database errors in the middle of a run

def _write_a_held_row(db_url: str, engine: Engine, run_id: int) -> None:
    """Updates a row another transaction holds, from a connection that waits briefly: a real lock timeout."""
    sqlite = db_url.startswith("sqlite")
    # Not build_engine: its 30 s busy timeout (SQLite) and server default of 50 s (MariaDB) are for production.
    impatient = create_engine(db_url, connect_args={"timeout": 0.2} if sqlite else
                              {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"})
    touch = update(tables.job_runs).where(tables.job_runs.c.id == run_id).values(error="held")
    try:
        with engine.begin() as holder, impatient.begin() as waiter:
            holder.execute(touch)
            waiter.execute(touch)
    finally:
        impatient.dispose()


def test_database_outage_mid_run_is_recorded_as_69_and_frees_the_lease(
    deps: Deps, engine: Engine, db_url: str
) -> None:
    def work(run: RunContext) -> JobOutcome:
        _write_a_held_row(db_url, deps.engine, run.run_id)
        return JobOutcome()

    with pytest.raises(OperationalError) as caught:
        run_job(JOB, "0/1", RunConfig(lease_seconds=30), deps, work)
    assert is_db_unavailable(caught.value)
    error = describe_db_error(caught.value)
    assert error.exit_code == ExitCode.UNAVAILABLE
    assert ("database is locked" if db_url.startswith("sqlite") else "Lock wait timeout") in error.message
    [done] = _runs(engine)
    assert (done.outcome, done.exit_code, done.error) == ("failed", 69, error.message)
    assert _lease(engine).holder is None


def test_database_bug_mid_run_propagates_and_is_recorded_as_a_crash(deps: Deps, engine: Engine) -> None:
    def work(run: RunContext) -> JobOutcome:
        with deps.engine.begin() as conn:  # the run's own lease row exists: a duplicate key
            conn.execute(tables.leases.insert().values(name=LEASE, holder=None))
        return JobOutcome()

    with pytest.raises(IntegrityError) as caught:
        run_job(JOB, "0/1", RunConfig(lease_seconds=30), deps, work)
    assert not is_db_unavailable(caught.value)
    [done] = _runs(engine)
    assert (done.outcome, done.exit_code) == ("failed", ExitCode.SOFTWARE)
    assert done.error is not None and done.error.startswith("netwatch bug (IntegrityError: ")
    assert _lease(engine).holder is None


def _run_with_a_failing_write(nw: Netwatch, engine: Engine, db_url: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                   str]:
    """Runs ping-sweep through the CLI so that its write transaction fails for a real outage.

    SQLite: the disk fills up (a file size limit on the process). MariaDB: the server stops
    answering in the middle of the write (the client's 1 s read timeout while a table lock blocks it).
    """
    if db_url.startswith("sqlite"):
        engine.dispose()  # the last connection closes: the schema moves from the WAL into the database file
        # 1,000 hosts: the write transaction needs several hundred kB of WAL, the lease and run rows
        # before it a few pages. A 120 kB file size limit fails the first and not the second.
        hosts = [{"name": f"h{i}", "address": f"127.3.{i // 250}.{i % 250 + 1}"} for i in range(1000)]
        config = nw.write_config(hosts, ping=QUICK_PING)
        limited = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, 120_000)); "
                   "from netwatch.entry import main; main()")
        done = subprocess.run([sys.executable, "-c", limited, "run", "ping-sweep", "--config", str(config)],
                              capture_output=True, text=True, timeout=120, check=False)
        return done, "disk I/O error"
    nw.write_config([{"name": "lo-1", "address": "127.0.0.1"}], ping=QUICK_PING,
                    database={"url": f"{db_url}?read_timeout=1"})
    with engine.connect() as locker:
        locker.exec_driver_sql("LOCK TABLES checks WRITE")
        try:
            done = nw.sweep()
        finally:
            locker.exec_driver_sql("UNLOCK TABLES")
    return done, "Lost connection to MySQL server during query"


def test_database_outage_mid_run_cli_prints_one_line_and_exits_69(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    done, fragment = _run_with_a_failing_write(Netwatch(tmp_path, db_url, {}), engine, db_url)
    assert done.returncode == 69, done.stderr
    assert "Traceback" not in done.stderr
    start, line = log_lines(done.stderr)
    assert start.startswith("info: ping-sweep started database="), start
    assert line.startswith("error: database unavailable: ") and fragment in line, line
    [run] = _runs(engine, "ping-sweep")
    assert (run.outcome, run.exit_code) == ("failed", 69)
    assert run.error is not None and fragment in run.error
    assert _count(engine, "checks") == 0
    assert _all_leases_free(engine)


@pytest.mark.parametrize("command", [["status"], ["run", "ping-sweep"]])
def test_missing_table_under_a_current_schema_version_exits_70_with_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    # sqlite3 raises OperationalError("no such table: hosts"): a schema that does not match, not an outage.
    nw = Netwatch(tmp_path, f"sqlite:///{tmp_path / 'netwatch.db'}", {})
    nw.write_config([{"name": "lo-1", "address": "127.0.0.1"}], ping=QUICK_PING)
    init = nw.run("db", "init")
    assert init.returncode == 0, init.stderr
    engine = nw.engine()
    try:
        with engine.begin() as conn:
            tables.hosts.drop(conn)

        done = nw.run(*command)
        assert done.returncode == ExitCode.SOFTWARE, done.stderr
        assert "netwatch bug (OperationalError), exit 70; traceback:" in done.stderr
        assert "Traceback (most recent call last)" in done.stderr and "no such table: hosts" in done.stderr
        assert "database unavailable" not in done.stderr
        if command[0] == "run":
            [run] = _runs(engine, "ping-sweep")
            assert (run.outcome, run.exit_code) == ("failed", ExitCode.SOFTWARE)
            assert run.error is not None
            assert run.error.startswith("netwatch bug (OperationalError: no such table: hosts"), run.error
            assert _all_leases_free(engine)
    finally:
        engine.dispose()
