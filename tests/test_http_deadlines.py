"""ApiClient: a request's whole duration is bounded by its timeout and the run's deadline; a stop ends it.

Real loopback servers that drip their answer one byte every 0.1 s, from the status line, in the
headers or in the body; `responses` where the server's side does not matter. Elapsed times are
only bounded from above, with generous slack.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import responses
from fakeapi import FakeTime, api_client
from jobkit import Netwatch
from slowhttp import ScriptedServer, dripping

from netwatch.clients.http import ApiClient, ApiNotSent, ApiUnavailable, RetryPolicy, make_session
from netwatch.clients.sigma import SigmaClient
from netwatch.errors import ExitCode, Stopped
from netwatch.outcome import Delivery
from netwatch.running.stopflag import StopFlag

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
# Where the answer starts dripping: what is sent at once, what is dripped, and the endless filler.
STAGES = {
    "status line": (b"", b"HTTP/1.1 200 ", b"O"),
    "headers": (OK_HEAD, b"X-Drip: ", b"a"),
    "body": (OK_HEAD + b"Content-Length: 100000\r\n\r\n", b'{"drip": "', b"a"),
}
BASE = "https://api.example.invalid"
URL = f"{BASE}/v1/things"
KEY = "host-7:offline:2026-11-22T10:00:00Z"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def real_client(url: str, *, timeout_s: float, deadline: Callable[[], float],
                check_stop: Callable[[], None] = lambda: None, max_tries: int = 1) -> ApiClient:
    """An ApiClient whose deadline follows real time, as deps.py builds it."""
    return ApiClient(
        name="sigma", base_url=url, token=None, token_source="NETWATCH_SIGMA_TOKEN", session=make_session(),
        timeout_s=timeout_s, retry=RetryPolicy(max_tries=max_tries, backoff_base_s=0.01),
        deadline=deadline, check_stop=check_stop,
    )


def run_deadline(seconds: float) -> Callable[[], float]:
    ends = time.monotonic() + seconds
    return lambda: ends - time.monotonic()


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_dripping_answer_ends_at_the_request_timeout(stage: str) -> None:
    with ScriptedServer(dripping(*STAGES[stage], total_s=10)) as server:
        api = real_client(server.url, timeout_s=0.5, deadline=run_deadline(60))
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match=r"Timeout \(no complete answer within 0.5s\) after 1 try"):
            api.request("GET", "/v1/things")
        assert time.monotonic() - started < 3
        assert len(server.heads) == 1


def test_the_run_deadline_bounds_a_request_with_a_longer_timeout() -> None:
    with ScriptedServer(dripping(*STAGES["body"], total_s=10)) as server:
        api = real_client(server.url, timeout_s=30, deadline=run_deadline(1.5), max_tries=4)
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match="would pass the job deadline") as err:
            api.request("GET", "/v1/things")
        assert time.monotonic() - started < 4
        assert len(server.heads) == 1
        assert not isinstance(err.value, ApiNotSent), "the request went out"


def test_a_timed_out_try_is_retried_like_any_timeout() -> None:
    with ScriptedServer(dripping(*STAGES["headers"], total_s=10)) as server:
        clock = FakeTime()
        api = api_client(server.url, timeout_s=0.3, fake_time=clock, retry=RetryPolicy(max_tries=3))
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match=r"Timeout .* after 3 tries"):
            api.request("GET", "/v1/things")
        assert time.monotonic() - started < 5
        server.wait_for_request(3)
        assert clock.waits == [0.5, 1.0]


def test_a_delivery_whose_answer_drips_is_pending_not_unsent() -> None:
    with ScriptedServer(dripping(*STAGES["body"], total_s=10)) as server:
        sigma = SigmaClient(real_client(server.url, timeout_s=0.5, deadline=run_deadline(60)))
        started = time.monotonic()
        delivery = sigma.send({"type": "HOST_OFFLINE"}, KEY)
        assert time.monotonic() - started < 3
    assert delivery.status == "pending" and delivery.http_status is None
    assert delivery.error is not None and "Timeout" in delivery.error


def test_a_stop_ends_a_request_in_progress_with_stopped() -> None:
    stop = StopFlag()
    with ScriptedServer(dripping(*STAGES["body"], total_s=20)) as server:
        api = real_client(server.url, timeout_s=30, deadline=run_deadline(60), check_stop=stop.check)

        def stop_once_seen() -> None:
            server.wait_for_request()
            stop.set(signal.SIGTERM)

        stopper = threading.Thread(target=stop_once_seen, daemon=True)
        stopper.start()
        started = time.monotonic()
        with pytest.raises(Stopped) as err:
            api.request("GET", "/v1/things")
        assert time.monotonic() - started < 10
        stopper.join(timeout=5)
    assert err.value.exit_code == ExitCode.STOPPED


def test_no_try_starts_once_stopped(rsps: responses.RequestsMock) -> None:
    stop = StopFlag()
    stop.set(signal.SIGINT)
    api = real_client(BASE, timeout_s=1, deadline=run_deadline(60), check_stop=stop.check)
    with pytest.raises(Stopped) as err:
        api.request("GET", "/v1/things")
    assert err.value.exit_code == ExitCode.INTERRUPTED
    assert len(rsps.calls) == 0


def test_a_delivery_the_deadline_never_let_out_is_unsent_and_calls_nothing(rsps: responses.RequestsMock) -> None:
    api = api_client(BASE, fake_time=FakeTime(budget_s=0.0))
    delivery = api.deliver("POST", "/v1/things", {"a": 1}, KEY, (201,))
    assert delivery == Delivery("unsent", None, "sigma API POST /v1/things: not sent, the run's deadline was used up")
    assert len(rsps.calls) == 0


def test_a_delivery_that_went_out_once_is_pending_when_the_deadline_ends_its_retries(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(URL, status=503)
    clock = FakeTime(budget_s=1.2)
    delivery = api_client(BASE, fake_time=clock).deliver("POST", "/v1/things", {"a": 1}, KEY, (201,))
    assert delivery.status == "pending" and delivery.http_status == 503
    assert delivery.error is not None and "deadline" in delivery.error
    assert len(rsps.calls) == 2
    assert clock.waits == [0.5]


def test_sigterm_during_a_dripping_sigma_answer_exits_143_and_counts_the_attempt(nw: Netwatch) -> None:
    # Dripping headers: the given-up try's thread stays blocked reading them, and must not hold the process.
    with ScriptedServer(dripping(*STAGES["headers"], total_s=30)) as sigma:
        nw.write_config(
            [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}],
            thresholds={"notify_initial": True},
            sigma={"base_url": sigma.url, "timeout_seconds": 30},
        )
        running = nw.start("run", "ping-sweep")
        try:
            sigma.wait_for_request()
            running.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            _, err = running.communicate(timeout=20)
        finally:
            if running.poll() is None:
                running.kill()
                running.communicate()
        assert running.returncode == 143, err
        assert time.monotonic() - signalled < 5
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    # The request went out: its attempt is spent, as for any request that failed on its way.
    [item] = nw.outbox()
    assert (item.subject, item.status, item.attempts) == ("lo-1", "pending", 1)
    assert item.last_error == "sigma API POST /v1/events: stopped during the request"
