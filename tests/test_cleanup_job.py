"""`netwatch run cleanup`: each kind of history deleted past its retention and kept inside it, in bounded
batches, on SQLite and MariaDB; dry runs, stops between batches, statement counts, the lease."""

from __future__ import annotations

import contextlib
import itertools
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dbread
import pytest
from inproc import Clock, InProcess, NoWaitStop
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine

from netwatch.core.rollup import RTT_BUCKETS
from netwatch.db import outbox, tables
from netwatch.errors import ExitCode

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TODAY = datetime(2026, 11, 22, tzinfo=UTC)
# A different number of days per kind: a key read for the wrong kind moves that kind's edge.
RETENTION = {"raw_days": 2, "hourly_days": 3, "daily_days": 4, "transitions_days": 5, "runs_days": 6,
             "outbox_days": 7, "register_days": 8, "scan_counts_days": 9}
KIND_DAYS = {"checks": "raw_days", "rollups_hourly": "hourly_days", "rollups_daily": "daily_days",
             "transitions": "transitions_days", "job_runs": "runs_days", "outbox": "outbox_days",
             "register_log": "register_days", "scan_counts": "scan_counts_days"}
# The moment each kind's rows are dated by.
TIME_COLUMN = {"checks": "checked_at", "rollups_hourly": "hour", "rollups_daily": "day", "transitions": "at",
               "job_runs": "started_at", "outbox": "delivered_at", "register_log": "at",
               "scan_counts": "window_end"}
_ids = itertools.count(1)


def _row(kind: str, at: datetime) -> dict[str, Any]:
    """One row of `kind` dated `at`, with a key of its own."""
    n = next(_ids)
    counters = {"ok": 1, "degraded": 0, "failed": 0, "sent": 3, "received": 3, "rtt_samples": 1,
                "online_s": 60, "offline_s": 0, "unknown_s": 0}
    rows: dict[str, Callable[[], dict[str, Any]]] = {
        "checks": lambda: {"checked_at": at, "target_id": n, "status": 0, "prior": 1, "state": 1, "gap_s": 60,
                           "sent": 3, "received": 3, "attempts": 1},
        "rollups_hourly": lambda: {"hour": at, "target_id": n, **counters},
        "rollups_daily": lambda: {"day": at, "target_id": n, "online_s": 60, "offline_s": 0,
                                  **{f"mtd_{name}": value for name, value in counters.items()},
                                  **{f"mtd_h{i:02d}": 0 for i in range(RTT_BUCKETS)}},
        "transitions": lambda: {"target_id": n, "at": at, "from_state": 1, "to_state": 2, "streak": 3,
                                "held_s": 0},
        "job_runs": lambda: {"job": "ping-sweep", "shard": "0/1", "holder": "h", "started_at": at,
                             "finished_at": at + timedelta(seconds=5), "outcome": "ok"},
        "outbox": lambda: _message(n, outbox.SENT, at),
        "register_log": lambda: {"at": at, "action": "raised", "account": "1234", "cuc": "C", "code": "E130",
                                 "generation": 1, "count": 5, "threshold": 5, "window_minutes": 120},
        "scan_counts": lambda: {"run_id": 1, "window_start": at - timedelta(hours=2), "window_end": at,
                                "account": "1234", "cuc": "C", "code": "E130", "count": 5},
    }
    return rows[kind]()


def _message(n: int, status: str, at: datetime, next_attempt_at: datetime | None = None) -> dict[str, Any]:
    return {"channel": "sigma", "idempotency_key": f"k-{n}", "kind": "host_offline", "subject": f"h{n}",
            "payload": "{}", "status": status, "attempts": 1, "next_attempt_at": next_attempt_at,
            "created_at": at - timedelta(minutes=1), "updated_at": at, "delivered_at": at}


def _insert(engine: Engine, kind: str, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(tables.metadata.tables[kind].insert(), rows)


def _dates(engine: Engine, kind: str) -> list[datetime]:
    table = tables.metadata.tables[kind]
    query = select(table.c[TIME_COLUMN[kind]])
    if kind == "job_runs":
        query = query.where(table.c.job != "cleanup")  # not the cleanup run's own row
    with engine.begin() as conn:
        return sorted(conn.execute(query).scalars())


def _count(engine: Engine, kind: str) -> int:
    with engine.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.metadata.tables[kind])).scalar_one())


