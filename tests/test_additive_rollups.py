"""Rollups added to and never read back (netwatch/db/upsert.py `add_integer_rows`, netwatch/db/rollups.py),
on SQLite and MariaDB: the dialect's additive upsert, and what a ping-sweep run sends for them.
The statement counts at 20 and 400 hosts are compared in tests/test_sweep_history.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inproc import PlannedSweep
from sqlalchemy import Integer, event, literal, select, type_coerce
from sqlalchemy.engine import Engine

from netwatch.config import parse_config
from netwatch.core import rollup
from netwatch.db import tables
from netwatch.db.engine import count_statements
from netwatch.db.upsert import add_integer_rows, add_selected, insert_integer_rows, upsert_rows
from netwatch.deps import build_deps
from netwatch.jobs.ping_sweep import run_ping_sweep
from netwatch.logs import Redactor
from netwatch.probes.icmp import PingSettings, ProbeResult, Target
from netwatch.running.stopflag import StopFlag
from netwatch.shard import Shard

HOUR = datetime(2026, 11, 22, 10, tzinfo=UTC)
KEY = ["hour", "target_id"]


COLUMNS = ("hour", "target_id", "ok", "rtt_min_us", "rtt_sum_us", "rtt_max_us", "online_s")


def _row(target_id: int, checks: int, rtt: tuple[int, int, int] | None, online_s: int) -> tuple[Any, ...]:
    low, total, high = rtt or (None, 0, None)
    return int(HOUR.timestamp()), target_id, checks, low, total, high, online_s


def _add(engine: Engine, rows: Sequence[tuple[Any, ...]]) -> int:
    with engine.begin() as conn, count_statements(engine) as statements:
        add_integer_rows(conn, tables.rollups_hourly, COLUMNS, rows, key=KEY, add=["ok", "rtt_sum_us", "online_s"],
                 least=["rtt_min_us"], greatest=["rtt_max_us"])
    return statements.value


def _stored(engine: Engine) -> dict[int, tuple[Any, ...]]:
    r = tables.rollups_hourly.c
    with engine.begin() as conn:
        rows = conn.execute(select(r.target_id, r.ok, r.rtt_min_us, r.rtt_sum_us, r.rtt_max_us, r.online_s, r.degraded,
                                   r.rtt_p95_us)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_add_integer_rows_adds_sums_keeps_min_and_max_across_nulls_and_leaves_other_columns(engine: Engine) -> None:
    assert _add(engine, [_row(1, 1, None, 30), _row(2, 1, (400, 500, 600), 0)]) == 1, "one statement"
    assert _stored(engine) == {1: (1, None, 0, None, 30, 0, None), 2: (1, 400, 500, 600, 0, 0, None)}
    with engine.begin() as conn:  # a closed hour's p95, which later additions leave alone
        upsert_rows(conn, tables.rollups_hourly, [{"hour": HOUR, "target_id": 2, "rtt_p95_us": 590}], key=KEY,
                    update=["rtt_p95_us"])
    assert _add(engine, [_row(1, 1, (650, 700, 750), 60), _row(2, 2, None, 10)]) == 1
    assert _add(engine, [_row(2, 1, (300, 450, 900), 5)]) == 1
    assert _add(engine, [_row(2, 1, (350, 400, 800), 0)]) == 1
    assert _stored(engine) == {1: (2, 650, 700, 750, 90, 0, None), 2: (5, 300, 1_350, 900, 15, 0, 590)}


def test_add_integer_rows_refuses_columns_out_of_the_tables_order(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="not in the order of rollups_hourly"):
        add_integer_rows(conn, tables.rollups_hourly, ("target_id", "hour", "ok"), [(1, 0, 1)], key=KEY, add=["ok"])


def _add_selected(engine: Engine, targets: Sequence[int], run: int) -> None:
    """add_selected of run `run`'s checks of `targets` (ok, 60 s online, RTT 100 us + run) from the
    `checks` table into HOUR's rows."""
    c = tables.checks.c
    hour = int(HOUR.timestamp())
    with engine.begin() as conn:
        insert_integer_rows(conn, tables.checks, [column.name for column in tables.checks.columns][:9],
                            [(hour + run, target, 0, 1, 1, 60, 1, 1, 1) for target in targets])
    rtt = literal(100 + run, Integer)
    query = (select(literal(hour, Integer).label("hour"), c.target_id, literal(1, Integer).label("ok"),
                    rtt.label("rtt_min_us"), rtt.label("rtt_sum_us"), rtt.label("rtt_max_us"),
                    c.gap_s.label("online_s"))
             .where(type_coerce(c.checked_at, Integer) == hour + run, c.target_id.in_(targets)))
    with engine.begin() as conn:
        add_selected(conn, tables.rollups_hourly, query, key=KEY,
                     add=["ok", "rtt_sum_us", "online_s"], least=["rtt_min_us"], greatest=["rtt_max_us"])


def test_add_selected_adds_to_rows_that_exist_and_inserts_the_others(engine: Engine) -> None:
    _add_selected(engine, [1, 2], run=1)
    _add_selected(engine, [2, 3], run=2)  # 2 exists, 3 is new
    _add_selected(engine, [1, 2, 3], run=3)
    assert _stored(engine) == {1: (2, 101, 204, 103, 120, 0, None), 2: (3, 101, 306, 103, 180, 0, None),
                               3: (2, 102, 205, 103, 120, 0, None)}


