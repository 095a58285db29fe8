"""Delivery paths around Sigma: enrichment refusals and outages, superseded outcomes, the delivery lease.

End to end through the real CLI (tests/jobkit.py) against loopback FakeApis and loopback hosts, plus
repository- and function-level cases on the same two databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dbread
import pytest
import responses
from fakeapi import FakeApis, FakeTime, api_client
from inproc import InProcess
from jobkit import ACCOUNT, TOKEN, log_lines, webhook_receiver
from sqlalchemy.engine import Engine

from netwatch.clients.http import ApiAuthError
from netwatch.clients.segware import SegwareClient
from netwatch.config import NotificationsConfig, parse_config
from netwatch.db import outbox
from netwatch.db.accounts import load_cached_accounts
from netwatch.db.leases import release_lease
from netwatch.delivery.loop import DELIVERY_LEASE, DeliveryReport
from netwatch.delivery.notices import deliver_notices, make_notice, queue_notices
from netwatch.enrichment.accounts import look_up_accounts
from netwatch.errors import Stopped
from netwatch.notify.message import Message
from netwatch.outcome import Delivery
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag

WRONG = "wrong-segware-token-0815"
CLOSED = "http://127.0.0.1:1"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SEGWARE = "https://segware.example.invalid"


def _apis(fake: FakeApis, segware_url: str | None = None, **sigma: object) -> dict[str, dict[str, object]]:
    return {"sigma": {"base_url": fake.url, "retry_backoff_seconds": 0, **sigma},
            "segware": {"base_url": segware_url or fake.url}}


def _errors(stderr: str) -> list[str]:
    return [line for line in log_lines(stderr) if line.startswith("error:")]


def _sigma_keys(fake: FakeApis) -> list[str]:
    return [r.headers["idempotency-key"] for r in fake.requests_to("POST", "/v1/events")]


# 1. A refused Segware token holds back only the events that need Segware.

def test_refused_segware_token_holds_back_only_events_that_need_enrichment(nwi: InProcess, fake: FakeApis) -> None:
    nwi.env["NETWATCH_SEGWARE_TOKEN"] = WRONG
    hosts = [{"name": "located", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"},
             {"name": "needs-segware", "address": "127.0.0.2", "account": "1234"}]
    nwi.write_config(hosts, thresholds={"notify_initial": True}, **_apis(fake))
    refused = nwi.sweep()
    assert refused.returncode == 78, refused.stderr
    [line] = _errors(refused.stderr)
    assert "segware API rejected the token (HTTP 401)" in line and "NETWATCH_SEGWARE_TOKEN" in line
    assert WRONG not in refused.stderr + refused.stdout
    assert TOKEN not in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    assert [e["host"]["name"] for e in fake.sigma_events()] == ["located"]
    by_host = {i.subject: i for i in nwi.outbox()}
    assert (by_host["located"].status, by_host["located"].attempts) == ("sent", 1)
    held = by_host["needs-segware"]
    assert (held.status, held.attempts) == ("pending", 0)
    assert (held.last_error or "").startswith("enrichment: segware API rejected the token")
    assert [(r["outcome"], r["exit_code"]) for r in nwi.rows("job_runs")] == [("failed", 78)]

    nwi.env["NETWATCH_SEGWARE_TOKEN"] = TOKEN
    fixed = nwi.sweep()
    assert fixed.returncode == 0, fixed.stderr
    events = fake.sigma_events()
    assert [(e["host"]["name"], e["partition"], e["zone"]) for e in events] == [
        ("located", "01", "001"), ("needs-segware", "01", "003")]
    assert len(_sigma_keys(fake)) == len(set(_sigma_keys(fake))) == 2
    assert [(i.status, i.attempts) for i in nwi.outbox()] == [("sent", 1), ("sent", 1)]


def _segware(token: str = TOKEN) -> SegwareClient:
    return SegwareClient(api_client(SEGWARE, name="segware", token=token, fake_time=FakeTime()))


def test_accounts_read_before_a_refused_token_are_cached(engine: Engine) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{SEGWARE}/v1/accounts/1111", json={**ACCOUNT, "account": "1111"})
        rsps.get(f"{SEGWARE}/v1/accounts/2222", status=401, json={"error": "unauthorized"})
        lookup = look_up_accounts(engine, _segware(), ["3333", "2222", "1111"], T0, 3600, StopFlag())
        assert [call.request.url for call in rsps.calls] == [f"{SEGWARE}/v1/accounts/1111",
                                                            f"{SEGWARE}/v1/accounts/2222"]
    assert isinstance(lookup.refused, ApiAuthError)
    assert lookup.unavailable == {"2222", "3333"}
    assert lookup.error is not None and TOKEN not in lookup.error
    assert lookup.found["1111"] is not None and lookup.found["1111"]["account"] == "1111"
    with engine.begin() as conn:
        assert set(load_cached_accounts(conn, ["1111", "2222", "3333"], T0, 3600)) == {"1111"}

    with responses.RequestsMock() as rsps:
        rsps.get(f"{SEGWARE}/v1/accounts/2222", status=403, json={"error": "forbidden"})
        again = look_up_accounts(engine, _segware(), ["1111", "2222"], T0 + timedelta(seconds=1), 3600, StopFlag())
        assert len(rsps.calls) == 1, "1111 came from the cache"
    assert again.refused is not None and "HTTP 403" in again.refused.message


class _StopOnSecondCheck(StopFlag):
    """SIGTERM arriving while the second account is about to be asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.checks == 2:
            self.set()
        super().check()


