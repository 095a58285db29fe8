"""The clock check's read of the last committed run is served by the (job, started_at) index.

One query over both jobs of a group (job IN (...), ORDER BY started_at) made the database sort
every committed run of both; job_runs grows by thousands of rows a day. Each job is now read with
its own ORDER BY started_at DESC LIMIT 1, which the index answers without a sort: one statement per
job of the group, whatever the table holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from netwatch.db import runs, tables

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
GROUP = ("event-scan", "alert-clear")


def fill_runs(engine: Engine) -> None:
    """A few days of runs of both jobs (and of ping-sweep), committed and not."""
    rows = []
    for n in range(600):
        for offset, job in enumerate((*GROUP, "ping-sweep")):
            rows.append({"job": job, "shard": "0/1", "holder": "h",
                         "started_at": T0 - timedelta(minutes=5 * n + offset),
                         "finished_at": T0, "outcome": "lease_held" if n % 7 == 3 else "ok", "exit_code": 0})
    rows.append({"job": "alert-clear", "shard": "0/1", "holder": "h", "started_at": T0 + timedelta(minutes=2),
                 "finished_at": None, "outcome": "running", "exit_code": None})
    with engine.begin() as conn:
        conn.execute(tables.job_runs.insert(), rows)


@contextmanager
def recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.startswith("SELECT"):  # not SQLite's BEGIN IMMEDIATE
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plan(engine: Engine, statement: str, parameters: Any) -> str:
    """The database's plan of `statement` as one text: SQLite's EXPLAIN QUERY PLAN, MySQL's EXPLAIN rows."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            return " | ".join(str(row[-1]) for row in rows)
        rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).mappings().all()
        return " | ".join(f"key={row['key']} extra={row['Extra']}" for row in rows)


def test_each_job_is_read_newest_first_from_the_index_without_a_sort(engine: Engine) -> None:
    fill_runs(engine)

    with recorded(engine) as statements, engine.begin() as conn:
        last = runs.last_committed_run(conn, GROUP, "0/1")

    assert last == runs.LastRun("event-scan", T0)  # alert-clear's later run is still running: not committed
    for statement, parameters in statements:
        shown = plan(engine, statement, parameters)
        if engine.dialect.name == "sqlite":
            assert "USING INDEX ix_job_runs_job_started" in shown and "TEMP B-TREE" not in shown, shown
        else:
            assert "key=ix_job_runs_job_started" in shown and "filesort" not in shown, shown
    assert len(statements) == len(GROUP)


def test_the_latest_of_either_job_is_the_one_compared_with(engine: Engine) -> None:
    with engine.begin() as conn:
        assert runs.last_committed_run(conn, GROUP, "0/1") is None
        conn.execute(tables.job_runs.insert(), [
            {"job": "event-scan", "shard": "0/1", "holder": "h", "started_at": T0, "outcome": "ok"},
            {"job": "alert-clear", "shard": "0/1", "holder": "h", "started_at": T0 + timedelta(seconds=1),
             "outcome": "delivery_failed"},
            {"job": "alert-clear", "shard": "1/2", "holder": "h", "started_at": T0 + timedelta(hours=1),
             "outcome": "ok"},
        ])
        assert runs.last_committed_run(conn, GROUP, "0/1") == runs.LastRun("alert-clear", T0 + timedelta(seconds=1))
        assert runs.last_committed_run(conn, ("event-scan",), "0/1") == runs.LastRun("event-scan", T0)
