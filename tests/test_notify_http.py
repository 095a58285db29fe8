"""WebhookChannel and WhatsappChannel against a real loopback HTTP server, and `responses` for edge cases."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses
from fakeapi import FakeTime, api_client

from netwatch.clients.http import ApiAuthError, RetryPolicy
from netwatch.notify.message import Message
from netwatch.notify.webhook import WebhookChannel
from netwatch.notify.whatsapp import WhatsappChannel
from netwatch.outcome import Delivery

TOKEN = "wa-t0ken-s3cret"
HOOK_URL = "https://hooks.example.invalid/netwatch/in"
WA_URL = "https://graph.example.invalid/v19.0/1234567890/messages"
ONE_TRY = RetryPolicy(max_tries=1)

MESSAGE = Message(
    kind="alert_cleared",
    subject="1234/55/E130",
    title="CLEARED: Padaria Central (1234) code E130",
    body="The alert for code E130 cleared after 1h 5m.",
    occurred_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
    recovery=True,
    account="1234",
    partition=None,
    zone=None,
    code="E130",
    data={"account": "1234", "duration": "1h 5m", "count": "2"},
)
WEBHOOK_JSON = {
    "kind": "alert_cleared",
    "subject": "1234/55/E130",
    "title": "CLEARED: Padaria Central (1234) code E130",
    "body": "The alert for code E130 cleared after 1h 5m.",
    "occurred_at": "2024-05-01T10:00:00+00:00",
    "recovery": True,
    "account": "1234",
    "partition": None,
    "zone": None,
    "code": "E130",
    "data": {"account": "1234", "duration": "1h 5m", "count": "2"},
}
WA_TEXT = "CLEARED: Padaria Central (1234) code E130\nThe alert for code E130 cleared after 1h 5m."


@dataclass
class Receiver:
    """A loopback HTTP server that records every POST; `status_for(body)` decides each answer."""

    status_for: Callable[[Any], int] = lambda body: 200
    seen: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw)
        with receiver.lock:
            receiver.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        status = receiver.status_for(body)
        answer = b"" if status == 204 else json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    rec = Receiver()
    server.receiver = rec  # type: ignore[attr-defined]
    host, port = server.server_address[:2]
    rec.url = f"http://{host}:{port}/hooks/netwatch"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


# --- webhook -------------------------------------------------------------------------------------


def test_webhook_posts_the_exact_json_with_the_idempotency_key(receiver: Receiver) -> None:
    webhook = WebhookChannel(api_client(receiver.url, name="webhook"))
    assert webhook.name == "webhook"
    delivery = webhook.send(MESSAGE, "alert_cleared:1234/55/E130:42")
    assert delivery == Delivery("sent", 200, None)
    [(path, headers, body)] = receiver.seen
    assert path == "/hooks/netwatch"
    assert body == WEBHOOK_JSON
    assert headers["idempotency-key"] == "alert_cleared:1234/55/E130:42"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers


def test_webhook_sends_a_bearer_token_when_configured(receiver: Receiver) -> None:
    receiver.status_for = lambda body: 202
    delivery = WebhookChannel(api_client(receiver.url, name="webhook", token=TOKEN)).send(MESSAGE, "k")
    assert delivery == Delivery("sent", 202, None)
    assert receiver.seen[0][1]["authorization"] == f"Bearer {TOKEN}"


def test_webhook_retries_a_5xx_within_the_run_then_sends(receiver: Receiver) -> None:
    answers = iter([503, 201])
    receiver.status_for = lambda body: next(answers)
    fake_time = FakeTime()
    delivery = WebhookChannel(api_client(receiver.url, name="webhook", fake_time=fake_time)).send(MESSAGE, "k")
    assert delivery == Delivery("sent", 201, None)
    assert [h["idempotency-key"] for _, h, _ in receiver.seen] == ["k", "k"]
    assert fake_time.waits == [0.5]


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_webhook_accepts_every_success_status(rsps: responses.RequestsMock, status: int) -> None:
    rsps.post(HOOK_URL, status=status)
    assert WebhookChannel(api_client(HOOK_URL, name="webhook")).send(MESSAGE, "k") == Delivery("sent", status, None)
    assert json.loads(rsps.calls[0].request.body) == WEBHOOK_JSON


def test_webhook_400_fails_for_good(rsps: responses.RequestsMock) -> None:
    rsps.post(HOOK_URL, status=400, json={"error": "unknown field"})
    delivery = WebhookChannel(api_client(HOOK_URL, name="webhook")).send(MESSAGE, "k")
    assert delivery.status == "failed" and delivery.http_status == 400
    assert delivery.error is not None and "HTTP 400" in delivery.error and "unknown field" in delivery.error
    assert len(rsps.calls) == 1


def test_webhook_503_with_retry_after_is_pending(rsps: responses.RequestsMock) -> None:
    rsps.post(HOOK_URL, status=503, headers={"Retry-After": "120"})
    delivery = WebhookChannel(api_client(HOOK_URL, name="webhook", retry=ONE_TRY)).send(MESSAGE, "k")
    assert delivery.status == "pending"
    assert (delivery.http_status, delivery.retry_after_s) == (503, 120.0)
    assert delivery.error is not None and "HTTP 503" in delivery.error


def test_webhook_connection_error_is_pending_without_a_status(rsps: responses.RequestsMock) -> None:
    rsps.post(HOOK_URL, body=requests.ConnectionError("refused"))
    delivery = WebhookChannel(api_client(HOOK_URL, name="webhook", retry=ONE_TRY)).send(MESSAGE, "k")
    assert (delivery.status, delivery.http_status, delivery.retry_after_s) == ("pending", None, None)


def test_webhook_401_raises_an_auth_error_without_the_token(rsps: responses.RequestsMock) -> None:
    rsps.post(HOOK_URL, status=401, json={"error": TOKEN})
    with pytest.raises(ApiAuthError) as info:
        WebhookChannel(api_client(HOOK_URL, name="webhook", token=TOKEN)).send(MESSAGE, "k")
    assert info.value.status == 401
    assert TOKEN not in str(info.value)


# --- whatsapp ------------------------------------------------------------------------------------


def _wa_body(to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": WA_TEXT}}


def test_whatsapp_posts_one_text_per_recipient_with_token_and_keys(receiver: Receiver) -> None:
    whatsapp = WhatsappChannel(
        api_client(receiver.url, name="whatsapp", token=TOKEN), ["5511999990001", "5511999990002"]
    )
    assert whatsapp.name == "whatsapp"
    assert whatsapp.send(MESSAGE, "alert_cleared:42") == Delivery("sent", 200, None)
    assert [body for _, _, body in receiver.seen] == [_wa_body("5511999990001"), _wa_body("5511999990002")]
    assert [h["idempotency-key"] for _, h, _ in receiver.seen] == ["alert_cleared:42-1", "alert_cleared:42-2"]
    assert {h["authorization"] for _, h, _ in receiver.seen} == {f"Bearer {TOKEN}"}
    assert {h["content-type"] for _, h, _ in receiver.seen} == {"application/json"}


def test_whatsapp_one_rejected_recipient_fails_the_message(receiver: Receiver) -> None:
    receiver.status_for = lambda body: 400 if body["to"] == "bad" else 200
    whatsapp = WhatsappChannel(api_client(receiver.url, name="whatsapp", token=TOKEN), ["5511999990001", "bad"])
    delivery = whatsapp.send(MESSAGE, "k")
    assert delivery.status == "failed" and delivery.http_status == 400
    assert delivery.error is not None and delivery.error.startswith("1/2 recipients accepted: ")
    assert len(receiver.seen) == 2


def test_whatsapp_any_pending_recipient_keeps_the_message_pending(receiver: Receiver) -> None:
    statuses = {"a": 400, "b": 503, "c": 200}
    receiver.status_for = lambda body: statuses[body["to"]]
    whatsapp = WhatsappChannel(api_client(receiver.url, name="whatsapp", token=TOKEN, retry=ONE_TRY), ["a", "b", "c"])
    delivery = whatsapp.send(MESSAGE, "k")
    assert delivery.status == "pending" and delivery.http_status == 503
    assert delivery.error is not None and delivery.error.startswith("1/3 recipients accepted: ")
    assert [body["to"] for _, _, body in receiver.seen] == ["a", "b", "c"]


def test_whatsapp_pending_carries_the_longest_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.post(WA_URL, status=429, headers={"Retry-After": "30"})
    rsps.post(WA_URL, status=503, headers={"Retry-After": "90"})
    whatsapp = WhatsappChannel(api_client(WA_URL, name="whatsapp", token=TOKEN, retry=ONE_TRY), ["a", "b"])
    delivery = whatsapp.send(MESSAGE, "k")
    assert (delivery.status, delivery.http_status, delivery.retry_after_s) == ("pending", 429, 90.0)


def test_whatsapp_401_raises_at_once_without_the_token(rsps: responses.RequestsMock) -> None:
    rsps.post(WA_URL, status=401, json={"error": {"message": "Invalid OAuth access token"}})
    whatsapp = WhatsappChannel(api_client(WA_URL, name="whatsapp", token=TOKEN), ["a", "b"])
    with pytest.raises(ApiAuthError) as info:
        whatsapp.send(MESSAGE, "k")
    assert len(rsps.calls) == 1
    assert TOKEN not in str(info.value)
    assert "NETWATCH_WHATSAPP_TOKEN" in str(info.value)