def test_accounts_read_before_a_stop_are_cached(engine: Engine) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{SEGWARE}/v1/accounts/1111", json={**ACCOUNT, "account": "1111"})
        with pytest.raises(Stopped):
            look_up_accounts(engine, _segware(), ["2222", "1111"], T0, 3600, _StopOnSecondCheck())
        assert len(rsps.calls) == 1
    with engine.begin() as conn:
        assert set(load_cached_accounts(conn, ["1111", "2222"], T0, 3600)) == {"1111"}


# 2. An enrichment outage spends no Sigma attempt and never makes an event dead.

def test_enrichment_outage_spends_no_sigma_attempt_and_exits_69(nwi: InProcess, fake: FakeApis) -> None:
    hosts = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234"}]
    outages = [("503", None), ("connection refused", CLOSED), ("503", None)]  # more runs than max_attempts
    for what, segware_url in outages:
        nwi.write_config(hosts, thresholds={"notify_initial": True}, **_apis(fake, segware_url, max_attempts=2))
        fake.accounts_status = 503 if segware_url is None else None
        done = nwi.sweep()
        assert done.returncode == 69, (what, done.stderr)
        [line] = _errors(done.stderr)
        assert "1 Sigma event(s) held back until their account details can be read" in line, line
        assert TOKEN not in done.stderr + done.stdout
        [item] = nwi.outbox()
        assert (item.status, item.attempts, item.delivered_at) == ("pending", 0, None), what
        assert (item.last_error or "").startswith("enrichment: segware API GET /v1/accounts/1234")
    assert fake.requests_to("POST", "/v1/events") == []

    fake.accounts_status = None
    nwi.write_config(hosts, thresholds={"notify_initial": True}, **_apis(fake, max_attempts=2))
    back = nwi.sweep()
    assert back.returncode == 0, back.stderr
    assert nwi.sweep().returncode == 0
    [event] = fake.sigma_events()
    assert (event["host"]["name"], event["partition"], event["zone"]) == ("lo-1", "01", "003")
    assert len(fake.requests_to("POST", "/v1/events")) == 1
    assert [(i.status, i.attempts, i.last_error) for i in nwi.outbox()] == [("sent", 1, None)]


# 3. A request Segware rejects for good: unknown this run, not cached, asked again next run.

def test_rejected_account_request_is_unknown_for_the_run_and_asked_again(nwi: InProcess, fake: FakeApis) -> None:
    first = [{"name": f"lo-{n}", "address": f"127.0.0.{n}", "account": "1234"} for n in (1, 2)]
    nwi.write_config(first, thresholds={"notify_initial": True}, **_apis(fake))
    fake.accounts_status = 400
    done = nwi.sweep()
    assert done.returncode == 0, done.stderr
    assert "account 1234 not enriched" in done.stderr and "HTTP 400" in done.stderr
    assert [(e["account"], e["partition"], e["zone"]) for e in fake.sigma_events()] == [
        ("1234", "unknown", "unknown")] * 2
    assert len(fake.requests_to("GET", "/v1/accounts/1234")) == 1, "asked once per run, not per event"
    assert nwi.rows("account_cache") == []

    fake.accounts_status = None
    nwi.write_config([*first, {"name": "lo-3", "address": "127.0.0.3", "account": "1234"}],
                    thresholds={"notify_initial": True}, **_apis(fake))
    again = nwi.sweep()
    assert again.returncode == 0, again.stderr
    assert len(fake.requests_to("GET", "/v1/accounts/1234")) == 2
    assert [(e["host"]["name"], e["partition"], e["zone"]) for e in fake.sigma_events()][2:] == [("lo-3", "01", "003")]
    assert [(r["account"], r["found"]) for r in nwi.rows("account_cache")] == [("1234", True)]


