"""The history ping-sweep writes: raw checks, transitions and rollups, on SQLite and MariaDB, in-process.

Runs go through the real CLI (tests/inproc.py) with a hand-stepped clock, so hour and day edges,
a clock step back and a pause longer than the gap limit are placed exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakeapi import FakeApis
from inproc import Clock, InProcess, PlannedSweep, sweep_counting
from sqlalchemy import select
from sqlalchemy.engine import Engine

from netwatch.config import parse_config
from netwatch.core import rollup
from netwatch.db import tables
from netwatch.db.rollups import read_rollup_rows, rollup_rows, rollups_from_raw
from netwatch.probes.icmp import PingSettings, ProbeResult, Target

ONLINE, OFFLINE, UNKNOWN = (rollup.STATE_CODES[name] for name in ("online", "offline", "unknown"))
START = datetime(2026, 11, 22, 22, 40, tzinfo=UTC)
DAY_START = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp())


def _hosts(count: int) -> list[dict[str, str]]:
    return [{"name": f"h{i:03d}", "address": f"127.6.{i // 250}.{i % 250 + 1}"} for i in range(count)]


def _transitions(nwi: InProcess) -> list[tuple[str, int, int, int, int, str | None]]:
    names = {row["id"]: row["name"] for row in nwi.rows("targets")}
    return [(names[t["target_id"]], t["from_state"], t["to_state"], t["streak"], t["held_s"], t["event_key"])
            for t in sorted(nwi.rows("transitions"), key=lambda t: t["id"])]


def test_transitions_record_first_status_changes_held_time_event_key_and_removal(nwi: InProcess,
                                                                                 fake: FakeApis) -> None:
    nwi.clock = Clock(START)
    hosts = _hosts(2)
    nwi.write_config(hosts, thresholds={"min_transition_seconds": 600},
                     sigma={"base_url": fake.url}, segware={"base_url": fake.url})
    assert nwi.sweep().returncode == 0  # both: unknown -> online, not notified
    nwi.sweep_plan.set_down("h000")
    for _ in range(3):  # 5 minutes apart: held from the first run until the interval has passed
        nwi.clock.advance(300)
        done = nwi.sweep()
        assert done.returncode == 0, done.stderr
    nwi.write_config(hosts[:1], thresholds={"min_transition_seconds": 600},
                     sigma={"base_url": fake.url}, segware={"base_url": fake.url})
    nwi.clock.advance(60)
    assert nwi.sweep().returncode == 0

    [event] = nwi.outbox()
    assert _transitions(nwi) == [
        ("h000", UNKNOWN, ONLINE, 1, 0, None),
        ("h001", UNKNOWN, ONLINE, 1, 0, None),
        ("h000", ONLINE, OFFLINE, 2, 300, event.idempotency_key),
        ("h001", ONLINE, UNKNOWN, 0, 0, None),
    ]
    [row] = [h for h in nwi.rows("hosts") if h["name"] == "h000"]
    assert row["held_since"] is None and not row["held"]


def test_a_held_change_is_stored_with_when_it_began(nwi: InProcess) -> None:
    nwi.clock = Clock(START)
    nwi.write_config(_hosts(1), thresholds={"min_transition_seconds": 600})
    assert nwi.sweep().returncode == 0
    nwi.sweep_plan.set_down("h000")
    nwi.clock.advance(300)
    assert nwi.sweep().returncode == 0
    [row] = nwi.rows("hosts")
    assert (bool(row["held"]), row["held_since"]) == (True, START + timedelta(seconds=300))


def test_checks_store_prior_state_gap_and_error(nwi: InProcess) -> None:
    nwi.clock = Clock(START)
    nwi.write_config([*_hosts(1), {"name": "nodns", "address": "nowhere.invalid"}],
                     history={"gap_limit_seconds": 120})
    assert nwi.sweep().returncode == 0
    nwi.clock.advance(600)  # longer than the gap limit
    nwi.sweep_plan.set_down("h000")
    assert nwi.sweep().returncode == 0
    checks = [(c["host_name"], c["prior"], c["state"], c["gap_s"], c["status"]) for c in nwi.checks()]
    assert checks == [("h000", "unknown", "online", 0, "ok"), ("nodns", "unknown", "offline", 0, "failed"),
                      ("h000", "online", "offline", 120, "failed"), ("nodns", "offline", "offline", 120, "failed")]
    errors = {c["host_name"]: c["error"] for c in nwi.checks()[2:]}
    assert errors["h000"] == "no reply" and errors["nodns"] not in (None, "no reply")


class SteppedRtts(PlannedSweep):
    """Answers with an RTT of its host and of the hour of `clock`: fixed within an hour, so a clock
    step back inside an hour does not reorder different values (see core/history.py on the mean)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, targets: Sequence[Target], settings: PingSettings,
                 check_stop: Callable[[], None]) -> dict[str, ProbeResult]:
        results = super().__call__(targets, settings, check_stop)
        hour = self.clock().hour
        for index, target in enumerate(targets):
            result = results[target.key]
            if result.received:
                ms = 0.137 + 0.311 * ((index * 7 + hour * 3) % 11) + 0.0007 * hour
                rtts = tuple(ms + 0.013 * k for k in range(result.received))
                results[target.key] = replace(result, rtts_ms=rtts)
        return results