def _last_run(engine: Engine) -> dbread.JobRun:
    with engine.begin() as conn:
        return dbread.recent_runs(conn, "cleanup", limit=1)[0]


@pytest.fixture
def run(tmp_path: Path, engine: Engine, db_url: str) -> InProcess:
    nwi = InProcess(tmp_path, db_url, {}, clock=Clock(NOW))
    nwi.write_config([], retention=RETENTION)
    return nwi


def test_each_kind_is_deleted_past_its_retention_and_kept_inside_it(run: InProcess, engine: Engine) -> None:
    edges = {kind: TODAY - timedelta(days=RETENTION[key]) for kind, key in KIND_DAYS.items()}
    # Daily rollups go a whole month at a time (a row's month-to-date totals continue the month's
    # earlier rows): the edge is the start of the cutoff's month, and a day of that month older
    # than the cutoff stays.
    month_days_kept = [TODAY - timedelta(days=RETENTION["daily_days"] + 1)]
    edges["rollups_daily"] = TODAY.replace(day=1)
    for kind, edge in edges.items():
        # A bucket starts at its time: the hour or day before the edge is wholly past it.
        before = {"rollups_hourly": timedelta(hours=1), "rollups_daily": timedelta(days=1)}.get(kind,
                                                                                               timedelta(seconds=1))
        extra = month_days_kept if kind == "rollups_daily" else []
        _insert(engine, kind, [_row(kind, at) for at in (edge - before, edge, *extra, NOW)])

    done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    for kind, edge in edges.items():
        assert _dates(engine, kind) == [edge, *(month_days_kept if kind == "rollups_daily" else []), NOW], kind
    counts = _last_run(engine).counts
    assert {kind: counts[kind] for kind in KIND_DAYS} == dict.fromkeys(KIND_DAYS, 1)
    assert counts["dry_run"] == 0
    assert "cleanup finished" in done.stderr and "checks=1" in done.stderr


def test_messages_not_delivered_are_kept_whatever_their_age(run: InProcess, engine: Engine) -> None:
    ancient = NOW - timedelta(days=3000)
    kept = [outbox.PENDING, outbox.FAILED, outbox.DEAD, outbox.UNDELIVERED, outbox.SUPERSEDED]
    _insert(engine, "outbox", [_message(next(_ids), status, ancient) for status in kept]
            + [_message(next(_ids), outbox.PENDING, ancient, next_attempt_at=ancient),
               _message(next(_ids), outbox.SENT, ancient)])

    done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    with engine.begin() as conn:
        assert dbread.count_by_status(conn) == {outbox.PENDING: 2, outbox.FAILED: 1, outbox.DEAD: 1,
                                                outbox.UNDELIVERED: 1, outbox.SUPERSEDED: 1}
    assert _last_run(engine).counts["outbox"] == 1


def test_unfinished_runs_are_kept_whatever_their_age(run: InProcess, engine: Engine) -> None:
    ancient = NOW - timedelta(days=3000)
    crashed = {**_row("job_runs", ancient), "finished_at": None, "outcome": "running"}
    _insert(engine, "job_runs", [crashed, _row("job_runs", ancient)])

    done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    with engine.begin() as conn:
        (left,) = dbread.recent_runs(conn, "ping-sweep")
    assert left.outcome == "running"
    assert _last_run(engine).counts["job_runs"] == 1


def _old_checks(engine: Engine, rows: int) -> list[datetime]:
    """`rows` raw checks past retention, a second apart (one per target id); their dates, oldest first."""
    start = TODAY - timedelta(days=30)
    dates = [start + timedelta(seconds=i) for i in range(rows)]
    _insert(engine, "checks", [_row("checks", at) for at in dates])
    return dates


