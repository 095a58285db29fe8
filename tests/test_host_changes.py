"""What an operator sees when hosts change: waiting messages, moved addresses, first statuses, removals.

- The summary line counts `waiting`: messages not yet due (a cooldown or a retry backoff).
- A host whose address changed starts its streaks over at the new address, keeping its status.
- The first confirmed status (`notify_initial: true`) is `host_first_status`, never "again".
- A host removed while offline gets one last `host_removed` message on every channel that sends
  recoveries, superseding one still waiting; Sigma gets nothing for it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import Clock, InProcess
from jobkit import TOKEN, log_lines, smtp_server, webhook_receiver
from sqlalchemy.engine import Engine

from netwatch.core.hoststate import HostState, Status, Thresholds, advance, moved

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ENV = {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN}
LO1 = {"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}
LO2 = {"name": "lo-2", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "002"}


@pytest.fixture
def run(tmp_path: Path, engine: Engine, db_url: str) -> InProcess:
    """In-process runs on a hand-stepped clock (the database server's clock follows it)."""
    return InProcess(tmp_path, db_url, dict(ENV), clock=Clock(T0))


@pytest.fixture
def hook() -> Iterator[Any]:
    with webhook_receiver() as server:
        yield server


def _hook_url(hook: Any) -> str:
    return f"http://127.0.0.1:{hook.server_port}/netwatch"


def _step(run: InProcess, seconds: float = 60) -> None:
    assert run.clock is not None
    run.clock.advance(seconds)


def _sweep_ok(run: InProcess, code: int = 0) -> str:
    done = run.sweep()
    assert done.returncode == code, done.stderr
    return done.stderr


def _summary(stderr: str) -> str:
    [line] = [line for line in log_lines(stderr) if line.startswith("info: ping-sweep finished")]
    return line


def _last_counts(run: InProcess) -> dict[str, int]:
    return json.loads(max(run.rows("job_runs"), key=lambda r: r["id"])["counts"])


def _kinds(hook: Any) -> list[str]:
    return [body["kind"] for _, body in hook.received]


# (a) waiting

def test_a_message_waiting_for_its_cooldown_is_counted_as_waiting(run: InProcess, hook: Any) -> None:
    run.write_config([LO1], notifications={"webhook": {"url": _hook_url(hook), "cooldown_seconds": 300}})
    _sweep_ok(run)  # first status: not notified
    _step(run)
    run.sweep_plan.set_down("lo-1")
    assert "waiting=0" in _summary(_sweep_ok(run))
    assert _kinds(hook) == ["host_offline"]

    _step(run)
    run.sweep_plan.set_up("lo-1")
    summary = _summary(_sweep_ok(run))

    assert "sent=0" in summary and "pending=0" in summary and "waiting=1" in summary, summary
    assert _last_counts(run)["waiting"] == 1
    assert _kinds(hook) == ["host_offline"], "inside the cooldown"

    _step(run, 300)
    summary = _summary(_sweep_ok(run))
    assert "sent=1" in summary and "waiting=0" in summary, summary
    assert _kinds(hook) == ["host_offline", "host_online"]


def test_a_retry_waiting_for_its_backoff_is_counted_as_waiting_too(run: InProcess, fake: FakeApis) -> None:
    run.write_config([LO1], thresholds={"notify_initial": True},
                     sigma={"base_url": fake.url, "retry_backoff_seconds": 60})
    fake.sigma_status, fake.sigma_retry_after = 503, "0"
    summary = _summary(_sweep_ok(run, 1))
    # This run's attempt ended pending (pending=1), and the event now waits for its backoff (waiting=1).
    assert "pending=1" in summary and "waiting=1" in summary, summary
    _step(run, 10)
    summary = _summary(_sweep_ok(run))
    assert "pending=0" in summary and "waiting=1" in summary, "an earlier run's retry, not due yet"


# (b) a host that moved

@pytest.mark.parametrize(("status", "failures", "successes", "held"), [
    (status, failures, successes, held)
    for status, (failures, successes), held in itertools.product(
        Status, [(0, 0), (0, 1), (2, 0), (7, 0), (0, 9)], [False, True])
])
def test_moved_keeps_the_status_and_its_time_and_starts_the_streaks_over(
    status: Status, failures: int, successes: int, held: bool
) -> None:
    for last in (None, T0):
        state = HostState(status=status, consecutive_failures=failures, consecutive_successes=successes,
                          last_transition_at=last, held=held)
        assert moved(state) == HostState(status=status, last_transition_at=last)


def test_after_a_move_a_change_needs_its_whole_streak_at_the_new_address() -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=0)
    old_streak = HostState(status=Status.ONLINE, consecutive_failures=2, last_transition_at=T0)
    state, transition = advance(moved(old_streak), False, T0 + timedelta(minutes=1), thresholds)
    assert (state.status, state.consecutive_failures, transition) == (Status.ONLINE, 1, None)


