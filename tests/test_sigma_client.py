"""SigmaClient: contract fields and headers, delivery outcomes, and a few runs against FakeApis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
import responses
from fakeapi import FakeApis, FakeTime, api_client

from netwatch.clients.http import ApiAuthError, RetryPolicy
from netwatch.clients.sigma import SigmaClient, SigmaEvent
from netwatch.outcome import Delivery

BASE = "https://sigma.example.invalid"
URL = f"{BASE}/v1/events"
TOKEN = "sigma-tok-s3cret"

KEY = "host-7:offline:2026-11-22T10:00:00Z"
EVENT = SigmaEvent(
    account="1234",
    partition="01",
    zone="003",
    code="E356",
    type="HOST_OFFLINE",
    host_name="router-loja-centro",
    host_address="router-centro.invalid",
    occurred_at=datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC),
    description="router-loja-centro unreachable: 3 consecutive failed checks",
)

CONTRACT_BODY = {
    "account": "1234",
    "partition": "01",
    "zone": "003",
    "code": "E356",
    "type": "HOST_OFFLINE",
    "host": {"name": "router-loja-centro", "address": "router-centro.invalid"},
    "occurredAt": "2026-11-22T10:00:00Z",
    "description": "router-loja-centro unreachable: 3 consecutive failed checks",
}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def sigma(clock: FakeTime | None = None, token: str | None = TOKEN, base_url: str = BASE) -> SigmaClient:
    return SigmaClient(api_client(base_url, name="sigma", token=token, fake_time=clock))


def test_request_matches_the_contract_exactly(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=201)
    sigma().send(EVENT.body(), KEY)
    request = rsps.calls[0].request
    assert json.loads(request.body) == CONTRACT_BODY
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"


def test_timestamp_is_converted_to_utc_with_z() -> None:
    local = datetime(2026, 11, 22, 7, 0, 0, 999_000, tzinfo=timezone(timedelta(hours=-3)))
    event = replace(EVENT, occurred_at=local)
    assert event.body()["occurredAt"] == "2026-11-22T10:00:00Z"


def test_a_stored_body_reads_back_as_the_same_event() -> None:
    assert SigmaEvent.from_body(CONTRACT_BODY) == EVENT
    assert SigmaEvent.from_body(EVENT.body()).body() == CONTRACT_BODY


def test_an_event_is_located_once_partition_and_zone_are_settled() -> None:
    unlocated = replace(EVENT, account=None, partition=None, zone=None)
    assert not unlocated.located
    assert unlocated.body()["partition"] is None
    located = unlocated.with_location("unknown", "unknown")
    assert located.located and located.account == "unknown"
    assert SigmaEvent.from_body(located.body()) == located


def test_a_located_event_of_no_account_says_unknown() -> None:
    event = replace(EVENT, account=None)
    assert event.located and event.body()["account"] == "unknown"
    assert replace(event, zone=None).body()["account"] is None, "not final yet: located before it is sent"


def test_naive_timestamp_and_unknown_type_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(EVENT, occurred_at=datetime(2026, 11, 22, 10, 0, 0))
    with pytest.raises(ValueError, match="type"):
        replace(EVENT, type="HOST_DOWN")


def test_no_authorization_header_without_a_token(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=201)
    sigma(token=None).send(EVENT.body(), KEY)
    assert "Authorization" not in rsps.calls[0].request.headers


@pytest.mark.parametrize("status", [201, 202, 409])
def test_created_accepted_and_duplicate_count_as_sent(rsps: responses.RequestsMock, status: int) -> None:
    rsps.post(URL, status=status)
    assert sigma().send(EVENT.body(), KEY) == Delivery("sent", status, None)


def test_400_fails_without_retry(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=400, json={"error": "invalid zone"})
    clock = FakeTime()
    delivery = sigma(clock).send(EVENT.body(), KEY)
    assert delivery.status == "failed"
    assert delivery.http_status == 400
    assert delivery.error is not None and "HTTP 400" in delivery.error and "invalid zone" in delivery.error
    assert len(rsps.calls) == 1 and clock.waits == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_raises_without_the_token(rsps: responses.RequestsMock, status: int) -> None:
    rsps.post(URL, status=status)
    with pytest.raises(ApiAuthError) as err:
        sigma().send(EVENT.body(), KEY)
    assert "NETWATCH_SIGMA_TOKEN" in err.value.message
    assert TOKEN not in str(err.value)


def test_503_then_201_is_sent_after_one_retry(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=503)
    rsps.post(URL, status=201)
    clock = FakeTime()
    assert sigma(clock).send(EVENT.body(), KEY) == Delivery("sent", 201, None)
    assert clock.waits == [0.5]
    keys = {call.request.headers["Idempotency-Key"] for call in rsps.calls}
    assert keys == {KEY}


def test_503_forever_stays_pending_with_bounded_growing_waits(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=503)
    clock = FakeTime()
    delivery = sigma(clock).send(EVENT.body(), KEY)
    assert delivery.status == "pending"
    assert delivery.http_status == 503
    assert len(rsps.calls) == RetryPolicy().max_tries
    assert clock.waits == sorted(clock.waits) and len(clock.waits) == 3
    assert max(clock.waits) <= RetryPolicy().backoff_max_s


@pytest.mark.parametrize("error", [requests.ConnectionError("refused"), requests.exceptions.ReadTimeout("slow")])
def test_connection_error_or_timeout_stays_pending(rsps: responses.RequestsMock, error: Exception) -> None:
    rsps.post(URL, body=error)
    delivery = sigma().send(EVENT.body(), KEY)
    assert delivery.status == "pending"
    assert delivery.http_status is None
    assert delivery.error is not None and type(error).__name__ in delivery.error


def test_429_retry_after_seconds_then_sent(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=429, headers={"Retry-After": "30"})
    rsps.post(URL, status=201)
    clock = FakeTime()
    assert sigma(clock).send(EVENT.body(), KEY).status == "sent"
    assert clock.waits == [30.0]


def test_429_retry_after_http_date_then_sent(rsps: responses.RequestsMock) -> None:
    # The client reads the wall clock for HTTP dates; a date well ahead keeps the check robust.
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    rsps.post(URL, status=429, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    rsps.post(URL, status=201)
    clock = FakeTime()
    assert sigma(clock).send(EVENT.body(), KEY).status == "sent"
    assert len(clock.waits) == 1 and 18.0 <= clock.waits[0] <= 20.0


def test_429_past_the_deadline_is_pending_without_a_long_sleep(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=429, headers={"Retry-After": "7200"})
    clock = FakeTime(budget_s=120.0)
    delivery = sigma(clock).send(EVENT.body(), KEY)
    assert delivery.status == "pending"
    assert delivery.http_status == 429
    assert delivery.retry_after_s == 7200.0
    assert clock.waits == []


def test_fake_accepts_then_dedupes_the_same_key() -> None:
    with FakeApis() as fake:
        client = sigma(base_url=fake.url)
        assert client.send(EVENT.body(), KEY) == Delivery("sent", 201, None)
        assert client.send(EVENT.body(), KEY) == Delivery("sent", 409, None)
        assert fake.sigma_events() == [CONTRACT_BODY]
        posts = fake.requests_to("POST", "/v1/events")
        assert [r.status for r in posts] == [201, 409]
        assert {r.headers["idempotency-key"] for r in posts} == {KEY}


def test_fake_requires_the_token() -> None:
    with FakeApis(token="s3cret") as fake:
        with pytest.raises(ApiAuthError) as err:
            sigma(token="wrong", base_url=fake.url).send(EVENT.body(), KEY)
        assert "wrong" not in str(err.value)
        with pytest.raises(ApiAuthError):
            sigma(token=None, base_url=fake.url).send(EVENT.body(), KEY)
        assert sigma(token="s3cret", base_url=fake.url).send(EVENT.body(), KEY).status == "sent"
        assert [r.status for r in fake.requests] == [401, 401, 201]
        assert fake.requests[-1].headers["authorization"] == "Bearer s3cret"
        assert "authorization" not in fake.requests[1].headers


def test_fake_503_mode_leaves_the_event_pending_then_it_goes_through() -> None:
    with FakeApis() as fake:
        fake.sigma_status = 503
        fake.sigma_retry_after = "1"
        clock = FakeTime()
        delivery = sigma(clock, base_url=fake.url).send(EVENT.body(), KEY)
        assert delivery.status == "pending" and delivery.http_status == 503
        assert clock.waits == [1.0, 1.0, 1.0]
        fake.sigma_status = None
        assert sigma(base_url=fake.url).send(EVENT.body(), KEY).status == "sent"
        assert fake.sigma_events() == [CONTRACT_BODY]


def test_fake_delay_times_out_and_the_resend_is_a_duplicate() -> None:
    with FakeApis() as fake:
        fake.sigma_delay_s = 0.5
        client = SigmaClient(api_client(fake.url, token=None, timeout_s=0.1, retry=RetryPolicy(max_tries=1)))
        delivery = client.send(EVENT.body(), KEY)
        assert delivery.status == "pending" and delivery.error is not None and "Timeout" in delivery.error
        fake.sigma_delay_s = 0.0
        # The slow answer was still a 201 on the server: the re-send is a 409, which counts as sent.
        assert client.send(EVENT.body(), KEY) == Delivery("sent", 409, None)
        assert len(fake.sigma_events()) == 1
