"""`netwatch run cleanup` of raw checks: run by run in primary-key order, whole runs while they fit in
`retention.batch_rows`, a bigger run split by target id; every statement a plain range of the primary
key (no scan beyond the batch), no delete over batch_rows rows, a dry run counting the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inproc import Clock, InProcess
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from netwatch.db import tables

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
CUTOFF = datetime(2026, 11, 20, tzinfo=UTC)  # raw_days 2
RETENTION = {"raw_days": 2}
HOSTS = 5


def _seed(engine: Engine, runs: list[datetime], hosts: int = HOSTS) -> None:
    """A check of every host (target ids 1 .. hosts) at each of `runs`."""
    with engine.begin() as conn:
        conn.execute(tables.checks.insert(), [
            {"checked_at": at, "target_id": n, "status": 0, "prior": 1, "state": 1, "gap_s": 60, "sent": 3,
             "received": 3, "attempts": 1}
            for at in runs for n in range(1, hosts + 1)])


def _left(engine: Engine) -> list[tuple[datetime, int]]:
    with engine.begin() as conn:
        return [tuple(row) for row in conn.execute(  # type: ignore[misc]
            select(tables.checks.c.checked_at, tables.checks.c.target_id)
            .order_by(tables.checks.c.checked_at, tables.checks.c.target_id))]


@pytest.fixture
def run(tmp_path: Path, db_url: str, engine: Engine) -> InProcess:
    return InProcess(tmp_path, db_url, {}, clock=Clock(NOW))


@contextmanager
def _deletes() -> Iterator[list[int]]:
    """The rows each DELETE of checks removed (on any engine: the run builds its own)."""
    removed: list[int] = []

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CHECKS"):
            removed.append(cursor.rowcount)

    event.listen(Engine, "after_cursor_execute", record)
    try:
        yield removed
    finally:
        event.remove(Engine, "after_cursor_execute", record)


# Three old runs of 5 hosts, then runs at and after the cutoff that stay.
OLD = [CUTOFF - timedelta(minutes=m) for m in (3, 2, 1)]
KEPT = [CUTOFF, CUTOFF + timedelta(seconds=1), NOW]


@pytest.mark.parametrize(("batch_rows", "per_delete"), [
    (4, [4, 1, 4, 1, 4, 1]),  # each run split: 4 rows, then the rest of the run
    (5, [5, 5, 5]),  # a run a batch
    (12, [10, 5]),  # two whole runs fit, the third would not
    (15, [15]),  # all of it: the last batch is everything left before the cutoff
    (100, [15]),
])
def test_whole_runs_while_they_fit_a_bigger_run_split_by_host(
        run: InProcess, engine: Engine, batch_rows: int, per_delete: list[int]) -> None:
    run.write_config([], retention={**RETENTION, "batch_rows": batch_rows})
    _seed(engine, OLD + KEPT)

    with _deletes() as removed:
        done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    assert removed == per_delete
    assert _left(engine) == [(at, n) for at in KEPT for n in range(1, HOSTS + 1)]


@pytest.mark.parametrize("batch_rows", [3, 5, 7, 100])
def test_a_dry_run_finds_the_same_batches_and_rows_and_deletes_nothing(
        run: InProcess, engine: Engine, batch_rows: int) -> None:
    run.write_config([], retention={**RETENTION, "batch_rows": batch_rows})
    _seed(engine, OLD + KEPT)
    before = _left(engine)

    dry = run.run("run", "cleanup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _left(engine) == before
    done = run.run("run", "cleanup")
    assert done.returncode == 0, done.stderr

    with engine.begin() as conn:
        counted, deleted = [json.loads(counts) for counts in conn.execute(
            select(tables.job_runs.c.counts).where(tables.job_runs.c.job == "cleanup").order_by(tables.job_runs.c.id))
            .scalars()]
    assert (counted.pop("dry_run"), deleted.pop("dry_run"), deleted["checks"]) == (1, 0, 15)
    assert {k: v for k, v in counted.items() if k != "statements"} == {
        k: v for k, v in deleted.items() if k != "statements"}


def test_nothing_to_delete_is_no_batch(run: InProcess, engine: Engine) -> None:
    run.write_config([], retention=RETENTION)
    _seed(engine, KEPT)

    with _deletes() as removed:
        done = run.run("run", "cleanup")

    assert done.returncode == 0, done.stderr
    assert removed == []
    assert len(_left(engine)) == len(KEPT) * HOSTS


@contextmanager
def _checks_statements() -> Iterator[list[tuple[str, Any]]]:
    """The statements about checks sent on any engine (the run builds its own), with their parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if " checks" in statement and "job_runs" not in statement:
            sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _plan_steps(engine: Engine, statement: str, parameters: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(("EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ") + statement,
                       parameters)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_statement_is_a_range_of_the_primary_key(run: InProcess, engine: Engine, dry_run: bool) -> None:
    run.write_config([], retention={**RETENTION, "batch_rows": 4})
    _seed(engine, OLD + KEPT)
    with _checks_statements() as sent:
        done = run.run("run", "cleanup", *(["--dry-run"] if dry_run else []))
    assert done.returncode == 0, done.stderr
    if not dry_run:
        _seed(engine, OLD)  # the plans as they were, on the rows the statements met

    assert len(sent) >= 6
    for statement, parameters in sent:
        steps = _plan_steps(engine, statement, parameters)
        if engine.dialect.name == "sqlite":
            on_checks = [step["detail"] for step in steps if " checks " in f" {step['detail']} "]
            assert on_checks and all(detail.startswith("SEARCH checks USING PRIMARY KEY (checked_at")
                                     for detail in on_checks), (statement, steps)
        else:
            on_checks = [step for step in steps if step["table"] == "checks"]
            assert on_checks and all(step["key"] == "PRIMARY" and step["type"] in ("range", "ref", "const")
                                     for step in on_checks), (statement, steps)


@contextmanager
def _work_per_statement() -> Iterator[list[int]]:
    """The work each statement about checks did, on any engine: SQLite's virtual machine steps (in
    thousands), MariaDB's rows read through the handler (Handler_read_*)."""
    work: list[int] = []
    started: dict[int, int] = {}

    def handler_reads(cursor: Any) -> int:
        raw = cursor.connection.cursor()
        raw.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
        total = sum(int(value) for _, value in raw.fetchall())
        raw.close()
        return total

    def before(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if " checks" not in statement or "job_runs" in statement:
            return
        if conn.dialect.name == "sqlite":
            steps = [0]
            started[id(cursor)] = 0

            def tick() -> int:
                steps[0] += 1
                return 0

            conn.connection.driver_connection.set_progress_handler(tick, 1_000)
            conn.info["steps"] = steps
        else:
            started[id(cursor)] = handler_reads(cursor)

    def after(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if id(cursor) not in started:
            return
        if conn.dialect.name == "sqlite":
            conn.connection.driver_connection.set_progress_handler(None, 0)
            work.append(conn.info.pop("steps")[0])
        else:
            # The status read itself counts a few rows of its own.
            work.append(handler_reads(cursor) - started[id(cursor)])
        started.pop(id(cursor))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield work
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def test_no_statement_reads_more_than_its_batch_whatever_the_backlog(run: InProcess, engine: Engine) -> None:
    def most_work(runs: int) -> int:
        _seed(engine, [CUTOFF - timedelta(minutes=m) for m in range(1, runs + 1)], hosts=40)
        with _work_per_statement() as work:
            done = run.run("run", "cleanup")
        assert done.returncode == 0, done.stderr
        assert len(_left(engine)) == 0
        return max(work)

    run.write_config([], retention={**RETENTION, "batch_rows": 100})
    small, large = most_work(10), most_work(200)

    # 400 rows or 8,000 rows to go: a statement's work is its batch's (the key-range delete read
    # every row left before the cutoff, on SQLite).
    assert large <= 1.5 * small + 5, (small, large)
