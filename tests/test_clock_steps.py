"""Clock steps: leases on the database server's clock, and runs that refuse a clock they cannot trust (71).

The pure rule (netwatch/core/clockcheck.py) is tested exhaustively with plain values; the jobs run
in-process through the real CLI on SQLite and MariaDB, with this machine's clock set apart from the
database server's (`SkewedClock`) or stepped by hand (`Clock`, which the server clock follows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakeapi import FakeApis
from inproc import Clock, InProcess
from jobkit import TOKEN, log_lines
from sqlalchemy.engine import Engine

from netwatch.config import Config
from netwatch.core.clockcheck import clock_problem
from netwatch.core.times import utc_now
from netwatch.db.clock import server_now
from netwatch.db.leases import read_lease
from netwatch.deps import Deps
from netwatch.logs import Redactor
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ENV = {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN}
HOST = {"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}


# 1. The rule, exhaustively

def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(("local_s", "server_s", "last_s", "tolerance", "refused"), [
    (0, 0, None, 60, None),
    (60, 0, None, 60, None),            # exactly the tolerance ahead: fine (inclusive)
    (-60, 0, None, 60, None),           # exactly the tolerance behind: fine
    (60.5, 0, None, 60, "server"),
    (-60.5, 0, None, 60, "server"),
    (300, 0, None, 60, "server"),       # five minutes ahead
    (-3600, 0, None, 60, "server"),     # an hour behind
    (0, 0, 0, 60, None),
    (0, 0, 60, 60, None),               # behind the last run by exactly the tolerance: fine
    (0, 0, 61, 60, "last run"),
    (0, 0, 3600, 60, "last run"),       # the case on one node (SQLite: server clock = local)
    (0, 0, -86400, 60, None),           # the last run long ago: fine
    (3600, 3600, 0, 60, None),          # both clocks moved on together: fine
    (-3600, 0, 0, 60, "server"),        # both rules broken: the server's is named
    (0, 0, 5, 1, "last run"),           # the smallest tolerance
    (0, 30, None, 1, "server"),
    (0, 0, 5000, 7200, None),           # a wide tolerance lets both through
    (-5000, 0, -3000, 7200, None),
])
def test_clock_problem_names_the_rule_that_is_broken(local_s: float, server_s: float, last_s: float | None,
                                                     tolerance: float, refused: str | None) -> None:
    last = None if last_s is None else _at(last_s)
    problem = clock_problem(_at(local_s), _at(server_s), last, tolerance, "alert-clear")
    if refused is None:
        assert problem is None
    elif refused == "server":
        assert problem is not None and "the database server's" in problem
    else:
        assert problem is not None and "the last committed alert-clear run" in problem


def test_clock_problem_message_names_both_times_the_gap_and_the_key() -> None:
    ahead = clock_problem(_at(300), T0, None, 60, "ping-sweep")
    assert ahead == ("this machine's clock (2026-11-22T10:05:00Z) is 300 s ahead of the database server's"
                     " (2026-11-22T10:00:00Z), more than run.clock_tolerance_seconds (60): fix its time sync")
    behind = clock_problem(T0, T0, _at(3600), 60, "alert-clear")
    assert behind is not None
    assert behind.startswith("this machine's clock (2026-11-22T10:00:00Z) is 3600 s behind the start of the last"
                             " committed alert-clear run (2026-11-22T11:00:00Z), more than"
                             " run.clock_tolerance_seconds (60)")
    assert "if this clock is right, that run's clock was ahead" in behind
    assert "\n" not in ahead + behind


def test_clock_problem_compares_instants_whatever_their_offset() -> None:
    brasilia = T0.astimezone(ZoneInfo("America/Sao_Paulo"))
    assert clock_problem(brasilia, T0, T0, 1, "ping-sweep") is None


@pytest.mark.parametrize("naive", ["local", "server", "last"])
def test_clock_problem_rejects_naive_times(naive: str) -> None:
    times = {"local": T0, "server": T0, "last": T0}
    times[naive] = T0.replace(tzinfo=None)
    with pytest.raises(ValueError):
        clock_problem(times["local"], times["server"], times["last"], 60, "ping-sweep")


# 2. Jobs on a clock set apart from the database server's

@dataclass
class SkewedClock(InProcess):
    """This machine's clock is `skew` off the real one; the database server keeps its own clock."""

    skew: timedelta = timedelta()

    def _build(self, config: Config, env: Any, stop: StopFlag, redactor: Redactor) -> Deps:
        deps = super()._build(config, env, stop, redactor)
        return replace(deps, clock=lambda: utc_now() + self.skew)


