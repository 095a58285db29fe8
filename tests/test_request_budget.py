"""A request is not started with less than 1 s (or its own timeout, if shorter) left before the run's
deadline: such a try would hardly reach the receiver, yet it would spend a delivery attempt.

Retries of a request already sent are not held to it: their attempt is spent anyway.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from fakeapi import FakeApis, FakeTime, api_client
from inproc import InProcess

from netwatch.clients.http import ApiNotSent
from netwatch.outcome import Delivery

BASE = "https://api.example.invalid"
URL = f"{BASE}/v1/things"
KEY = "host-7:offline:2026-11-22T10:00:00Z"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.mark.parametrize("left_s", [0.001, 0.5, 0.99])
def test_a_first_try_needs_a_second_left(rsps: responses.RequestsMock, left_s: float) -> None:
    with pytest.raises(ApiNotSent) as err:
        api_client(BASE, timeout_s=10, fake_time=FakeTime(budget_s=left_s)).request("GET", "/v1/things")
    assert err.value.message == (f"sigma API GET /v1/things: not sent, {left_s:.2f}s left before the run's deadline"
                                 " (a request needs 1s)")
    assert len(rsps.calls) == 0


def test_a_delivery_with_too_little_time_left_is_unsent(rsps: responses.RequestsMock) -> None:
    delivery = api_client(BASE, fake_time=FakeTime(budget_s=0.3)).deliver("POST", "/v1/things", {"a": 1}, KEY, (201,))
    assert delivery == Delivery("unsent", None, "sigma API POST /v1/things: not sent, 0.30s left before the run's"
                                " deadline (a request needs 1s)")
    assert len(rsps.calls) == 0


def test_a_second_is_enough(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=201)
    delivery = api_client(BASE, fake_time=FakeTime(budget_s=1.0)).deliver("POST", "/v1/things", {"a": 1}, KEY, (201,))
    assert delivery.status == "sent"
    assert rsps.calls[0].request.req_kwargs["timeout"] == (1.0, 1.0)


def test_a_request_with_a_shorter_timeout_needs_only_that(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=201)
    api = api_client(BASE, timeout_s=0.2, fake_time=FakeTime(budget_s=0.5))
    assert api.deliver("POST", "/v1/things", {"a": 1}, KEY, (201,)).status == "sent"


def test_a_retry_goes_out_with_less_than_a_second_left(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=503)
    rsps.post(URL, status=201)
    clock = FakeTime(budget_s=1.2)
    delivery = api_client(BASE, fake_time=clock).deliver("POST", "/v1/things", {"a": 1}, KEY, (201,))
    assert delivery.status == "sent"
    assert clock.waits == [0.5]
    assert rsps.calls[1].request.req_kwargs["timeout"] == pytest.approx((0.7, 0.7))


def test_runs_whose_deadline_is_nearly_used_up_never_make_an_event_dead(nwi: InProcess, fake: FakeApis) -> None:
    """A 1 s deadline is under a second by the time delivery starts: no run may spend the only attempt."""
    hosts = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}]
    nwi.write_config(hosts, thresholds={"notify_initial": True}, run={"deadline_seconds": 1},
                     sigma={"base_url": fake.url, "max_attempts": 1, "retry_backoff_seconds": 0})

    codes = [nwi.sweep().returncode for _ in range(3)]

    assert fake.requests_to("POST", "/v1/events") == [], "Sigma was never asked"
    [item] = nwi.outbox()
    assert (item.status, item.attempts) == ("pending", 0)
    # How much of the second is left when delivery starts depends on the machine's load: either way
    # the message says the deadline left no room for the request.
    assert item.last_error is not None and any(reason in item.last_error for reason in (
        "left before the run's deadline (a request needs 1s)", "the run's deadline was used up"))
    assert codes == [1, 1, 1], "each run says its event is still pending"
