"""Raw checks without an index by host: `checks` is clustered by (checked_at, target_id) on both databases,
and `netwatch history HOST` and `netwatch status` find a host's checks as primary-key points (a
ping-sweep run's start, the host), in a number of statements that does not grow with the hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inproc import Clock, InProcess
from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from test_history_upgrade import legacy_row, make_version_4, upgrade

from netwatch.config import RetentionConfig, parse_config
from netwatch.db import tables
from netwatch.db.engine import build_engine, count_statements
from netwatch.errors import ConfigError
from netwatch.history import timeline
from netwatch.jobs.http_check import JOB as HTTP_CHECK_JOB
from netwatch.jobs.ping_sweep import JOB

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _hosts(count: int) -> list[dict[str, str]]:
    return [{"name": f"lo-{n}", "address": f"127.0.0.{n + 1}"} for n in range(count)]


def _check_indexes(conn: Connection) -> list[str]:
    if conn.dialect.name == "sqlite":
        return [row.origin for row in conn.execute(text("PRAGMA index_list(checks)"))]
    return sorted({row.Key_name for row in conn.execute(text("SHOW INDEX FROM checks"))})


def _assert_clustered_by_time_alone(engine: Engine) -> None:
    with engine.connect() as conn:
        assert [index["name"] for index in inspect(conn).get_indexes("checks")] == []
        assert inspect(conn).get_pk_constraint("checks")["constrained_columns"] == ["checked_at", "target_id"]
        if conn.dialect.name == "sqlite":
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'checks'")).scalar_one()
            assert ddl.rstrip().endswith("WITHOUT ROWID")
            # A WITHOUT ROWID table's primary key is the table itself: its only index.
            assert _check_indexes(conn) == ["pk"]
        else:
            assert _check_indexes(conn) == ["PRIMARY"]


def test_checks_are_stored_in_primary_key_order_with_no_other_index(engine: Engine) -> None:
    _assert_clustered_by_time_alone(engine)


def test_the_upgrade_to_5_creates_checks_the_same_way(db_url: str) -> None:
    make_version_4(db_url, [legacy_row(n, "cam-1", T0 + timedelta(minutes=n)) for n in range(3)])
    upgrade(db_url)
    upgraded = build_engine(db_url)
    try:
        _assert_clustered_by_time_alone(upgraded)
    finally:
        upgraded.dispose()


def _sweeps(run: InProcess, starts: list[datetime]) -> None:
    for start in starts:
        run.clock = Clock(start)
        assert run.sweep().returncode == 0


def _target(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(tables.targets.c.id).where(tables.targets.c.name == name)).scalar_one())


def test_history_holds_the_checks_of_the_sweeps_from_since_on_runs_starting_inside_a_second(
        nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(_hosts(2))
    # Each run starts 0.6 s into its second: its checks are stamped with the second it started in.
    _sweeps(nwi, [T0 + timedelta(minutes=m, microseconds=600_000) for m in range(5)])
    target = _target(engine, "lo-1")

    with engine.connect() as conn:
        # From 10:01:00.2: the run of 10:01:00.6 started after it, but its checks are of 10:01:00.
        since_fraction = timeline.timeline_rows(conn, target, T0 + timedelta(minutes=1, microseconds=200_000))
        since_whole = timeline.timeline_rows(conn, target, T0 + timedelta(minutes=1))
        everything = timeline.timeline_rows(conn, target, T0 - timedelta(days=1))

    def checks_at(rows: list[dict[str, Any]]) -> list[str]:
        return [row["at"].strftime("%H:%M:%S.%f") for row in rows if row["kind"] == "check"]

    assert checks_at(since_fraction) == ["10:04:00.000000", "10:03:00.000000", "10:02:00.000000"]
    assert checks_at(since_whole) == ["10:04:00.000000", "10:03:00.000000", "10:02:00.000000", "10:01:00.000000"]
    assert [(row["kind"], row["status"]) for row in everything[-2:]] == [("transition", "online"), ("check", "ok")]
    assert len(checks_at(everything)) == 5
    assert {row["loss_pct"] for row in everything if row["kind"] == "check"} == {0.0}


def test_status_shows_the_check_at_the_hosts_last_check_time_even_a_hair_before_the_next_second(
        nwi: InProcess) -> None:
    nwi.write_config(_hosts(2))
    nwi.sweep_plan.set_down("lo-0")
    # 0.9999995 s into the second: a conversion that rounds (SQLite's strftime('%s')) misses the row.
    _sweeps(nwi, [T0 + timedelta(microseconds=999_999), T0 + timedelta(minutes=1, microseconds=999_999)])

    rows = {row["name"]: row for row in json.loads(nwi.run("status", "--json").stdout)}

    assert (rows["lo-0"]["loss_pct"], rows["lo-0"]["rtt_avg_ms"]) == (100.0, None)
    assert rows["lo-0"]["reason"]
    assert (rows["lo-1"]["loss_pct"], rows["lo-1"]["reason"]) == (0.0, None)
    assert rows["lo-1"]["rtt_avg_ms"] is not None


def _seed_runs_and_checks(engine: Engine, hosts: int, runs: int) -> None:
    """`runs` ping-sweep runs a minute apart from T0, each with a check of every host."""
    starts = [T0 + timedelta(minutes=m, microseconds=250_000) for m in range(runs)]
    with engine.begin() as conn:
        conn.execute(tables.targets.insert(), [{"name": f"lo-{n}", "created_at": T0} for n in range(hosts)])
        conn.execute(tables.job_runs.insert(), [
            {"job": JOB, "shard": "0/1", "holder": "seed", "started_at": at, "finished_at": at, "outcome": "ok"}
            for at in starts])
        conn.execute(tables.checks.insert(), [
            {"checked_at": at, "target_id": n + 1, "status": 0, "prior": 1, "state": 1, "gap_s": 60, "sent": 2,
             "received": 2, "attempts": 1, "rtt_min_us": 900, "rtt_avg_us": 1000, "rtt_max_us": 1100,
             "rtt_bucket": 3}
            for at in starts for n in range(hosts)])
        conn.execute(tables.hosts.insert(), [
            {"name": f"lo-{n}", "address": "127.0.0.1", "status": "online", "consecutive_failures": 0,
             "consecutive_successes": runs, "held": False, "last_check_at": starts[-1], "last_check_status": "ok"}
            for n in range(hosts)])


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("hosts", [2, 40])
def test_history_reads_1000_runs_a_statement_whatever_the_hosts(engine: Engine, hosts: int) -> None:
    _seed_runs_and_checks(engine, hosts, 2_100)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # SQLite's BEGIN goes first
        with count_statements(engine) as counted:
            rows = timeline.timeline_rows(conn, 2, T0 - timedelta(hours=1))

    # The oldest check, the runs, 3 chunks of their checks, the transitions.
    assert counted.value == 6
    assert len(rows) == 2_100
    assert rows[0]["at"] == T0 + timedelta(minutes=2_099)


def test_history_looks_up_only_the_runs_since_the_oldest_raw_check(engine: Engine) -> None:
    _seed_runs_and_checks(engine, 2, 10)
    # Runs of years before, whose checks cleanup deleted long ago (job_runs are kept longer).
    with engine.begin() as conn:
        conn.execute(tables.job_runs.insert(), [
            {"job": JOB, "shard": "0/1", "holder": "seed", "started_at": T0 - timedelta(minutes=m),
             "finished_at": T0, "outcome": "ok"} for m in range(1, 5_001)])
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # SQLite's BEGIN goes first
        with count_statements(engine) as counted:
            rows = timeline.timeline_rows(conn, 1, T0 - timedelta(days=3650))

    assert counted.value == 4
    assert len(rows) == 10


def test_history_of_an_empty_checks_table_reads_no_runs(engine: Engine) -> None:
    with engine.connect() as conn:
        assert timeline.timeline_rows(conn, 1, T0 - timedelta(days=1)) == []


@pytest.mark.parametrize("hosts", [3, 60])
def test_status_reads_every_last_check_in_one_statement(engine: Engine, hosts: int) -> None:
    _seed_runs_and_checks(engine, hosts, 3)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # SQLite's BEGIN goes first
        with count_statements(engine) as counted:
            last = timeline.last_checks(conn)

    assert counted.value == 1
    assert last == {f"lo-{n}": timeline.LastCheck(0.0, 1.0, None) for n in range(hosts)}


def _plan(conn: Connection, statement: str, parameters: Any) -> list[dict[str, Any]]:
    """The query plan of a statement as sent: a dict per row."""
    explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(explain + statement, parameters)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_both_readers_look_checks_up_by_the_whole_primary_key(engine: Engine) -> None:
    _seed_runs_and_checks(engine, 50, 30)
    with engine.connect() as conn:
        with _statements(engine) as sent:
            timeline.timeline_rows(conn, 7, T0 - timedelta(hours=1))
            timeline.last_checks(conn)
        about_checks = [(statement, parameters) for statement, parameters in sent
                        if " checks" in statement and "job_runs" not in statement and "transitions" not in statement]
        [oldest] = [_plan(conn, *sent) for sent in about_checks if "min(" in sent[0].lower()]
        plans = [_plan(conn, *sent) for sent in about_checks if "min(" not in sent[0].lower()]

    # The oldest check: one end of the primary key.
    if engine.dialect.name == "sqlite":
        assert [row["detail"] for row in oldest] == ["SEARCH checks USING PRIMARY KEY"]
    else:
        assert [row["Extra"] for row in oldest] == ["Select tables optimized away"]
    assert len(plans) == 2
    for plan in plans:
        if engine.dialect.name == "sqlite":
            [step] = [row["detail"] for row in plan if " checks " in f" {row['detail']} "]
            assert step == "SEARCH checks USING PRIMARY KEY (checked_at=? AND target_id=?)", plan
        else:
            # A range of points of PRIMARY (history) or one row of it per host (status): never a scan.
            [step] = [row for row in plan if row["table"] == "checks"]
            assert (step["key"], step["type"] in ("range", "eq_ref", "ref")) == ("PRIMARY", True), plan
            assert step["key_len"] == "8", plan


def test_the_checking_jobs_are_the_ones_history_looks_runs_up_by() -> None:
    assert timeline.CHECKING_JOBS == (JOB, HTTP_CHECK_JOB)


def test_runs_are_kept_at_least_as_long_as_raw_checks() -> None:
    def retention(section: dict[str, int]) -> RetentionConfig:
        return parse_config({"hosts": [], "retention": section}, "nw.yaml", Path("/tmp"), {}).retention

    assert retention({"raw_days": 30, "runs_days": 30}).runs_days == 30
    with pytest.raises(ConfigError) as caught:
        retention({"raw_days": 30, "runs_days": 29})
    assert caught.value.message == ("nw.yaml: retention.runs_days: must be at least raw_days (30), got 29:"
                                    " `netwatch history` finds raw checks by their ping-sweep runs")
