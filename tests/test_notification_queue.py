"""Notification queueing (cooldown, superseding, recovery filter) and delivery, on a real database.

Queueing sends nothing, so channel URLs there point at a closed loopback port. Delivery runs real
WebhookChannel / WhatsappChannel objects against a loopback HTTP server in this module.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dbread
import pytest
from fakeapi import FakeTime, api_client
from sqlalchemy.engine import Engine

from netwatch.clients.http import ApiAuthError, RetryPolicy
from netwatch.config import NotificationsConfig, parse_config
from netwatch.db import outbox
from netwatch.delivery.loop import DELIVERY_LEASE, DeliveryReport
from netwatch.delivery.notices import Notice, deliver_notices, make_notice, queue_notices
from netwatch.errors import Stopped
from netwatch.notify.channel import Channel
from netwatch.notify.message import Message
from netwatch.notify.webhook import WebhookChannel
from netwatch.notify.whatsapp import WhatsappChannel
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag

T0 = datetime(2026, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)
CLOSED = "http://127.0.0.1:1"
RUN_ID = 42
ONE_TRY = RetryPolicy(max_tries=1)


def notifications_config(tmp_path: Path, **section: Any) -> NotificationsConfig:
    """Webhook (recoveries on) and WhatsApp (recoveries off) unless `section` says otherwise."""
    defaults: dict[str, Any] = {
        "webhook": {"url": f"{CLOSED}/hook", "cooldown_seconds": 300},
        "whatsapp": {"url": f"{CLOSED}/wa", "to": ["+5511999990000"], "cooldown_seconds": 300,
                     "send_recovery": False},
    }
    return parse_config({"notifications": {**defaults, **section}}, "test.yaml", tmp_path, {}).notifications


def host_notice(config: NotificationsConfig, host: str, kind: str, at: datetime, key: str | None = None) -> Notice:
    fields = {"host": host, "address": "127.0.0.9", "account": "1234", "partition": "01", "zone": "003",
              "streak": "3", "occurred_at": at.isoformat()}
    return make_notice(kind, key or f"{host}-{kind}-{at.timestamp()}", host, at, fields, config, account="1234",
                       partition="01", zone="003")


def alert_notice(config: NotificationsConfig, kind: str, at: datetime) -> Notice:
    fields = {"account": "1234", "account_name": "Padaria Central", "company": "ACME", "client_group": "Retail",
              "cuc": "55", "code": "E130", "count": "61", "threshold": "50", "window_minutes": "120",
              "occurred_at": at.isoformat(), "reason": "below_threshold", "last_count": "2", "duration": "1h 5m"}
    return make_notice(kind, f"1234/55/E130-{kind}-1", "1234/55/E130", at, fields, config, account="1234",
                       code="E130")


def queue(engine: Engine, notices: list[Notice], config: NotificationsConfig, now: datetime) -> int:
    with engine.begin() as conn:
        return queue_notices(conn, notices, config, now, RUN_ID)


def items(engine: Engine, **filters: str) -> list[outbox.OutboxItem]:
    with engine.begin() as conn:
        return dbread.list_items(conn, **filters)


def mark_sent(engine: Engine, item: outbox.OutboxItem, at: datetime) -> None:
    sent = item.with_outcome(status=outbox.SENT, attempts=1, http_status=200, delivered_at=at, updated_at=at,
                             next_attempt_at=None)
    with engine.begin() as conn:
        outbox.record_outcomes(conn, [sent])


# --- queueing -------------------------------------------------------------------------------------


def test_a_notice_is_queued_once_per_configured_channel(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path)
    notice = host_notice(config, "host-a", "host_offline", T0 - timedelta(seconds=30), key="host-a-offline-7")
    assert queue(engine, [notice], config, T0) == 2
    queued = items(engine)
    assert [(i.channel, i.idempotency_key) for i in queued] == [
        ("webhook", "webhook-host-a-offline-7"), ("whatsapp", "whatsapp-host-a-offline-7"),
    ]
    for item in queued:
        assert Message.from_payload(item.payload) == notice.message
        assert (item.kind, item.subject, item.status, item.attempts) == ("host_offline", "host-a", "pending", 0)
        assert (item.next_attempt_at, item.created_at, item.updated_at) == (T0, T0, T0)
        assert (item.delivered_at, item.http_status, item.last_error, item.run_id) == (None, None, None, RUN_ID)
        assert item.next_attempt_at is not None and item.next_attempt_at.tzinfo is UTC
    with engine.begin() as conn:
        assert [i.idempotency_key for i in outbox.due_items(conn, "webhook", T0, 10)] == ["webhook-host-a-offline-7"]


def test_message_carries_rendered_texts_and_fields(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path)
    notice = alert_notice(config, "alert_raised", T0)
    message = notice.message
    assert message.title == "ALERT: Padaria Central (1234) code E130: 61 in 120min"
    assert "61 events with code E130 in the last 120 minutes (threshold 50)" in message.body
    assert (message.recovery, message.code, message.account, message.subject) == (False, "E130", "1234",
                                                                                 "1234/55/E130")
    assert message.data["cuc"] == "55"
    queue(engine, [notice], config, T0)
    assert [Message.from_payload(i.payload) for i in items(engine)] == [message, message]


def test_nothing_configured_or_nothing_to_send_queues_nothing(engine: Engine, tmp_path: Path) -> None:
    none = parse_config({}, "test.yaml", tmp_path, {}).notifications
    assert queue(engine, [host_notice(none, "host-a", "host_offline", T0)], none, T0) == 0
    assert queue(engine, [], notifications_config(tmp_path), T0) == 0
    assert items(engine) == []


@pytest.mark.parametrize("kind", ["host_online", "alert_cleared"])
def test_recovery_kinds_skip_channels_without_send_recovery(engine: Engine, tmp_path: Path, kind: str) -> None:
    config = notifications_config(tmp_path)
    notice = host_notice(config, "host-a", kind, T0) if kind == "host_online" else alert_notice(config, kind, T0)
    assert notice.message.recovery
    assert queue(engine, [notice], config, T0) == 1
    assert [i.channel for i in items(engine)] == ["webhook"]


def test_non_recovery_kinds_go_to_every_channel(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path)
    assert queue(engine, [alert_notice(config, "alert_raised", T0)], config, T0) == 2
    assert sorted(i.channel for i in items(engine)) == ["webhook", "whatsapp"]


@pytest.mark.parametrize(("after_s", "due_after_s"), [(60, 300), (299, 300), (300, 300), (400, 400)])
def test_cooldown_after_a_delivery(engine: Engine, tmp_path: Path, after_s: int, due_after_s: int) -> None:
    config = notifications_config(tmp_path)
    queue(engine, [host_notice(config, "host-a", "host_offline", T0)], config, T0)
    first = items(engine, channel="webhook")[0]
    mark_sent(engine, first, T0)
    now = T0 + timedelta(seconds=after_s)
    queue(engine, [host_notice(config, "host-a", "host_online", now),
                   host_notice(config, "host-b", "host_offline", now)], config, now)
    webhook = {i.idempotency_key: i for i in items(engine, channel="webhook", status="pending")}
    by_subject = {i.subject: i.next_attempt_at for i in webhook.values()}
    # host-a was delivered at T0: it waits for the cooldown; host-b never had a message: due at once.
    assert by_subject == {"host-a": T0 + timedelta(seconds=due_after_s), "host-b": now}
    with engine.begin() as conn:
        due_now = {i.subject for i in outbox.due_items(conn, "webhook", now, 10)}
    assert due_now == ({"host-a", "host-b"} if due_after_s == after_s else {"host-b"})


def test_cooldown_is_per_channel(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path, whatsapp={"url": f"{CLOSED}/wa", "to": "+5511999990000",
                                                      "cooldown_seconds": 30})
    queue(engine, [host_notice(config, "host-a", "host_offline", T0)], config, T0)
    for item in items(engine):
        mark_sent(engine, item, T0)
    now = T0 + timedelta(seconds=10)
    queue(engine, [host_notice(config, "host-a", "host_offline", now, key="again")], config, now)
    due = {i.channel: i.next_attempt_at for i in items(engine, status="pending")}
    assert due == {"webhook": T0 + timedelta(seconds=300), "whatsapp": T0 + timedelta(seconds=30)}


def test_cooldown_zero_means_due_at_once(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path, webhook={"url": f"{CLOSED}/hook", "cooldown_seconds": 0},
                                  whatsapp=None)
    queue(engine, [host_notice(config, "host-a", "host_offline", T0)], config, T0)
    mark_sent(engine, items(engine)[0], T0)
    now = T0 + timedelta(microseconds=1)
    queue(engine, [host_notice(config, "host-a", "host_online", now)], config, now)
    assert [i.next_attempt_at for i in items(engine, status="pending")] == [now]


def test_cooldown_anchor_is_the_latest_delivery(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path, whatsapp=None)
    queue(engine, [host_notice(config, "host-a", "host_offline", T0)], config, T0)
    mark_sent(engine, items(engine)[0], T0)
    later = T0 + timedelta(seconds=500)
    queue(engine, [host_notice(config, "host-a", "host_online", later)], config, later)
    mark_sent(engine, items(engine, status="pending")[0], later)
    now = later + timedelta(seconds=1)
    queue(engine, [host_notice(config, "host-a", "host_offline", now)], config, now)
    assert [i.next_attempt_at for i in items(engine, status="pending")] == [later + timedelta(seconds=300)]


def test_a_newer_notice_supersedes_a_waiting_one(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path)
    first = [host_notice(config, "host-a", "host_offline", T0), host_notice(config, "host-b", "host_offline", T0)]
    queue(engine, first, config, T0)
    now = T0 + timedelta(seconds=20)
    queue(engine, [host_notice(config, "host-a", "host_offline", now, key="host-a-offline-2")], config, now)
    state = {(i.channel, i.idempotency_key): (i.status, i.updated_at) for i in items(engine)}
    key_a1 = f"host-a-host_offline-{T0.timestamp()}"
    key_b1 = f"host-b-host_offline-{T0.timestamp()}"
    assert state == {
        ("webhook", f"webhook-{key_a1}"): ("superseded", now),
        ("webhook", f"webhook-{key_b1}"): ("pending", T0),
        ("whatsapp", f"whatsapp-{key_a1}"): ("superseded", now),
        ("whatsapp", f"whatsapp-{key_b1}"): ("pending", T0),
        ("webhook", "webhook-host-a-offline-2"): ("pending", now),
        ("whatsapp", "whatsapp-host-a-offline-2"): ("pending", now),
    }


def test_a_recovery_supersedes_a_waiting_alarm(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path)
    queue(engine, [host_notice(config, "host-a", "host_offline", T0)], config, T0)
    now = T0 + timedelta(seconds=20)
    assert queue(engine, [host_notice(config, "host-a", "host_online", now)], config, now) == 1
    assert [(i.kind, i.status) for i in items(engine, channel="webhook")] == [
        ("host_offline", "superseded"), ("host_online", "pending")]


def test_within_one_call_only_the_latest_notice_per_subject_is_queued(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path, whatsapp=None)
    notices = [
        host_notice(config, "host-a", "host_offline", T0),
        host_notice(config, "host-b", "host_offline", T0),
        host_notice(config, "host-a", "host_online", T0 + timedelta(seconds=1)),
        host_notice(config, "host-a", "host_offline", T0 + timedelta(seconds=2)),
    ]
    assert queue(engine, notices, config, T0 + timedelta(seconds=5)) == 2
    queued = {i.subject: i for i in items(engine)}
    assert set(queued) == {"host-a", "host-b"}
    assert Message.from_payload(queued["host-a"].payload) == notices[3].message
    assert queued["host-a"].idempotency_key == f"webhook-{notices[3].key}"


def test_templates_override_title_and_body(engine: Engine, tmp_path: Path) -> None:
    config = notifications_config(tmp_path, whatsapp=None, templates={
        "host_offline": {"title": "DOWN $host in zone $zone"},
        "alert_raised": {"body": "$count x $code (limit $threshold) costs $$0"},
    })
    offline = host_notice(config, "host-a", "host_offline", T0)
    raised = alert_notice(config, "alert_raised", T0)
    assert offline.message.title == "DOWN host-a in zone 003"
    assert offline.message.body.startswith("Host host-a (127.0.0.9) stopped answering after 3 failed checks.")
    assert raised.message.title == "ALERT: Padaria Central (1234) code E130: 61 in 120min"
    assert raised.message.body == "61 x E130 (limit 50) costs $0"
    queue(engine, [offline, raised], config, T0)
    assert {Message.from_payload(i.payload).title for i in items(engine)} == {
        "DOWN host-a in zone 003", "ALERT: Padaria Central (1234) code E130: 61 in 120min"}


def test_make_notice_refuses_a_missing_field(tmp_path: Path) -> None:
    config = notifications_config(tmp_path)
    with pytest.raises(ValueError, match=r"no value for placeholder \$streak"):
        make_notice("host_offline", "k", "host-a", T0, {"host": "a", "address": "b", "account": "c",
                                                         "partition": "d", "zone": "e", "occurred_at": "f"}, config)


# --- delivery -------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A loopback HTTP server: answers each path with the statuses queued for it, then 200."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str], body: Any) -> int:
        with self.lock:
            self.seen.append((path, headers, body))
            queued = self.statuses.get(path)
            return queued.pop(0) if queued else 200

    def keys(self, path: str) -> list[str]:
        with self.lock:
            return [headers.get("idempotency-key", "") for p, headers, _ in self.seen if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        status = receiver.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        payload = b'{"ok": true}' if status < 400 else b'{"error": "nope"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `Receiver.seen`."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = Receiver()
    server.receiver = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def channels_for(receiver: Receiver) -> dict[str, Channel]:
    webhook = WebhookChannel(api_client(f"{receiver.url}/hook", name="webhook", fake_time=FakeTime(), retry=ONE_TRY))
    whatsapp = WhatsappChannel(
        api_client(f"{receiver.url}/wa", name="whatsapp", token="wa-token", fake_time=FakeTime(), retry=ONE_TRY),
        ["+5511999990000"],
    )
    return {"webhook": webhook, "whatsapp": whatsapp}


def delivery_config(tmp_path: Path, receiver: Receiver, **section: Any) -> NotificationsConfig:
    channels = {
        "webhook": {"url": f"{receiver.url}/hook", "cooldown_seconds": 300},
        "whatsapp": {"url": f"{receiver.url}/wa", "to": "+5511999990000", "cooldown_seconds": 300},
        "retry_backoff_seconds": 60,
    }
    return notifications_config(tmp_path, **{**channels, **section})


def three_hosts(engine: Engine, config: NotificationsConfig) -> None:
    notices = [host_notice(config, f"host-{n}", "host_offline", T0, key=f"k{n}") for n in (1, 2, 3)]
    assert queue(engine, notices, config, T0) == 6


def test_deliver_sends_every_due_item(engine: Engine, tmp_path: Path, receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver)
    three_hosts(engine, config)
    now = T0 + timedelta(seconds=1)
    report = deliver_notices(engine, channels_for(receiver), config, now, StopFlag(), str)
    assert report == DeliveryReport(sent=6)
    for item in items(engine):
        assert (item.status, item.attempts, item.http_status, item.delivered_at) == ("sent", 1, 200, now)
        assert (item.next_attempt_at, item.last_error, item.updated_at) == (None, None, now)
    assert receiver.keys("/hook") == ["webhook-k1", "webhook-k2", "webhook-k3"]
    assert receiver.keys("/wa") == ["whatsapp-k1-1", "whatsapp-k2-1", "whatsapp-k3-1"]
    hook_body = next(body for path, _, body in receiver.seen if path == "/hook")
    assert hook_body["subject"] == "host-1" and hook_body["kind"] == "host_offline"
    # Nothing due any more: a second run sends nothing.
    assert deliver_notices(engine, channels_for(receiver), config, now, StopFlag(), str) == DeliveryReport()
    assert len(receiver.seen) == 6


def test_deliver_leaves_items_in_cooldown_for_later(engine: Engine, tmp_path: Path, receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver, whatsapp=None)
    queue(engine, [host_notice(config, "host-a", "host_offline", T0)], config, T0)
    assert deliver_notices(engine, channels_for(receiver), config, T0, StopFlag(), str) == DeliveryReport(sent=1)
    now = T0 + timedelta(seconds=60)
    queue(engine, [host_notice(config, "host-a", "host_online", now)], config, now)
    assert deliver_notices(engine, channels_for(receiver), config, now, StopFlag(), str) == DeliveryReport()
    later = T0 + timedelta(seconds=300)
    assert deliver_notices(engine, channels_for(receiver), config, later, StopFlag(), str) == DeliveryReport(sent=1)
    assert [(i.kind, i.status, i.delivered_at) for i in items(engine)] == [
        ("host_offline", "sent", T0), ("host_online", "sent", later)]


def test_transient_failure_stops_that_channel_for_this_run(engine: Engine, tmp_path: Path,
                                                          receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver)
    three_hosts(engine, config)
    receiver.statuses["/hook"] = [200, 503]
    now = T0 + timedelta(seconds=1)
    report = deliver_notices(engine, channels_for(receiver), config, now, StopFlag(), str)
    assert report == DeliveryReport(sent=4, pending=1)
    hook = {i.idempotency_key: i for i in items(engine, channel="webhook")}
    assert hook["webhook-k1"].status == "sent"
    failed = hook["webhook-k2"]
    assert (failed.status, failed.attempts, failed.http_status) == ("pending", 1, 503)
    assert failed.next_attempt_at == now + timedelta(seconds=60)
    assert failed.last_error is not None and "503" in failed.last_error
    untouched = hook["webhook-k3"]
    assert (untouched.status, untouched.attempts, untouched.next_attempt_at, untouched.updated_at) == (
        "pending", 0, T0, T0)
    assert receiver.keys("/hook") == ["webhook-k1", "webhook-k2"]
    # The other channel went on regardless.
    assert {i.status for i in items(engine, channel="whatsapp")} == {"sent"}
    # Next run, before the backoff ends: k3 goes out, k2 waits; after it, k2 goes out.
    assert deliver_notices(engine, channels_for(receiver), config, now + timedelta(seconds=1),
                           StopFlag(), str) == DeliveryReport(sent=1)
    assert deliver_notices(engine, channels_for(receiver), config, now + timedelta(seconds=60),
                           StopFlag(), str) == DeliveryReport(sent=1)
    assert receiver.keys("/hook") == ["webhook-k1", "webhook-k2", "webhook-k3", "webhook-k2"]
    assert {i.status for i in items(engine)} == {"sent"}


def test_permanent_refusal_marks_failed_and_goes_on(engine: Engine, tmp_path: Path, receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver, whatsapp=None)
    two_hosts = [host_notice(config, f"host-{n}", "host_offline", T0, key=f"k{n}") for n in (1, 2)]
    queue(engine, two_hosts, config, T0)
    receiver.statuses["/hook"] = [404]
    report = deliver_notices(engine, {"webhook": channels_for(receiver)["webhook"]}, config, T0, StopFlag(), str)
    assert report == DeliveryReport(sent=1, failed=1)
    first, second = items(engine)
    assert (first.status, first.http_status, first.next_attempt_at, first.delivered_at) == ("failed", 404, None, None)
    assert first.last_error is not None and "404" in first.last_error
    assert second.status == "sent"


def test_max_attempts_reached_marks_dead(engine: Engine, tmp_path: Path, receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver, whatsapp=None, max_attempts=2)
    queue(engine, [host_notice(config, "host-a", "host_offline", T0, key="k")], config, T0)
    receiver.statuses["/hook"] = [503, 502]
    channels: dict[str, Channel] = {"webhook": channels_for(receiver)["webhook"]}
    assert deliver_notices(engine, channels, config, T0, StopFlag(), str) == DeliveryReport(pending=1)
    later = T0 + timedelta(seconds=60)
    assert deliver_notices(engine, channels, config, later, StopFlag(), str) == DeliveryReport(dead=1)
    (item,) = items(engine)
    assert (item.status, item.attempts, item.http_status, item.next_attempt_at) == ("dead", 2, 502, None)
    assert deliver_notices(engine, channels, config, later + timedelta(days=2), StopFlag(), str) == DeliveryReport()
    assert len(receiver.seen) == 2


def test_refused_credentials_stop_the_run_but_keep_earlier_outcomes(engine: Engine, tmp_path: Path,
                                                                    receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver, whatsapp=None)
    queue(engine, [host_notice(config, f"host-{n}", "host_offline", T0, key=f"k{n}") for n in (1, 2, 3)], config, T0)
    receiver.statuses["/hook"] = [200, 401]
    report = deliver_notices(engine, {"webhook": channels_for(receiver)["webhook"]}, config, T0, StopFlag(), str)
    assert isinstance(report.problem, ApiAuthError) and report.problem.exit_code == 78
    assert report.sent == 1
    assert [(i.idempotency_key, i.status, i.attempts) for i in items(engine)] == [
        ("webhook-k1", "sent", 1), ("webhook-k2", "pending", 0), ("webhook-k3", "pending", 0)]


def test_a_set_stop_flag_sends_nothing(engine: Engine, tmp_path: Path, receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver)
    three_hosts(engine, config)
    stop = StopFlag()
    stop.set()
    with pytest.raises(Stopped):
        deliver_notices(engine, channels_for(receiver), config, T0, stop, str)
    assert receiver.seen == []
    assert {i.status for i in items(engine)} == {"pending"}


def test_no_channels_delivers_nothing(engine: Engine, tmp_path: Path, receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver)
    three_hosts(engine, config)
    assert deliver_notices(engine, {}, config, T0, StopFlag(), str) == DeliveryReport()
    assert receiver.seen == []


def test_recovery_supersedes_a_waiting_message_on_a_channel_without_send_recovery(engine: Engine) -> None:
    config = parse_config(
        {"notifications": {"whatsapp": {"url": "http://127.0.0.1:1/wa", "to": ["+1"], "cooldown_seconds": 300,
                                        "send_recovery": False}}},
        "test.yaml", Path("."), {},
    ).notifications
    start = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    def host(kind: str, key: str, at: datetime) -> Notice:
        fields = {"host": "h", "address": "127.0.0.1", "account": "1", "partition": "1", "zone": "1",
                  "streak": "3", "occurred_at": at.isoformat()}
        return make_notice(kind, key, "h", at, fields, config)

    with engine.begin() as conn:
        queue_notices(conn, [host("host_offline", "k1", start)], config, start, 1)
        [first] = dbread.list_items(conn)
        outbox.record_outcomes(conn, [first.with_outcome(status=outbox.SENT, delivered_at=start, attempts=1)])
        queue_notices(conn, [host("host_offline", "k2", start + timedelta(seconds=20))], config,
                      start + timedelta(seconds=20), 2)
        queue_notices(conn, [host("host_online", "k3", start + timedelta(seconds=30))], config,
                      start + timedelta(seconds=30), 3)
        items = dbread.list_items(conn)
    assert [(i.idempotency_key, i.status) for i in items] == [("whatsapp-k1", "sent"), ("whatsapp-k2", "superseded")]


def test_delivery_stops_once_the_delivery_lease_is_no_longer_valid(engine: Engine, tmp_path: Path,
                                                                   receiver: Receiver) -> None:
    config = delivery_config(tmp_path, receiver, whatsapp=None)
    queue(engine, [host_notice(config, f"host-{n}", "host_offline", T0, key=f"k{n}") for n in (1, 2)], config, T0)
    ticks = [0.0]  # the lease's monotonic clock, in seconds
    turn = Lease(engine, DELIVERY_LEASE, "this-run", 60, lambda _conn: T0, monotonic=lambda: ticks[0])
    assert turn.try_acquire() and turn.valid()
    ticks[0] = 39.0
    assert turn.valid()
    ticks[0] = 40.0  # renewals failed for two thirds of the TTL: it may lapse soon
    assert not turn.valid()
    report = deliver_notices(engine, {"webhook": channels_for(receiver)["webhook"]}, config, T0, StopFlag(), str, turn)
    assert (report.sent, report.pending, receiver.seen) == (0, 0, [])
    assert [(i.status, i.attempts) for i in items(engine)] == [("pending", 0), ("pending", 0)]
    ticks[0] = 0.0
    assert deliver_notices(engine, {"webhook": channels_for(receiver)["webhook"]}, config, T0, StopFlag(), str,
                           turn).sent == 2