# 4. Outcomes of items superseded while they were being sent.

def _queued(subject: str) -> outbox.OutboxItem:
    return outbox.OutboxItem(
        id=None, channel="webhook", idempotency_key=f"webhook-{subject}", kind="host_offline", subject=subject,
        payload={"subject": subject}, status=outbox.PENDING, attempts=0, http_status=None, last_error=None,
        next_attempt_at=T0, created_at=T0, updated_at=T0, delivered_at=None, run_id=1,
    )


def test_record_outcomes_keeps_superseded_unless_sent(engine: Engine) -> None:
    subjects = ["pending", "failed", "dead", "sent", "untouched"]
    with engine.begin() as conn:
        outbox.enqueue(conn, [_queued(s) for s in subjects])
        loaded = {i.subject: i for i in outbox.due_items(conn, "webhook", T0, 10)}
    later = T0 + timedelta(seconds=5)
    with engine.begin() as conn:
        outbox.supersede_pending(conn, "webhook", subjects[:4], later)
    common = {"attempts": 1, "updated_at": later}
    outcomes = [
        loaded["pending"].with_outcome(status=outbox.PENDING, http_status=503, last_error="HTTP 503",
                                       next_attempt_at=later + timedelta(minutes=1), **common),
        loaded["failed"].with_outcome(status=outbox.FAILED, http_status=400, last_error="HTTP 400", **common),
        loaded["dead"].with_outcome(status=outbox.DEAD, http_status=503, last_error="HTTP 503", **common),
        loaded["sent"].with_outcome(status=outbox.SENT, http_status=200, delivered_at=later, **common),
        loaded["untouched"].with_outcome(status=outbox.PENDING, http_status=503, last_error="HTTP 503", **common),
    ]
    with engine.begin() as conn:
        stored = outbox.record_outcomes(conn, outcomes)
    assert [i.subject for i in stored] == ["sent", "untouched"]
    with engine.begin() as conn:
        rows = {i.subject: i for i in dbread.list_items(conn, "webhook")}
    assert {s: (rows[s].status, rows[s].attempts, rows[s].last_error) for s in subjects} == {
        "pending": ("superseded", 0, None),
        "failed": ("superseded", 0, None),
        "dead": ("superseded", 0, None),
        "sent": ("sent", 1, None),
        "untouched": ("pending", 1, "HTTP 503"),
    }
    assert rows["sent"].delivered_at == later


def _notifications(tmp_path: Path) -> NotificationsConfig:
    section = {"webhook": {"url": f"{CLOSED}/hook", "cooldown_seconds": 0}, "max_attempts": 1}
    return parse_config({"notifications": section}, "test.yaml", tmp_path, {}).notifications


@dataclass
class SupersededWhileSending:
    """A webhook stand-in: while it "sends", a newer run supersedes the message; then it answers `outcome`."""

    engine: Engine
    outcome: Delivery
    name: str = "webhook"
    sent: list[str] = field(default_factory=list)

    def send(self, message: Message, idempotency_key: str) -> Delivery:
        with self.engine.begin() as conn:
            outbox.supersede_pending(conn, self.name, [message.subject], T0)
        self.sent.append(idempotency_key)
        return self.outcome


@pytest.mark.parametrize(("outcome", "expected", "status"), [
    (Delivery("pending", 503, "HTTP 503"), DeliveryReport(), "superseded"),
    (Delivery("failed", 400, "HTTP 400"), DeliveryReport(), "superseded"),
    (Delivery("sent", 200, None), DeliveryReport(sent=1), "sent"),
])
def test_outcome_dropped_for_a_superseded_item_is_no_delivery_trouble(
    engine: Engine, tmp_path: Path, outcome: Delivery, expected: DeliveryReport, status: str
) -> None:
    """max_attempts 1: a pending outcome would otherwise count as dead, and any of them would exit 1."""
    config = _notifications(tmp_path)
    fields: dict[str, Any] = {"host": "h", "address": "127.0.0.1", "account": "1234", "partition": "01",
                              "zone": "003", "streak": "1", "occurred_at": T0.isoformat()}
    with engine.begin() as conn:
        queue_notices(conn, [make_notice("host_offline", "k1", "h", T0, fields, config)], config, T0, 1)
    channel = SupersededWhileSending(engine, outcome)
    report = deliver_notices(engine, {"webhook": channel}, config, T0, StopFlag(), str)
    assert channel.sent == ["webhook-k1"]
    assert report == expected
    assert report.trouble is False
    with engine.begin() as conn:
        assert [(i.status, i.attempts) for i in dbread.list_items(conn)] == [(status, int(status == "sent"))]


