"""event-scan and alert-clear as cron runs them: overlapping runs, statement budgets, mid-read outages,
the shared account cache, hysteresis and expiry; the real CLI, a loopback Segware, both databases."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import ACCOUNT, TOKEN, Netwatch, webhook_receiver
from sqlalchemy.engine import Engine
from test_event_scan_job import events

from netwatch.config import Config, parse_config
from netwatch.db.engine import count_statements
from netwatch.deps import build_deps
from netwatch.jobs.alert_clear import run_alert_clear
from netwatch.jobs.event_scan import run_event_scan
from netwatch.logs import Redactor
from netwatch.running.stopflag import StopFlag

# Long enough that the first run still holds the lease when the second, started together, asks.


def _write(nw: Netwatch, fake: FakeApis, *, hook_url: str | None = None, segware: Mapping[str, Any] | None = None,
           **event_scan: Any) -> None:
    notifications: dict[str, Any] = {"retry_backoff_seconds": 0}
    if hook_url is not None:
        notifications["webhook"] = {"url": hook_url, "cooldown_seconds": 0}
    nw.write_config([], segware={"base_url": fake.url, **(segware or {})},
                    event_scan={"codes": {"E130": 50}, "page_size": 100, **event_scan}, notifications=notifications)


def _hook_url(hook: Any) -> str:
    return f"http://127.0.0.1:{hook.server_port}/netwatch"


def _while_held(nw: Netwatch, fake: FakeApis, first: str, second: str) -> tuple[CompletedProcess[str], Any]:
    """Runs `second` (in this process) while a `first` process is held in its window read (inside its lease)."""
    read = fake.hold("GET", "/v1/events")
    running = nw.start("run", first)
    try:
        assert read.arrived.wait(30), f"{first} never started reading its window"
        later = InProcess(nw.tmp_path, nw.db_url, nw.env).run("run", second)
    finally:
        read.release()
    out, err = running.communicate(timeout=60)
    return CompletedProcess(running.args, running.returncode, out, err), later


def _pages_served(fake: FakeApis) -> int:
    """Events pages the fake answered with 200 (what `events_fail_after_pages` counts)."""
    return sum(1 for r in fake.requests_to("GET", "/v1/events") if r.status == 200)


def _account_gets(fake: FakeApis, account: str = "1234") -> int:
    return len(fake.requests_to("GET", f"/v1/accounts/{account}"))


def _statuses(nw: Netwatch) -> dict[str, tuple[str, str | None]]:
    return {t["cuc"]: (t["status"], t["clear_reason"]) for t in nw.rows("triggers")}


def test_two_event_scans_at_once_one_raises_the_other_exits_75(nw: Netwatch, fake: FakeApis) -> None:
    with webhook_receiver() as hook:
        _write(nw, fake, hook_url=_hook_url(hook))
        fake.events = events(60)
        first, second = _while_held(nw, fake, "event-scan", "event-scan")
        assert (first.returncode, second.returncode) == (0, 75), (first.stderr, second.stderr)
        assert "alert-volume" in second.stderr and "Traceback" not in second.stderr
        assert [(t["cuc"], t["status"], t["generation"]) for t in nw.rows("triggers")] == [("CUC-77", "active", 1)]
        assert [e["action"] for e in nw.rows("register_log")] == ["raised"]
        assert [(i.kind, i.status) for i in nw.outbox()] == [("alert_raised", "sent")]
        assert [body["kind"] for _, body in hook.received] == ["alert_raised"]
    assert sorted(r["outcome"] for r in nw.rows("job_runs")) == ["lease_held", "ok"]


@pytest.mark.parametrize("first", ["event-scan", "alert-clear"])
def test_event_scan_and_alert_clear_at_once_share_one_lease(nw: Netwatch, fake: FakeApis, first: str) -> None:
    second = "alert-clear" if first == "event-scan" else "event-scan"
    with webhook_receiver() as hook:
        _write(nw, fake, hook_url=_hook_url(hook))
        fake.events = events(60)
        assert InProcess(nw.tmp_path, nw.db_url, nw.env).run("run", "event-scan").returncode == 0
        # Either job alone changes something: event-scan would raise CUC-88, alert-clear would clear CUC-77.
        fake.events = events(10) + events(60, cuc="CUC-88")
        held, later = _while_held(nw, fake, first, second)
        assert (held.returncode, later.returncode) == (0, 75), (held.stderr, later.stderr)
        assert "alert-volume" in later.stderr
        kinds = [body["kind"] for _, body in hook.received]
        log = [(e["action"], e["cuc"]) for e in nw.rows("register_log")]
        if first == "event-scan":
            assert _statuses(nw) == {"CUC-77": ("active", None), "CUC-88": ("active", None)}
            assert log == [("raised", "CUC-77"), ("raised", "CUC-88")]
            assert kinds == ["alert_raised", "alert_raised"]
        else:
            assert _statuses(nw) == {"CUC-77": ("cleared", "below_threshold")}
            assert log == [("raised", "CUC-77"), ("cleared", "CUC-77")]
            assert kinds == ["alert_raised", "alert_cleared"]
    skipped = [(r["job"], r["exit_code"]) for r in nw.rows("job_runs") if r["outcome"] == "lease_held"]
    assert skipped == [(second, 75)]


def _segware_account(account: str) -> dict[str, Any]:
    return {**ACCOUNT, "account": account, "name": f"Loja {account}"}


def _counted(run: Callable[[Config, Any], int], config: Config) -> int:
    """Statements one in-process run sends; a fresh Deps each time, as each cron run has.

    Delivery outcomes are stored once, at the end: a background store during a longer delivery
    (every second) would make the count depend on the machine's speed, not on the groups.
    """
    deps = replace(build_deps(config, {"NETWATCH_SEGWARE_TOKEN": TOKEN}, StopFlag(), Redactor()),
                   store_every_s=3600)
    try:
        with count_statements(deps.engine) as counter:
            assert run(config, deps) == 0
        return counter.value
    finally:
        deps.engine.dispose()


def test_statements_per_run_do_not_grow_with_groups(
    engine: Engine, db_url: str, tmp_path: Path, fake: FakeApis
) -> None:
    with webhook_receiver() as hook:
        config = parse_config(
            {"database": {"url": db_url}, "segware": {"base_url": fake.url},
             "event_scan": {"codes": {"E130": 5}, "page_size": 500},
             "notifications": {"retry_backoff_seconds": 0,
                               "webhook": {"url": _hook_url(hook), "cooldown_seconds": 0}}},
            "test", tmp_path, {})
        counts: dict[str, list[int]] = {"raise": [], "update": [], "clear": []}
        for round_, groups in enumerate((20, 20, 400)):  # the first round creates the lease rows: a warm-up
            accounts = [f"r{round_}-a{i}" for i in range(groups)]
            with fake.lock:
                fake.accounts.update({a: _segware_account(a) for a in accounts})
            fake.events = [e for a in accounts for e in events(6, account=a)]
            counts["raise"].append(_counted(run_event_scan, config))
            counts["update"].append(_counted(run_event_scan, config))
            fake.events = []
            counts["clear"].append(_counted(run_alert_clear, config))
            rows = [t for t in Netwatch(tmp_path, db_url, {}).rows("triggers") if t["account"] in set(accounts)]
            assert [(t["status"], t["clear_reason"], t["account_name"]) for t in rows] == [
                ("cleared", "below_threshold", f"Loja {t['account']}") for t in rows]
            assert len(rows) == groups
        assert len(hook.received) == 2 * (20 + 20 + 400)
    assert {kind: values[1] == values[2] for kind, values in counts.items()} == {
        "raise": True, "update": True, "clear": True}, counts


def test_alert_clear_with_the_api_down_mid_read_changes_nothing(nwi: InProcess, fake: FakeApis) -> None:
    with webhook_receiver() as hook:
        # 300 events, 50 a page: the two pages read before the outage hold 100, below the threshold of 200.
        _write(nwi, fake, hook_url=_hook_url(hook), page_size=50, codes={"E130": 200})
        fake.events = events(300)
        assert nwi.run("run", "event-scan").returncode == 0
        trigger_before, outbox_before = nwi.rows("triggers"), nwi.rows("outbox")
        assert [(t["status"], t["count"]) for t in trigger_before] == [("active", 300)]
        pages_before = _pages_served(fake)
        fake.events_fail_after_pages = pages_before + 2
        down = nwi.run("run", "alert-clear")
        assert down.returncode == 69, down.stderr
        assert "Traceback" not in down.stderr
        assert _pages_served(fake) - pages_before == 2, "the outage came in the middle of the read"
        assert nwi.rows("triggers") == trigger_before
        assert [e["action"] for e in nwi.rows("register_log")] == ["raised"]
        assert nwi.rows("outbox") == outbox_before
        assert [body["kind"] for _, body in hook.received] == ["alert_raised"]
    assert [r["outcome"] for r in nwi.rows("job_runs")] == ["ok", "failed"]


def test_event_scan_with_the_api_down_mid_read_changes_nothing(nwi: InProcess, fake: FakeApis) -> None:
    with webhook_receiver() as hook:
        _write(nwi, fake, hook_url=_hook_url(hook), page_size=50)
        fake.events = events(300)
        fake.events_fail_after_pages = 2
        down = nwi.run("run", "event-scan")
        assert down.returncode == 69, down.stderr
        assert _pages_served(fake) == 2, "the outage came in the middle of the read"
        assert nwi.rows("triggers") == [] and nwi.rows("register_log") == [] and nwi.rows("outbox") == []
        assert hook.received == []


def test_account_cache_is_used_within_its_ttl_and_refreshed_after(nwi: InProcess, fake: FakeApis) -> None:
    _write(nwi, fake)
    fake.events = events(60)
    assert nwi.run("run", "event-scan").returncode == 0
    assert _account_gets(fake) == 1

    fake.events = events(60) + events(60, cuc="CUC-88")
    assert nwi.run("run", "event-scan").returncode == 0
    assert _account_gets(fake) == 1, "a second CUC of the account is enriched from the cache"

    _write(nwi, fake, segware={"cache_ttl_seconds": 0})
    fake.events = events(60) + events(60, cuc="CUC-88") + events(60, cuc="CUC-99")
    assert nwi.run("run", "event-scan").returncode == 0
    assert _account_gets(fake) == 2, "with a TTL of 0 the cached entry is stale at once"
    names = {t["cuc"]: (t["status"], t["account_name"], t["company"]) for t in nwi.rows("triggers")}
    assert names == {cuc: ("active", "Loja Centro", "Acme Seguranca") for cuc in ("CUC-77", "CUC-88", "CUC-99")}


@pytest.mark.skipif(os.geteuid() != 0, reason="ping-sweep needs raw ICMP sockets, which need root")
def test_ping_sweep_enriches_from_the_cache_event_scan_wrote(nwi: InProcess, fake: FakeApis) -> None:
    with fake.lock:
        fake.accounts["1234"] = {**ACCOUNT, "zones": [{"code": "003", "name": "Porta dos fundos", "partition": "01"}]}
    # No partition or zone on the host: the Sigma event needs the account's, from the cache.
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234"}],
                    thresholds={"notify_initial": True}, segware={"base_url": fake.url},
                    sigma={"base_url": fake.url, "retry_backoff_seconds": 0}, event_scan={"codes": {"E130": 50}})
    fake.events = events(60)
    assert nwi.run("run", "event-scan").returncode == 0
    assert _account_gets(fake) == 1
    swept = nwi.sweep()
    assert swept.returncode == 0, swept.stderr
    [event] = fake.sigma_events()
    assert (event["type"], event["account"], event["partition"], event["zone"]) == ("HOST_ONLINE", "1234", "01", "003")
    assert _account_gets(fake) == 1, "ping-sweep was served from the cache event-scan wrote"


def test_hysteresis_keeps_the_alert_until_below_the_clear_level(nwi: InProcess, fake: FakeApis) -> None:
    _write(nwi, fake, clear_below_percent=50)  # threshold 50: clears below 25
    fake.events = events(60)
    assert nwi.run("run", "event-scan").returncode == 0
    fake.events = events(30)
    assert nwi.run("run", "alert-clear").returncode == 0
    assert _statuses(nwi) == {"CUC-77": ("active", None)}, "30 is below the threshold but not below 25"
    fake.events = events(20)
    assert nwi.run("run", "alert-clear").returncode == 0
    [trigger] = nwi.rows("triggers")
    assert (trigger["status"], trigger["clear_reason"], trigger["count"]) == ("cleared", "below_threshold", 20)
    assert [(e["action"], e["reason"], e["count"]) for e in nwi.rows("register_log")] == [
        ("raised", None, 60), ("cleared", "below_threshold", 20)]


def test_an_alert_whose_last_event_is_older_than_expire_minutes_clears_as_expired(
    nwi: InProcess, fake: FakeApis
) -> None:
    _write(nwi, fake, window_minutes=120, expire_minutes=30)
    now = datetime.now(UTC)
    hour = timedelta(minutes=60)
    # 60 events a minute apart each, all inside the window: the last 40 and 20 minutes ago.
    fake.events = (events(60, cuc="CUC-OLD", end=now - timedelta(minutes=39), spread=hour)
                   + events(60, cuc="CUC-NEW", end=now - timedelta(minutes=19), spread=hour))
    assert nwi.run("run", "event-scan").returncode == 0
    assert _statuses(nwi) == {"CUC-OLD": ("active", None), "CUC-NEW": ("active", None)}
    assert nwi.run("run", "alert-clear").returncode == 0
    assert _statuses(nwi) == {"CUC-OLD": ("cleared", "expired"), "CUC-NEW": ("active", None)}
    [cleared] = [e for e in nwi.rows("register_log") if e["action"] == "cleared"]
    assert (cleared["cuc"], cleared["reason"], cleared["count"]) == ("CUC-OLD", "expired", 60)