@dataclass(frozen=True)
class Step:
    seconds: float
    down: tuple[str, ...] = ()
    up: tuple[str, ...] = ()


def _run_steps(nwi: InProcess, engine: Engine, start: datetime, steps: Sequence[Step]) -> tuple[
        list[dict[str, object]], list[dict[str, object]], Clock]:
    """Sweeps 6 hosts at the steps' times; returns the stored hourly and daily rows (the rows
    recomputed from raw checks are asserted equal to them) and the clock."""
    clock = Clock(start)
    nwi.clock, nwi.sweep_plan = clock, SteppedRtts(clock)
    nwi.write_config(_hosts(6), thresholds={"down_after": 2, "up_after": 2, "min_transition_seconds": 0},
                     history={"gap_limit_seconds": 900})
    for step in steps:
        clock.advance(step.seconds)
        nwi.sweep_plan.set_down(*step.down)
        nwi.sweep_plan.set_up(*step.up)
        done = nwi.sweep()
        assert done.returncode == 0, done.stderr
    first_day = rollup.bucket_start(int(start.timestamp()), rollup.DAY)
    with engine.begin() as conn:
        hourly, daily = read_rollup_rows(conn, first_day, first_day + 2 * rollup.DAY)
        raw = rollups_from_raw(conn, first_day, first_day + 2 * rollup.DAY)
        checks = conn.execute(select(tables.checks)).all()
    assert len(checks) == 6 * len(steps)
    # Every column as stored, the p95 of the closed hours included (the hour in progress has none).
    assert (hourly, daily) == rollup_rows(raw)
    return hourly, daily, clock