# 5. The delivery lease held by another process.

def test_delivery_lease_held_elsewhere_leaves_events_for_the_next_run(
    nwi: InProcess, fake: FakeApis, engine: Engine
) -> None:
    other = "other-host:4242:feedbeef"
    assert Lease(engine, DELIVERY_LEASE, other, 600, lambda _conn: datetime.now(UTC)).try_acquire()
    hosts = [{"name": f"lo-{n}", "address": f"127.0.0.{n}", "account": "1234", "partition": "01", "zone": f"00{n}"}
             for n in (1, 2)]
    nwi.write_config(hosts, thresholds={"notify_initial": True}, **_apis(fake))
    waiting = nwi.sweep()
    assert waiting.returncode == 0, waiting.stderr
    assert "another run is delivering from the outbox" in waiting.stderr
    assert [(i.status, i.attempts) for i in nwi.outbox()] == [("pending", 0), ("pending", 0)]
    assert fake.requests == []
    assert [r["holder"] for r in nwi.rows("leases") if r["name"] == DELIVERY_LEASE] == [other]

    with engine.begin() as conn:
        release_lease(conn, DELIVERY_LEASE, other)
    for _ in range(2):
        done = nwi.sweep()
        assert done.returncode == 0, done.stderr
    keys = _sigma_keys(fake)
    assert len(keys) == 2 and len(set(keys)) == 2, keys
    assert sorted(e["host"]["name"] for e in fake.sigma_events()) == ["lo-1", "lo-2"]
    assert [(i.status, i.attempts) for i in nwi.outbox()] == [("sent", 1), ("sent", 1)]


# 6. Sigma refusing our token does not hold back notifications.

def test_sigma_token_refused_webhook_still_delivered_and_exit_78(nwi: InProcess, fake: FakeApis) -> None:
    fake.sigma_status = 401
    with webhook_receiver() as hook:
        nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "7"}],
                        thresholds={"notify_initial": True}, **_apis(fake),
                        notifications={"webhook": {"url": f"http://127.0.0.1:{hook.server_port}/hook"}})
        done = nwi.sweep()
    assert done.returncode == 78, done.stderr
    [line] = _errors(done.stderr)
    assert "sigma API rejected the token (HTTP 401) on POST /v1/events" in line
    assert "NETWATCH_SIGMA_TOKEN" in line
    assert TOKEN not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    [(headers, body)] = hook.received
    assert (body["kind"], body["subject"]) == ("host_first_status", "lo-1")
    assert headers["Idempotency-Key"].startswith("webhook-nw-")
    assert {i.channel: (i.status, i.attempts) for i in nwi.outbox()} == {"sigma": ("pending", 0),
                                                                        "webhook": ("sent", 1)}


# 7. The account cache: one request per account, none within the TTL.

def test_hosts_sharing_an_account_cost_one_account_request(nwi: InProcess, fake: FakeApis) -> None:
    def hosts(count: int) -> list[dict[str, str]]:
        return [{"name": f"shop-{n:02d}", "address": f"127.0.3.{n}", "account": "1234"} for n in range(1, count + 1)]

    sections = _apis(fake)
    sections["segware"]["cache_ttl_seconds"] = 3600
    nwi.write_config(hosts(25), thresholds={"notify_initial": True}, **sections)
    first = nwi.sweep()
    assert first.returncode == 0, first.stderr
    assert len(fake.requests_to("GET", "/v1/accounts/1234")) == 1
    assert len(fake.sigma_events()) == 25

    # 25 new hosts of the same account: 25 new events that need enrichment, all from the cache.
    nwi.write_config(hosts(50), thresholds={"notify_initial": True}, **sections)
    second = nwi.sweep()
    assert second.returncode == 0, second.stderr
    assert len(fake.requests_to("GET", "/v1/accounts/1234")) == 1
    events = fake.sigma_events()
    assert sorted(e["host"]["name"] for e in events) == sorted(h["name"] for h in hosts(50))
    assert {(e["partition"], e["zone"]) for e in events} == {("01", "003")}
    assert {h["status"] for h in nwi.rows("hosts")} == {"online"}