def test_a_dry_run_counts_what_a_run_deletes_and_deletes_nothing(run: InProcess, engine: Engine) -> None:
    run.write_config([], retention={**RETENTION, "batch_rows": 4})
    _old_checks(engine, 10)
    _insert(engine, "transitions", [_row("transitions", NOW - timedelta(days=100))])

    dry = run.run("run", "cleanup", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert _count(engine, "checks") == 10 and _count(engine, "transitions") == 1
    counted = _last_run(engine).counts
    assert counted["dry_run"] == 1
    assert (counted["checks"], counted["transitions"], counted["batches"]) == (10, 1, 4)

    done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    deleted = _last_run(engine).counts
    assert {k: v for k, v in deleted.items() if k in KIND_DAYS} == {k: v for k, v in counted.items() if k in KIND_DAYS}
    assert _count(engine, "checks") == 0 and _count(engine, "transitions") == 0


@contextlib.contextmanager
def sigterm_during_delete_of_checks(run: InProcess) -> Iterator[None]:
    """SIGTERM as it would arrive while the first batch of raw checks is being deleted."""

    def _on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CHECKS"):
            run.stop.set(signal.SIGTERM)

    event.listen(Engine, "after_cursor_execute", _on_statement)
    yield
    event.remove(Engine, "after_cursor_execute", _on_statement)


def test_a_run_stopped_between_batches_keeps_them_and_the_next_run_finishes(run: InProcess, engine: Engine) -> None:
    run.write_config([], retention={**RETENTION, "batch_rows": 4})
    dates = _old_checks(engine, 10)

    with sigterm_during_delete_of_checks(run):
        stopped = run.run("run", "cleanup")

    assert stopped.returncode == ExitCode.STOPPED, stopped.stderr
    assert "stopped by SIGTERM" in stopped.stderr
    # The first batch, the four oldest rows, is committed whole; the rest is untouched.
    assert _dates(engine, "checks") == dates[4:]
    last = _last_run(engine)
    assert last.outcome == "stopped"
    with engine.begin() as conn:
        lease = conn.execute(select(tables.leases).where(tables.leases.c.name == "cleanup:0/1")).mappings().one()
    assert lease["holder"] is None

    run.stop = NoWaitStop()
    again = run.run("run", "cleanup")

    assert again.returncode == 0, again.stderr
    assert _count(engine, "checks") == 0
    assert _last_run(engine).counts["checks"] == 6


def _statements_and_batches(run: InProcess, engine: Engine, rows: int) -> tuple[int, int]:
    _old_checks(engine, rows)
    done = run.run("run", "cleanup")
    assert done.returncode == 0, done.stderr
    counts = _last_run(engine).counts
    assert counts["checks"] == rows
    return counts["statements"], counts["batches"]


def test_statements_per_batch_are_bounded(run: InProcess, engine: Engine) -> None:
    run.write_config([], retention={**RETENTION, "batch_rows": 4})

    few = _statements_and_batches(run, engine, 6)
    many = _statements_and_batches(run, engine, 40)

    assert (few[1], many[1]) == (2, 10)
    per_batch = (many[0] - few[0]) / (many[1] - few[1])
    # The batch's keys, its delete, the lease fence (the server's clock on MariaDB), BEGIN on SQLite.
    assert per_batch <= 4
    assert few[0] - per_batch * few[1] == many[0] - per_batch * many[1]


def test_a_run_finding_its_lease_held_is_refused_and_deletes_nothing(run: InProcess, engine: Engine) -> None:
    _old_checks(engine, 3)
    with engine.begin() as conn:
        conn.execute(tables.leases.insert().values(name="cleanup:0/1", holder="other:1:abc", acquired_at=NOW,
                                                   expires_at=NOW + timedelta(minutes=10)))

    done = run.run("run", "cleanup")

    assert done.returncode == ExitCode.LEASE_HELD, done.stderr
    assert "another run holds the cleanup:0/1 lease" in done.stderr
    assert _count(engine, "checks") == 3
    assert _last_run(engine).outcome == "lease_held"


@pytest.fixture
def held_ping_sweep_lease(engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        conn.execute(tables.leases.insert().values(name="ping-sweep:0/1", holder="sweeper:1:abc", acquired_at=NOW,
                                                   expires_at=NOW + timedelta(minutes=10)))
    yield
    with engine.begin() as conn:
        conn.execute(update(tables.leases).values(holder=None))


@pytest.mark.usefixtures("held_ping_sweep_lease")
def test_cleanup_runs_while_another_job_holds_its_lease(run: InProcess, engine: Engine) -> None:
    _old_checks(engine, 3)

    done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    assert _count(engine, "checks") == 0