@pytest.fixture
def skewed(tmp_path: Path, engine: Engine, db_url: str) -> SkewedClock:
    return SkewedClock(tmp_path, db_url, dict(ENV))


def _errors(stderr: str) -> list[str]:
    return [line for line in log_lines(stderr) if line.startswith(("error:", "critical:"))]


def test_a_clock_five_minutes_ahead_refuses_with_71_and_writes_nothing(skewed: SkewedClock, fake: FakeApis) -> None:
    skewed.write_config([HOST], sigma={"base_url": fake.url}, thresholds={"notify_initial": True})
    skewed.skew = timedelta(minutes=5)

    done = skewed.sweep()

    assert done.returncode == 71, done.stderr
    [line] = _errors(done.stderr)
    assert "s ahead of the database server's" in line and "run.clock_tolerance_seconds (60)" in line
    assert line.endswith("fix its time sync; refusing to act")
    assert "Traceback" not in done.stderr
    assert [skewed.rows(t) for t in ("job_runs", "hosts", "checks", "outbox")] == [[], [], [], []]
    assert all(row["holder"] is None for row in skewed.rows("leases"))
    assert fake.requests_to("POST", "/v1/events") == []


@pytest.mark.parametrize("lease", ["ping-sweep:0/1", "outbox-delivery:0/1"])
def test_a_clock_five_minutes_ahead_cannot_take_a_live_runs_lease(
    skewed: SkewedClock, fake: FakeApis, engine: Engine, lease: str
) -> None:
    # A tolerance wide enough to let this clock through the check: the lease alone must hold.
    skewed.write_config([HOST], sigma={"base_url": fake.url, "retry_backoff_seconds": 0},
                        thresholds={"notify_initial": True}, run={"clock_tolerance_seconds": 900})
    live = Lease(engine, lease, "live-run", 120, server_now)
    assert live.try_acquire()
    skewed.skew = timedelta(minutes=5)

    done = skewed.sweep()

    assert fake.requests_to("POST", "/v1/events") == [], "a live run's lease was taken: duplicate sends"
    with engine.begin() as conn:
        assert read_lease(conn, lease).holder == "live-run"
    if lease.startswith("ping-sweep"):
        assert done.returncode == 75, done.stderr
        assert skewed.rows("hosts") == []
    else:
        assert done.returncode == 0, done.stderr
        assert "another run is delivering from the outbox" in done.stderr
        assert [(i.subject, i.status, i.attempts) for i in skewed.outbox()] == [("lo-1", "pending", 0)]


def test_within_the_tolerance_a_clock_ahead_of_the_server_runs(skewed: SkewedClock, fake: FakeApis) -> None:
    skewed.write_config([HOST], sigma={"base_url": fake.url}, thresholds={"notify_initial": True})
    skewed.skew = timedelta(seconds=30)
    done = skewed.sweep()
    assert done.returncode == 0, done.stderr
    assert [e["host"]["name"] for e in fake.sigma_events()] == ["lo-1"]


# 3. A clock stepped back behind the last committed run (the database server's clock follows it,
#    as on a single node with SQLite)