# 22:40 to about 00:30: within a month, and across the end of one (month-to-date totals start over).
@pytest.mark.parametrize("start", [START, datetime(2026, 11, 30, 22, 40, tzinfo=UTC)])
def test_rollups_built_run_by_run_are_the_rollups_recomputed_from_raw(nwi: InProcess, engine: Engine,
                                                                      start: datetime) -> None:
    steps = ([Step(0)] + [Step(277)] * 3 + [Step(240, down=("h001", "h002"))] + [Step(301)] * 2
             + [Step(-30)]  # the clock steps back inside an hour
             + [Step(250, up=("h002",), down=("h004",))] + [Step(2_000)]  # a pause longer than the gap limit
             + [Step(299.6)] * 5 + [Step(180, up=("h001",))] + [Step(311)] * 6)
    hourly, daily, clock = _run_steps(nwi, engine, start, steps)

    assert clock().date() > start.date(), "the runs cross midnight"
    latest = {row["target_id"]: row["hour"] for row in hourly}
    assert all(row["rtt_p95_us"] is None for row in hourly if row["hour"] == latest[row["target_id"]])
    assert all(row["rtt_p95_us"] is not None for row in hourly
               if row["hour"] < latest[row["target_id"]] and row["rtt_samples"])
    assert len([row for row in hourly if row["rtt_p95_us"] is not None]) > 6
    midnight = start.replace(hour=0, minute=0)
    assert {row["day"] for row in daily} == {midnight, midnight + timedelta(days=1)}
    days = sorted((row for row in daily if row["target_id"] == 1), key=lambda row: row["day"])
    same_month = start.month == clock().month
    # Within a month the later row's totals hold both days; across a month edge each its own.
    known = sum(row["mtd_online_s"] + row["mtd_offline_s"] + row["mtd_unknown_s"]  # type: ignore[operator]
                for row in (days[-1:] if same_month else days))
    assert known < clock().timestamp() - start.timestamp(), "the pause past the gap limit is unobserved"
    if not same_month:
        assert days[-1]["mtd_sent"] < days[0]["mtd_sent"], "the new month's totals start over"  # type: ignore[operator]
    assert any(row["offline_s"] for row in daily)
    assert len({bucket for row in daily for bucket in range(rollup.RTT_BUCKETS) if row[f"mtd_h{bucket:02d}"]}) > 3


@pytest.mark.parametrize("start", [datetime(2026, 11, 22, 23, 58, tzinfo=UTC),
                                   datetime(2026, 11, 30, 23, 58, tzinfo=UTC)])
def test_a_clock_stepped_back_across_midnight_keeps_the_totals_of_both_days(nwi: InProcess, engine: Engine,
                                                                           start: datetime) -> None:
    # 23:58, 23:59, 00:00:10, back to 23:59:40 (the day before, whose totals the next day continues),
    # then on past midnight again.
    steps = [Step(0), Step(60), Step(70, down=("h003",)), Step(-30), Step(60), Step(60, down=("h003",)), Step(300)]
    _, daily, _ = _run_steps(nwi, engine, start, steps)

    before, after = (sorted((row for row in daily if row["target_id"] == 1), key=lambda row: row["day"]))
    checks = [sum(row[f"mtd_{status}"] for status in ("ok", "degraded", "failed"))  # type: ignore[misc]
              for row in (before, after)]
    assert checks[0] == 3, "23:58, 23:59 and the run stepped back to 23:59:40"
    assert checks[1] == 4 + (3 if start.day < 30 else 0), "the next day continues the month's totals"


def _sweep_counting(db_url: str, tmp_path: Path, count: int, now: datetime) -> int:
    config = parse_config({"database": {"url": db_url}, "hosts": _hosts(count),
                           "thresholds": {"down_after": 1, "up_after": 1, "min_transition_seconds": 0}},
                          "test", tmp_path, {})
    plan = PlannedSweep()
    plan.set_down(*[f"h{i:03d}" for i in range(0, count, 3)])  # a third fail: error texts, offline time
    return sweep_counting(config, now, plan)


def test_statements_per_run_are_the_same_at_20_and_400_hosts(db_url: str, engine: Engine, tmp_path: Path) -> None:
    counts = {}
    for count in (20, 400):
        # The same prefix of names: the 400-host runs start with 380 new hosts, so both sizes warm up first.
        _sweep_counting(db_url, tmp_path, count, START)
        _sweep_counting(db_url, tmp_path, count, START + timedelta(minutes=1))
        # A steady run, one whose gap crosses an hour edge (two hourly rows per host), and the first of
        # a new day (it reads and continues every host's month-to-date totals).
        counts[count] = (_sweep_counting(db_url, tmp_path, count, START + timedelta(minutes=2)),
                         _sweep_counting(db_url, tmp_path, count, START + timedelta(minutes=20, seconds=5)),
                         _sweep_counting(db_url, tmp_path, count, START + timedelta(minutes=80, seconds=5)))
        with engine.begin() as conn:
            for table in reversed(tables.metadata.sorted_tables):
                if table is not tables.schema_version:
                    conn.execute(table.delete())
    assert counts[20] == counts[400], counts
