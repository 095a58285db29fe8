"""event-scan and alert-clear end to end: the real CLI, a loopback Segware, real SMTP and webhook, both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApis
from freezegun import freeze_time
from inproc import Clock, InProcess
from jobkit import TOKEN, Netwatch, smtp_server, webhook_receiver
from sqlalchemy.engine import Engine

from netwatch.config import parse_config
from netwatch.db.engine import count_statements
from netwatch.db.triggers import CLEARED, load_triggers, save_triggers
from netwatch.deps import build_deps
from netwatch.jobs.event_scan import run_event_scan
from netwatch.logs import Redactor
from netwatch.running.stopflag import StopFlag

_ids = iter(range(1, 10**9))


def events(count: int, *, account: str = "1234", cuc: str = "CUC-77", code: str = "E130",
           end: datetime | None = None, spread: timedelta = timedelta(minutes=90)) -> list[dict[str, Any]]:
    """`count` contract-shaped events spread evenly over `spread` before `end` (default: now)."""
    end = end or datetime.now(UTC)
    step = spread / max(count, 1)
    return [
        {"id": f"ev-{next(_ids):09d}", "account": account, "cuc": cuc, "code": code, "partition": "01",
         "zone": "003", "receivedAt": (end - step * (i + 1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        for i in range(count)
    ]


def _config(nw: Netwatch, fake: FakeApis, smtp_port: int | None = None, hook_url: str | None = None,
            **event_scan: Any) -> None:
    notifications: dict[str, Any] = {"retry_backoff_seconds": 0}
    if smtp_port is not None:
        notifications["email"] = {"host": "127.0.0.1", "port": smtp_port, "starttls": False,
                                  "from": "netwatch@example.invalid",
                                  "to": ["noc@example.invalid", "oncall@example.invalid"], "cooldown_seconds": 0}
    if hook_url is not None:
        notifications["webhook"] = {"url": hook_url, "cooldown_seconds": 0}
    nw.write_config([], segware={"base_url": fake.url},
                    event_scan={"codes": {"E130": 50, "E131": None}, "default_threshold": 20, "page_size": 100,
                                **event_scan},
                    notifications=notifications)


def test_volume_rises_raises_one_alert_over_three_scans_then_clears_once(nwi: InProcess, fake: FakeApis) -> None:
    with smtp_server() as (port, mails), webhook_receiver() as hook:
        _config(nwi, fake, smtp_port=port, hook_url=f"http://127.0.0.1:{hook.server_port}/netwatch")
        fake.events = events(30) + events(5, code="E999")
        first = nwi.run("run", "event-scan")
        fake.events = events(60) + events(5, code="E999")
        second = nwi.run("run", "event-scan")
        fake.events = events(80)
        third = nwi.run("run", "event-scan")
        assert [first.returncode, second.returncode, third.returncode] == [0, 0, 0], third.stderr

        [trigger] = nwi.rows("triggers")
        assert (trigger["account"], trigger["cuc"], trigger["code"], trigger["status"]) == (
            "1234", "CUC-77", "E130", "active")
        assert (trigger["count"], trigger["peak"], trigger["threshold"], trigger["generation"]) == (80, 80, 50, 1)
        assert (trigger["account_name"], trigger["company"], trigger["client_group"]) == (
            "Loja Centro", "Acme Seguranca", "Varejo Sul")
        assert [(e["action"], e["count"], e["threshold"], e["window_minutes"]) for e in nwi.rows("register_log")] == [
            ("raised", 60, 50, 120)]
        assert len(mails) == 1
        assert "E130" in mails[0]["Subject"] and "Loja Centro" in mails[0].get_content()
        assert sorted(mails[0]["To"].addresses[i].addr_spec for i in range(2)) == [
            "noc@example.invalid", "oncall@example.invalid"]
        assert [body["kind"] for _, body in hook.received] == ["alert_raised"]
        assert len(fake.requests_to("GET", "/v1/accounts/1234")) == 1

        fake.events = events(20)
        cleared = nwi.run("run", "alert-clear")
        again = nwi.run("run", "alert-clear")
        assert (cleared.returncode, again.returncode) == (0, 0), cleared.stderr
        [trigger] = nwi.rows("triggers")
        assert (trigger["status"], trigger["clear_reason"], trigger["count"]) == ("cleared", "below_threshold", 20)
        log = nwi.rows("register_log")
        assert [(e["action"], e["reason"], e["count"]) for e in log] == [
            ("raised", None, 60), ("cleared", "below_threshold", 20)]
        assert log[1]["active_seconds"] >= 0
        assert len(mails) == 2
        assert [body["kind"] for _, body in hook.received] == ["alert_raised", "alert_cleared"]
        assert hook.received[1][1]["recovery"] is True
    assert [r["outcome"] for r in nwi.rows("job_runs")] == ["ok"] * 5


def test_api_down_mid_read_changes_nothing(nwi: InProcess, fake: FakeApis) -> None:
    _config(nwi, fake, page_size=50)
    fake.events = events(300)
    fake.events_fail_after_pages = 2
    down = nwi.run("run", "event-scan")
    assert down.returncode == 69, down.stderr
    assert "Traceback" not in down.stderr
    assert nwi.rows("triggers") == [] and nwi.rows("register_log") == [] and nwi.rows("scan_counts") == []
    assert [r["outcome"] for r in nwi.rows("job_runs")] == ["failed"]

    fake.events_fail_after_pages = None
    assert nwi.run("run", "event-scan").returncode == 0
    assert [t["status"] for t in nwi.rows("triggers")] == ["active"]
    fake.events = events(10)
    fake.events_fail_after_pages = 0
    assert nwi.run("run", "alert-clear").returncode == 69
    assert [t["status"] for t in nwi.rows("triggers")] == ["active"]
    assert [e["action"] for e in nwi.rows("register_log")] == ["raised"]


def test_too_many_results_are_split_and_counted_once(nwi: InProcess, fake: FakeApis) -> None:
    _config(nwi, fake, record_floor=1)
    fake.max_results = 120
    fake.events = events(700) + events(35, cuc="CUC-8", code="E131")
    done = nwi.run("run", "event-scan")
    assert done.returncode == 0, done.stderr
    counts = {(r["cuc"], r["code"]): r["count"] for r in nwi.rows("scan_counts")}
    assert counts == {("CUC-77", "E130"): 700, ("CUC-8", "E131"): 35}
    assert sorted(t["code"] for t in nwi.rows("triggers")) == ["E130", "E131"]
    assert "events=735" in done.stderr


def test_an_alert_without_events_expires(nwi: InProcess, fake: FakeApis) -> None:
    _config(nwi, fake, expire_minutes=10)
    fake.events = events(60, end=datetime.now(UTC) - timedelta(minutes=15), spread=timedelta(minutes=30))
    assert nwi.run("run", "event-scan").returncode == 0
    assert nwi.run("run", "alert-clear").returncode == 0
    [trigger] = nwi.rows("triggers")
    assert (trigger["status"], trigger["clear_reason"]) == ("cleared", "expired")
    assert nwi.run("run", "event-scan").returncode == 0, "the same old events do not raise it again"
    assert [(t["status"], t["generation"]) for t in nwi.rows("triggers")] == [("cleared", 1)]
    # Only events after the clear count toward raising it again: one, then 49, are not enough.
    for fresh in (1, 48):
        fake.events = [*fake.events, *events(fresh, spread=timedelta(milliseconds=fresh))]
        assert nwi.run("run", "event-scan").returncode == 0
        assert [(t["status"], t["generation"]) for t in nwi.rows("triggers")] == [("cleared", 1)], fresh
    fake.events = [*fake.events, *events(1, spread=timedelta(milliseconds=1))]
    assert nwi.run("run", "event-scan").returncode == 0
    assert [(t["status"], t["generation"], t["count"]) for t in nwi.rows("triggers")] == [("active", 2, 110)], (
        "the 50th new event raises it, with the whole window's count")
    assert [(e["action"], e["count"]) for e in nwi.rows("register_log")] == [
        ("raised", 60), ("cleared", 60), ("raised", 110)]


def test_alert_raised_while_accounts_are_down_is_enriched_once_they_answer(nwi: InProcess, fake: FakeApis) -> None:
    with webhook_receiver() as hook:
        _config(nwi, fake, hook_url=f"http://127.0.0.1:{hook.server_port}/netwatch")
        fake.events = events(55)
        fake.accounts_status = 503
        down = nwi.run("run", "event-scan")
        assert down.returncode == 0, down.stderr
        [trigger] = nwi.rows("triggers")
        assert (trigger["status"], trigger["account_name"]) == ("active", None)
        assert [body["kind"] for _, body in hook.received] == ["alert_raised"], "the alert is not held back"
        fake.accounts_status = None
        assert nwi.run("run", "event-scan").returncode == 0
        [trigger] = nwi.rows("triggers")
        assert (trigger["account_name"], trigger["company"], trigger["client_group"]) == (
            "Loja Centro", "Acme Seguranca", "Varejo Sul")
        asked = len(fake.requests_to("GET", "/v1/accounts/1234"))
        assert nwi.run("run", "event-scan").returncode == 0
        assert len(fake.requests_to("GET", "/v1/accounts/1234")) == asked, "an enriched alert is not looked up again"
        assert [body["kind"] for _, body in hook.received] == ["alert_raised"]


def test_cleared_groups_that_cannot_raise_again_are_not_enriched(nwi: InProcess, fake: FakeApis) -> None:
    nwi.clock = Clock(datetime.now(UTC))
    _config(nwi, fake, expire_minutes=1)
    fake.events = events(55, end=datetime.now(UTC) - timedelta(minutes=5), spread=timedelta(minutes=10))
    assert nwi.run("run", "event-scan").returncode == 0
    assert nwi.run("run", "alert-clear").returncode == 0
    assert [(t["status"], t["clear_reason"]) for t in nwi.rows("triggers")] == [("cleared", "expired")]
    nwi.write_config([], segware={"base_url": fake.url, "cache_ttl_seconds": 1},
                    event_scan={"codes": {"E130": 50}, "page_size": 100, "expire_minutes": 1})
    nwi.clock.advance(2)  # past the cache TTL of 1 s
    asked = len(fake.requests_to("GET", "/v1/accounts/1234"))
    assert nwi.run("run", "event-scan").returncode == 0
    assert len(fake.requests_to("GET", "/v1/accounts/1234")) == asked


def test_alert_reports(nwi: InProcess, fake: FakeApis) -> None:
    _config(nwi, fake)
    fake.events = events(55) + events(25, cuc="CUC-9", code="E131")
    assert nwi.run("run", "event-scan").returncode == 0
    listed = json.loads(nwi.run("alerts", "--json").stdout)
    assert [(a["cuc"], a["code"], a["count"], a["threshold"], a["account_name"]) for a in listed] == [
        ("CUC-77", "E130", 55, 50, "Loja Centro"), ("CUC-9", "E131", 25, 20, "Loja Centro")]
    assert all(a["first_seen"] and a["last_seen"] for a in listed)
    fake.events = events(55)
    assert nwi.run("run", "alert-clear").returncode == 0
    active = json.loads(nwi.run("alerts", "--active", "--since", "24h", "--json").stdout)
    assert [(a["cuc"], a["status"]) for a in active] == [("CUC-77", "active")]
    csv_lines = nwi.run("alerts", "--csv").stdout.splitlines()
    assert csv_lines[0].startswith("account,cuc,code,status,count")
    assert len(csv_lines) == 3
    log = json.loads(nwi.run("alerts", "log", "--json").stdout)
    assert [(e["action"], e["cuc"]) for e in log] == [("raised", "CUC-77"), ("raised", "CUC-9"), ("cleared", "CUC-9")]
    table = nwi.run("alerts").stdout
    assert "Loja Centro" in table and "CUC-77" in table
    assert nwi.run("alerts", "--since", "yesterday").returncode == 64


def test_alerts_group_options_reach_the_log_subcommand(nw: Netwatch, fake: FakeApis) -> None:
    _config(nw, fake)
    fake.events = events(55)
    assert nw.run("run", "event-scan").returncode == 0
    config = str(nw.tmp_path / "netwatch.yaml")
    result = subprocess.run([sys.executable, "-m", "netwatch", "alerts", "--config", config, "--json", "--since", "1h",
                             "log"], capture_output=True, text=True, timeout=60, env={**os.environ, **nw.env},
                            cwd=nw.tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert [(e["action"], e["count"]) for e in json.loads(result.stdout)] == [("raised", 55)]
    inner = nw.run("alerts", "--json", "log", "--json").stdout
    assert json.loads(inner)[0]["action"] == "raised", "the same format on both is one choice"
    assert nw.run("alerts", "--csv", "log", "--json").returncode == 64, "two formats are refused"
    refused = nw.run("alerts", "--active", "log")
    assert refused.returncode == 64 and "--active" in refused.stderr


def test_event_scan_without_codes_or_segware_is_a_config_error(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([], segware={"base_url": fake.url})
    no_codes = nwi.run("run", "event-scan")
    assert no_codes.returncode == 78 and "event_scan.codes" in no_codes.stderr
    nwi.write_config([], event_scan={"codes": {"E130": 5}})
    no_api = nwi.run("run", "event-scan")
    assert no_api.returncode == 78 and "segware.base_url" in no_api.stderr


@pytest.mark.parametrize(
    ("offset", "counted"),
    [(timedelta(0), True), (timedelta(microseconds=-1), False), (timedelta(minutes=120), False),
     (timedelta(minutes=120, microseconds=-1), True)],
    ids=["at-window-start", "just-before-start", "at-now", "just-before-now"],
)
def test_window_is_half_open(
    engine: Engine, db_url: str, tmp_path: Path, fake: FakeApis, offset: timedelta, counted: bool
) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    start = now - timedelta(minutes=120)
    fake.events = [{"id": "edge", "account": "1234", "cuc": "C", "code": "E130", "partition": "01", "zone": "1",
                    "receivedAt": (start + offset).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}]
    config = parse_config({"database": {"url": db_url}, "segware": {"base_url": fake.url},
                           "event_scan": {"codes": {"E130": 1}, "record_floor": 1}}, "test", tmp_path, {})
    with freeze_time(now):
        # Built under the frozen clock: freezegun also freezes time.monotonic, which the deadline uses.
        deps = replace(build_deps(config, {"NETWATCH_SEGWARE_TOKEN": TOKEN}, StopFlag(), Redactor()),
                       server_clock=lambda _conn: now)  # MariaDB's clock is not frozen: one clock for the run
        assert run_event_scan(config, deps) == 0
    assert bool(Netwatch(tmp_path, db_url, {}).rows("triggers")) is counted
    [query] = [r.query for r in fake.requests_to("GET", "/v1/events")]
    assert "from=2026-11-22T08%3A00%3A00Z" in query and "to=2026-11-22T10%3A00%3A00Z" in query
    deps.engine.dispose()


def test_statements_per_scan_do_not_grow_with_events(
    engine: Engine, db_url: str, tmp_path: Path, fake: FakeApis
) -> None:
    config = parse_config({"database": {"url": db_url}, "segware": {"base_url": fake.url},
                           "event_scan": {"codes": {"E130": 5}, "page_size": 500}}, "test", tmp_path, {})
    counts = []
    for size in (20, 200, 4000):  # the first run also creates the lease rows: a warm-up
        fake.events = [e for i in range(20) for e in events(size // 20, account=f"a{i}-{size}")]
        deps = build_deps(config, {"NETWATCH_SEGWARE_TOKEN": TOKEN}, StopFlag(), Redactor())
        with count_statements(deps.engine) as counter:
            assert run_event_scan(config, deps) == 0
        counts.append(counter.value)
        deps.engine.dispose()
    assert counts[1] == counts[2], counts


def test_raised_alert_is_injected_as_a_segware_alarm(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([], segware={"base_url": fake.url}, event_scan={"codes": {"E130": 10}},
                    notifications={"segware_alarm": {"enabled": True, "code": "E900", "recovery_code": "R900",
                                                     "send_recovery": True, "cooldown_seconds": 0},
                                   "retry_backoff_seconds": 0})
    latest = {**events(1, spread=timedelta(seconds=1))[0], "partition": "02", "zone": "017"}
    fake.events = [*events(11), latest]
    assert nwi.run("run", "event-scan").returncode == 0
    assert nwi.run("run", "event-scan").returncode == 0
    [alarm] = fake.alarms()
    assert (alarm["account"], alarm["code"], alarm["partition"], alarm["zone"]) == ("1234", "E900", "02", "017"), (
        "the partition and zone of the group's latest event")
    assert "E130" in alarm["description"]
    [post] = fake.requests_to("POST", "/v1/alarms")
    assert post.headers["idempotency-key"].startswith("segware_alarm-alert-")
    fake.events = []
    assert nwi.run("run", "alert-clear").returncode == 0
    assert [(a["code"], a["partition"], a["zone"]) for a in fake.alarms()] == [("E900", "02", "017"),
                                                                             ("R900", "02", "017")]


def test_event_scan_commits_nothing_when_the_triggers_changed_during_its_read(
    nwi: InProcess, fake: FakeApis, engine: Engine
) -> None:
    _config(nwi, fake)
    fake.events = events(60)
    assert nwi.run("run", "event-scan").returncode == 0
    fake.events = events(60) + events(60, account="5678", cuc="CUC-5")
    lookup = fake.hold("GET", "/v1/accounts/5678")
    try:
        scan = nwi.run_in_background("run", "event-scan")
        assert lookup.arrived.wait(30), "the scan reached its account look-up"
        # Between the scan's two loads, as only a run that took its lease could: CUC-77 is cleared.
        with engine.begin() as conn:
            [row] = load_triggers(conn).values()
            save_triggers(conn, [replace(row, status=CLEARED, cleared_at=datetime.now(UTC), clear_reason="expired")])
    finally:
        lookup.release()
    done = scan.result(timeout=60)
    assert done.returncode == 75, done.stderr
    assert "triggers changed while the window was read" in done.stderr and "Traceback" not in done.stderr
    assert [(t["cuc"], t["status"]) for t in nwi.rows("triggers")] == [("CUC-77", "cleared")]
    assert [(e["action"], e["cuc"]) for e in nwi.rows("register_log")] == [("raised", "CUC-77")]

    assert nwi.run("run", "event-scan").returncode == 0
    assert sorted((t["cuc"], t["status"]) for t in nwi.rows("triggers")) == [
        ("CUC-5", "active"), ("CUC-77", "cleared")], "CUC-77's events all predate its clear"