def test_a_host_moved_to_a_dead_address_does_not_go_offline_on_the_old_streak(run: InProcess) -> None:
    host = {**LO1, "name": "cam-1"}
    run.write_config([host], thresholds={"down_after": 3, "up_after": 1})
    _sweep_ok(run)
    run.sweep_plan.set_down("cam-1")
    for _ in range(2):  # two failures at the old address: one short of offline
        _step(run)
        _sweep_ok(run)
    [row] = run.rows("hosts")
    assert (row["status"], row["consecutive_failures"]) == ("online", 2)

    run.write_config([{**host, "address": "127.0.0.99"}], thresholds={"down_after": 3, "up_after": 1})
    _step(run)
    stderr = _sweep_ok(run)

    assert "info: host cam-1 moved from 127.0.0.1 to 127.0.0.99: its check streaks start over" in log_lines(stderr)
    [row] = run.rows("hosts")
    assert (row["status"], row["consecutive_failures"], row["address"]) == ("online", 1, "127.0.0.99")
    for expected in ("online", "offline"):  # the third failure at the new address confirms it
        _step(run)
        _sweep_ok(run)
        assert run.rows("hosts")[0]["status"] == expected


def test_a_held_change_does_not_carry_over_to_the_new_address(run: InProcess) -> None:
    host = {**LO1, "name": "cam-1"}
    thresholds = {"down_after": 2, "up_after": 1, "min_transition_seconds": 600}
    run.write_config([host], thresholds=thresholds)
    _sweep_ok(run)  # online at T0
    run.sweep_plan.set_down("cam-1")
    for _ in range(2):
        _step(run)
        _sweep_ok(run)
    [row] = run.rows("hosts")
    assert (row["status"], row["consecutive_failures"], row["held"]) == ("online", 2, True), "offline is held"

    run.write_config([{**host, "address": "127.0.0.99"}], thresholds=thresholds)
    _step(run, 600)  # the interval has passed: a carried-over held change would apply now
    _sweep_ok(run)

    [row] = run.rows("hosts")
    assert (row["status"], row["consecutive_failures"], row["held"]) == ("online", 1, False)
    _step(run)
    _sweep_ok(run)
    assert run.rows("hosts")[0]["status"] == "offline"


# (c) the first confirmed status

def test_the_first_confirmed_status_has_its_own_kind_and_wording(
    run: InProcess, fake: FakeApis, hook: Any
) -> None:
    run.write_config([LO1, LO2], thresholds={"notify_initial": True}, sigma={"base_url": fake.url},
                     notifications={"webhook": {"url": _hook_url(hook), "cooldown_seconds": 0,
                                                "send_recovery": False}})
    run.sweep_plan.set_down("lo-2")

    _sweep_ok(run)

    descriptions = {e["host"]["name"]: (e["type"], e["description"]) for e in fake.sigma_events()}
    assert descriptions == {
        "lo-1": ("HOST_ONLINE", "lo-1 first confirmed status: reachable (1 consecutive successful checks)"),
        "lo-2": ("HOST_OFFLINE", "lo-2 first confirmed status: unreachable (1 consecutive failed checks)"),
    }
    # Not a recovery: sent also where recoveries are not.
    messages = {body["subject"]: body for _, body in hook.received}
    assert {s: (m["kind"], m["title"], m["recovery"]) for s, m in messages.items()} == {
        "lo-1": ("host_first_status", "MONITORED: lo-1 (127.0.0.1) is online", False),
        "lo-2": ("host_first_status", "MONITORED: lo-2 (127.0.0.2) is offline", False),
    }
    assert messages["lo-1"]["body"].startswith("First confirmed status of host lo-1 (127.0.0.1): online")
    everything = json.dumps([fake.sigma_events(), [body for _, body in hook.received]])
    assert "again" not in everything


