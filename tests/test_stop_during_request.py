"""A stop that ends a request after it went out spends that delivery attempt; a stop before it spends nothing.

ApiClient raises StoppedDuringRequest once a try is under way (or between tries), plain Stopped
before the first one; deliver_items stores the attempt (pending, "stopped during the request")
and then lets the stop end the run. The real-process cases are in test_http_deadlines.py (Sigma)
and test_email_deadlines.py (SMTP).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import dbread
import pytest
import responses
from fakeapi import FakeApis
from sqlalchemy.engine import Engine

from netwatch.clients.http import ApiClient, RetryPolicy, make_session
from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import deliver_items
from netwatch.delivery.retry import RetryRule
from netwatch.errors import ExitCode, Stopped, StoppedDuringRequest
from netwatch.outcome import Delivery
from netwatch.running.stopflag import StopFlag

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RULE = RetryRule(max_attempts=5, backoff_seconds=60)
BASE = "https://api.example.invalid"


def _items(engine: Engine, count: int) -> list[OutboxItem]:
    fresh = [OutboxItem(id=None, channel="sigma", idempotency_key=f"k-{n}", kind="HOST_OFFLINE", subject=f"lo-{n}",
                        payload={"x": n}, status=outbox.PENDING, attempts=0, http_status=None, last_error=None,
                        next_attempt_at=None, created_at=T0, updated_at=T0, delivered_at=None, run_id=1)
             for n in range(count)]
    with engine.begin() as conn:
        outbox.enqueue(conn, fresh)
        return outbox.due_items(conn, "sigma", T0, 10)


def _stored(engine: Engine) -> dict[str, tuple[str, int, str | None]]:
    with engine.begin() as conn:
        return {i.idempotency_key: (i.status, i.attempts, i.last_error) for i in dbread.list_items(conn)}


def _client(base_url: str, stop: StopFlag, sleep: Callable[[float], None] = time.sleep) -> ApiClient:
    """An ApiClient with the run's stop check, as deps.py builds it."""
    return ApiClient(name="sigma", base_url=base_url, token=None, token_source="NETWATCH_SIGMA_TOKEN",
                     session=make_session(), timeout_s=30, retry=RetryPolicy(), deadline=lambda: 60.0,
                     sleep=sleep, check_stop=stop.check)


def test_a_stop_while_a_try_is_under_way_is_stopped_during_the_request(fake: FakeApis) -> None:
    stop = StopFlag()
    held = fake.hold("POST", "/v1/events")
    api = _client(fake.url, stop)

    def stop_once_held() -> None:
        held.wait_arrived()
        stop.set(signal.SIGTERM)

    stopper = threading.Thread(target=stop_once_held, daemon=True)
    stopper.start()
    try:
        with pytest.raises(StoppedDuringRequest) as err:
            api.deliver("POST", "/v1/events", {"a": 1}, "k-1", (201,))
    finally:
        held.release()
        stopper.join(timeout=5)
    assert err.value.request == "sigma API POST /v1/events"
    assert err.value.exit_code == ExitCode.STOPPED


def test_a_stop_in_the_wait_between_tries_is_stopped_during_the_request() -> None:
    stop = StopFlag()

    def sleep(_seconds: float) -> None:
        stop.set(signal.SIGINT)
        stop.check()

    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/things", status=503)
        api = _client(BASE, stop, sleep)
        with pytest.raises(StoppedDuringRequest) as err:
            api.deliver("POST", "/v1/things", {"a": 1}, "k-1", (201,))
        assert len(rsps.calls) == 1
    assert err.value.exit_code == ExitCode.INTERRUPTED


def test_a_stop_before_the_first_try_is_plain_stopped() -> None:
    stop = StopFlag()
    stop.set(signal.SIGTERM)
    with responses.RequestsMock() as rsps, pytest.raises(Stopped) as err:
        _client(BASE, stop).deliver("POST", "/v1/things", {"a": 1}, "k-1", (201,))
    assert not isinstance(err.value, StoppedDuringRequest)
    assert len(rsps.calls) == 0


def test_the_loop_stores_the_attempt_a_stop_cut_short_then_stops(engine: Engine) -> None:
    items = _items(engine, 3)
    asked: list[str] = []

    def sink(item: OutboxItem) -> Delivery:
        asked.append(item.idempotency_key)
        if item.idempotency_key == "k-0":
            return Delivery("sent", 201, None)
        raise StoppedDuringRequest(Stopped("stopped by SIGTERM at a safe point"), "sigma API POST /v1/events")

    with pytest.raises(StoppedDuringRequest):
        deliver_items(engine, items, sink, RULE, T0, StopFlag(), lambda text: text)

    assert asked == ["k-0", "k-1"]
    stored = _stored(engine)
    assert stored == {"k-0": ("sent", 1, None),
                      "k-1": ("pending", 1, "sigma API POST /v1/events: stopped during the request"),
                      "k-2": ("pending", 0, None)}


def test_a_stop_before_the_request_went_out_spends_nothing(engine: Engine) -> None:
    items = _items(engine, 1)

    def sink(item: OutboxItem) -> Delivery:
        raise Stopped("stopped by SIGTERM at a safe point")

    with pytest.raises(Stopped):
        deliver_items(engine, items, sink, RULE, T0, StopFlag(), lambda text: text)

    assert _stored(engine) == {"k-0": ("pending", 0, None)}