def _volume_events(end: datetime, groups: int = 3, per_group: int = 10) -> list[dict[str, Any]]:
    """`per_group` E130 events for each of `groups` CUCs, in the half hour before `end`."""
    return [
        {"id": f"ev-{g}-{i}", "account": "1234", "cuc": f"CUC-{g}", "code": "E130", "partition": "01",
         "zone": "003", "receivedAt": (end - timedelta(minutes=1 + i * 2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        for g in range(1, groups + 1) for i in range(per_group)
    ]


@pytest.fixture
def stepped(tmp_path: Path, engine: Engine, db_url: str, fake: FakeApis) -> InProcess:
    run = InProcess(tmp_path, db_url, dict(ENV), clock=Clock(T0))
    run.write_config([], segware={"base_url": fake.url}, event_scan={"codes": {"E130": 5}})
    fake.events = _volume_events(T0)
    return run


def _alerts(run: InProcess) -> list[tuple[str, str]]:
    return sorted((t["cuc"], t["status"]) for t in run.rows("triggers"))


LIVE = [("CUC-1", "active"), ("CUC-2", "active"), ("CUC-3", "active")]


def test_alert_clear_an_hour_behind_its_last_run_refuses_and_clears_nothing(stepped: InProcess) -> None:
    assert stepped.run("run", "event-scan").returncode == 0
    assert _alerts(stepped) == LIVE
    assert stepped.clock is not None
    stepped.clock.advance(60)
    assert stepped.run("run", "alert-clear").returncode == 0
    runs_before = stepped.rows("job_runs")

    stepped.clock.advance(-3600)
    done = stepped.run("run", "alert-clear")

    assert done.returncode == 71, done.stderr
    [line] = _errors(done.stderr)
    assert "3600 s behind the start of the last committed alert-clear run (2026-11-22T10:01:00Z)" in line
    assert _alerts(stepped) == LIVE, "live alerts cleared by a clock an hour behind"
    assert [e["action"] for e in stepped.rows("register_log")] == ["raised"] * 3
    assert stepped.rows("job_runs") == runs_before


def test_alert_clear_behind_event_scans_last_run_refuses_too(stepped: InProcess) -> None:
    """They change the same triggers: alert-clear's own history may be old or empty, event-scan's is not."""
    assert stepped.run("run", "event-scan").returncode == 0
    assert stepped.clock is not None

    stepped.clock.advance(-3600)
    done = stepped.run("run", "alert-clear")

    assert done.returncode == 71, done.stderr
    assert "behind the start of the last committed event-scan run (2026-11-22T10:00:00Z)" in done.stderr
    assert _alerts(stepped) == LIVE


def test_event_scan_behind_alert_clears_last_run_refuses(stepped: InProcess) -> None:
    assert stepped.run("run", "event-scan").returncode == 0
    assert stepped.clock is not None
    stepped.clock.advance(3600)  # the events are an hour old now: alert-clear clears by expiry
    assert stepped.run("run", "alert-clear").returncode == 0
    assert {status for _, status in _alerts(stepped)} == {"cleared"}

    stepped.clock.advance(-3600)
    done = stepped.run("run", "event-scan")

    assert done.returncode == 71, done.stderr
    assert "behind the start of the last committed alert-clear run" in done.stderr
    assert [e["action"] for e in stepped.rows("register_log")] == ["raised"] * 3 + ["cleared"] * 3


def test_within_the_tolerance_a_clock_behind_the_last_run_runs(stepped: InProcess) -> None:
    assert stepped.run("run", "event-scan").returncode == 0
    assert stepped.clock is not None
    stepped.clock.advance(-30)  # NTP slewing, or a second node a little behind
    done = stepped.run("run", "alert-clear")
    assert done.returncode == 0, done.stderr
    assert _alerts(stepped) == LIVE
    assert [json.loads(r["counts"])["cleared"] for r in stepped.rows("job_runs") if r["job"] == "alert-clear"] == [0]