def _ms_in_bucket(bucket: int) -> float:
    """An RTT (ms) that core.rollup.rtt_bucket puts in `bucket`."""
    return 0.05 if bucket == 0 else rollup.RTT_EDGES_MS[bucket - 1] * 1.1


class BucketRtts(PlannedSweep):
    """Answers every host; with `spread`, host i's RTT falls in histogram bucket i % RTT_BUCKETS."""

    spread = False

    def __call__(self, targets: Sequence[Target], settings: PingSettings,
                 check_stop: Callable[[], None]) -> dict[str, ProbeResult]:
        results = super().__call__(targets, settings, check_stop)
        for index, target in enumerate(targets):
            ms = _ms_in_bucket(index % rollup.RTT_BUCKETS if self.spread else 3)
            results[target.key] = replace(results[target.key], rtts_ms=(ms,) * settings.count)
        return results


def _sweep(db_url: str, tmp_path: Path, plan: PlannedSweep, now: datetime) -> list[str]:
    """One ping-sweep run over 80 hosts at `now`: the SQL of every statement it sent."""
    return [statement for statement, _parameters in _sweep_sending(db_url, tmp_path, plan, now)]


def _sweep_sending(db_url: str, tmp_path: Path, plan: PlannedSweep, now: datetime) -> list[tuple[str, Any]]:
    """One ping-sweep run over 80 hosts at `now`: the SQL and parameters of every statement it sent."""
    hosts = [{"name": f"h{i:03d}", "address": f"127.7.0.{i + 1}"} for i in range(80)]
    # Thresholds of 1: every status is confirmed in the first run. No RTT is slow enough to degrade a check.
    config = parse_config({"database": {"url": db_url}, "hosts": hosts, "ping": {"latency_degraded_ms": 100_000},
                           "thresholds": {"down_after": 1, "up_after": 1, "min_transition_seconds": 0}},
                          "test", tmp_path, {})
    deps = replace(build_deps(config, {}, StopFlag(), Redactor()), sweep=plan,
                   check_ping_permission=lambda _preference, _families: "raw",
                   clock=lambda: now, server_clock=lambda _conn: now)
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    event.listen(deps.engine, "before_cursor_execute", record)
    try:
        assert run_ping_sweep(config, deps, Shard()) == 0
        return sent
    finally:
        deps.engine.dispose()


def test_a_run_within_the_day_reads_no_rollup_row_and_its_statements_do_not_grow_with_rtt_buckets(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    plan = BucketRtts()
    start = datetime(2026, 11, 22, 22, 40, tzinfo=UTC)
    runs = [_sweep(db_url, tmp_path, plan, start), _sweep(db_url, tmp_path, plan, start + timedelta(minutes=1))]
    plan.spread = True
    runs.append(_sweep(db_url, tmp_path, plan, start + timedelta(minutes=2)))
    # The first run of 23:00: hour 22 is over for every host, its p95 comes from the raw checks.
    runs.append(_sweep(db_url, tmp_path, plan, start + timedelta(minutes=20, seconds=5)))

    def rollup_reads(sent: list[str]) -> list[str]:
        return [sql for sql in sent if sql.lstrip().upper().startswith("SELECT") and "rollups_" in sql]

    # The hosts' first run starts their month's daily totals: one read of the rows it continues
    # (there are none yet) and one of those rows; later runs of the day never read a rollup row.
    assert len(rollup_reads(runs[0])) == 2
    assert [rollup_reads(sent) for sent in runs[1:]] == [[]] * 3, "rollup rows are not read back within a day"
    one_bucket, every_bucket, closing = (len(sent) for sent in runs[1:])
    assert every_bucket == one_bucket, "the server counts each check into its histogram bucket"
    # The seconds of the gaps before 23:00 go to hour 22 (one executemany); hour 22's p95 comes from
    # one grouped SELECT of raw checks and one upsert.
    assert closing == every_bucket + 3
    with engine.begin() as conn:
        p95 = conn.execute(select(tables.rollups_hourly.c.hour, tables.rollups_hourly.c.rtt_p95_us)).all()
    assert {(hour.hour, value is not None) for hour, value in p95} == {(22, True), (23, False)}


def test_on_mysql_a_closing_hour_writes_its_gap_seconds_and_p95_into_the_statements(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    plan = BucketRtts()
    plan.spread = True
    start = datetime(2026, 11, 22, 22, 58, tzinfo=UTC)
    _sweep(db_url, tmp_path, plan, start)
    closing = _sweep_sending(db_url, tmp_path, plan, start + timedelta(minutes=3))
    hourly = [(sql, parameters) for sql, parameters in closing
              if sql.startswith("INSERT INTO rollups_hourly") and " SELECT " not in sql]
    assert len(hourly) == 2, "the gap seconds before 23:00, and hour 22's p95"
    if engine.dialect.name == "mysql":
        assert all(not parameters for _sql, parameters in hourly), "no bound parameter: PyMySQL escapes none"
        assert all(sql.count("),(") == 79 for sql, _parameters in hourly), "80 hosts' rows in the text"
    r = tables.rollups_hourly.c
    with engine.begin() as conn:
        rows = conn.execute(select(r.hour, r.online_s, r.rtt_p95_us).where(r.hour == start.replace(minute=0))).all()
    assert len(rows) == 80
    assert {(online_s, p95 is not None) for _hour, online_s, p95 in rows} == {(120, True)}