def test_a_first_status_online_injects_no_segware_alarm(run: InProcess, fake: FakeApis) -> None:
    """An alarm for a healthy new host would be a false alarm; a first status offline is a real one."""
    run.write_config([LO1, LO2], thresholds={"notify_initial": True}, segware={"base_url": fake.url},
                     notifications={"segware_alarm": {"enabled": True, "code": "E900", "recovery_code": "R900",
                                                      "send_recovery": True, "cooldown_seconds": 0}})
    run.sweep_plan.set_down("lo-2")

    _sweep_ok(run)

    assert [(a["zone"], a["code"]) for a in fake.alarms()] == [("002", "E900")]
    assert [(i.subject, i.kind) for i in run.outbox() if i.channel == "segware_alarm"] == [
        ("lo-2", "host_first_status")]


# (d) a host removed from the inventory while offline

def test_a_host_removed_while_offline_gets_a_final_message_where_recoveries_go(
    run: InProcess, fake: FakeApis, hook: Any
) -> None:
    with smtp_server() as (port, mails):
        notifications = {
            "webhook": {"url": _hook_url(hook), "cooldown_seconds": 300},  # sends recoveries (default)
            "email": {"host": "127.0.0.1", "port": port, "starttls": False, "from": "netwatch@example.invalid",
                      "to": "noc@example.invalid", "cooldown_seconds": 0, "send_recovery": False},
        }
        sections: dict[str, Any] = {"sigma": {"base_url": fake.url}, "notifications": notifications}
        run.write_config([LO1, LO2], **sections)
        _sweep_ok(run)  # both online (first status, not notified)
        for down in (True, False, True):  # offline, online inside the webhook's cooldown, offline again
            _step(run)
            (run.sweep_plan.set_down if down else run.sweep_plan.set_up)("lo-1")
            _sweep_ok(run)
        assert _kinds(hook) == ["host_offline"]
        waiting = [(i.kind, i.status) for i in run.outbox() if i.channel == "webhook"]
        assert waiting == [("host_offline", "sent"), ("host_online", "superseded"), ("host_offline", "pending")]
        sigma_before = len(fake.requests_to("POST", "/v1/events"))
        mails_before = len(mails)

        run.write_config([], **sections)  # lo-1 (offline) and lo-2 (online) leave the inventory
        _step(run)
        _sweep_ok(run)
        _step(run, 300)  # the webhook's cooldown ends
        _sweep_ok(run)

        removed = [body for _, body in hook.received if body["kind"] == "host_removed"]
        assert _kinds(hook) == ["host_offline", "host_removed"], "the waiting offline message was superseded"
        assert [(m["subject"], m["title"], m["recovery"]) for m in removed] == [
            ("lo-1", "REMOVED: lo-1 (127.0.0.1) from monitoring", True)]
        assert "removed from the inventory while offline" in removed[0]["body"]
        assert len(mails) == mails_before, "email does not send recoveries: no removal message"
        assert len(fake.requests_to("POST", "/v1/events")) == sigma_before, "Sigma has no type for a removal"
    webhook = [(i.subject, i.kind, i.status) for i in run.outbox() if i.channel == "webhook"]
    assert webhook[-2:] == [("lo-1", "host_offline", "superseded"), ("lo-1", "host_removed", "sent")]
    assert not [i for i in run.outbox() if i.subject == "lo-2"], "removed while online: nothing to close"
