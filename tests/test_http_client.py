"""ApiClient: retries, backoff, Retry-After, deadline and error mapping (responses for edge cases)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
import responses
from fakeapi import FakeTime, api_client

from netwatch.clients.http import (
    ApiAuthError,
    ApiClient,
    ApiRejected,
    ApiUnavailable,
    RetryPolicy,
    make_session,
    parse_retry_after,
)
from netwatch.errors import ConfigError, ExitCode, NetwatchError, ServiceUnavailable

BASE = "https://api.example.invalid"
URL = f"{BASE}/v1/things"
TOKEN = "tok-s3cret-value"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_session_has_our_user_agent_and_no_urllib3_retries() -> None:
    session = make_session()
    assert session.headers["User-Agent"].startswith("netwatch/")
    for prefix in ("http://", "https://"):
        retries = session.get_adapter(prefix + "x.invalid").max_retries
        assert retries.total == 0
        assert retries.respect_retry_after_header is False


def test_retry_policy_backoff_is_full_jitter_capped() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff_s(n, 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff_s(3, 0.25) == 0.5
    with pytest.raises(ValueError):
        RetryPolicy(max_tries=0)


def test_error_classes_carry_exit_codes() -> None:
    assert issubclass(ApiAuthError, ConfigError) and ApiAuthError("x", status=401).exit_code == ExitCode.CONFIG
    assert issubclass(ApiUnavailable, ServiceUnavailable)
    assert ApiUnavailable("x").exit_code == ExitCode.UNAVAILABLE
    assert issubclass(ApiRejected, NetwatchError)


def test_bearer_token_sent_only_when_configured(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, json={})
    rsps.get(URL, json={})
    api_client(BASE, token=TOKEN).request("GET", "/v1/things")
    api_client(BASE, token=None).request("GET", "/v1/things")
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in rsps.calls[1].request.headers
    assert rsps.calls[1].request.headers["User-Agent"].startswith("netwatch/")


def test_every_request_has_a_connect_and_read_timeout_capped_by_the_deadline(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(URL, json={})
    rsps.get(URL, json={})
    api_client(BASE, timeout_s=5.0).request("GET", "/v1/things")
    api_client(BASE, timeout_s=5.0, fake_time=FakeTime(budget_s=1.5)).request("GET", "/v1/things")
    assert rsps.calls[0].request.req_kwargs["timeout"] == (5.0, 5.0)
    assert rsps.calls[1].request.req_kwargs["timeout"] == (1.5, 1.5)


def test_params_headers_and_json_body_are_passed(rsps: responses.RequestsMock) -> None:
    rsps.post(
        URL,
        status=201,
        match=[
            responses.matchers.query_param_matcher({"page": "0"}),
            responses.matchers.json_params_matcher({"a": 1}),
            responses.matchers.header_matcher({"X-Extra": "yes"}),
        ],
    )
    response = api_client(BASE).request(
        "POST", "/v1/things", params={"page": 0}, json_body={"a": 1}, headers={"X-Extra": "yes"}, accept=(201,)
    )
    assert response.status_code == 201


def test_accepted_non_200_status_is_returned(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=404, json={})
    assert api_client(BASE).request("GET", "/v1/things", accept=(200, 404)).status_code == 404


def test_503_then_200_succeeds_after_one_backoff(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=503)
    rsps.get(URL, json={"ok": True})
    clock = FakeTime()
    response = api_client(BASE, fake_time=clock).request("GET", "/v1/things")
    assert response.json() == {"ok": True}
    assert clock.waits == [0.5]


def test_503_forever_gives_up_after_max_attempts_with_growing_bounded_waits(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(URL, status=503)
    clock = FakeTime()
    policy = RetryPolicy(max_tries=6, backoff_base_s=0.5, backoff_max_s=4.0)
    with pytest.raises(ApiUnavailable) as err:
        api_client(BASE, fake_time=clock, retry=policy).request("GET", "/v1/things")
    assert len(rsps.calls) == 6
    assert clock.waits == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert err.value.status == 503
    assert "sigma API GET /v1/things" in err.value.message and "HTTP 503" in err.value.message


def test_jitter_scales_the_wait(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=502)
    rsps.get(URL, json={})
    clock = FakeTime()
    api = ApiClient(
        name="segware",
        base_url=BASE,
        token=None,
        token_source="NETWATCH_SEGWARE_TOKEN",
        session=make_session(),
        timeout_s=1.0,
        retry=RetryPolicy(),
        deadline=clock.deadline,
        sleep=clock.sleep,
        jitter=lambda: 0.5,
    )
    api.request("GET", "/v1/things")
    assert clock.waits == [0.25]


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (requests.ConnectionError("refused"), "ConnectionError"),
        (requests.exceptions.ReadTimeout("slow"), "ReadTimeout"),
        (requests.exceptions.ConnectTimeout("slow"), "ConnectTimeout"),
    ],
)
def test_connection_errors_and_timeouts_are_retried_then_unavailable(
    rsps: responses.RequestsMock, error: Exception, name: str
) -> None:
    rsps.get(URL, body=error)
    clock = FakeTime()
    with pytest.raises(ApiUnavailable) as err:
        api_client(BASE, fake_time=clock).request("GET", "/v1/things")
    assert len(rsps.calls) == 4
    assert err.value.status is None
    assert name in err.value.message


def test_connection_error_then_success(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, body=requests.ConnectionError("reset"))
    rsps.get(URL, json={})
    assert api_client(BASE).request("GET", "/v1/things").status_code == 200


def test_429_retry_after_seconds_is_honoured(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=429, headers={"Retry-After": "7"})
    rsps.get(URL, json={})
    clock = FakeTime()
    assert api_client(BASE, fake_time=clock).request("GET", "/v1/things").status_code == 200
    assert clock.waits == [7.0]


def test_429_retry_after_http_date_is_honoured(rsps: responses.RequestsMock) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    rsps.get(URL, status=429, headers={"Retry-After": "Sun, 22 Nov 2026 10:00:12 GMT"})
    rsps.get(URL, json={})
    clock = FakeTime()
    api = ApiClient(
        name="sigma",
        base_url=BASE,
        token=None,
        token_source="NETWATCH_SIGMA_TOKEN",
        session=make_session(),
        timeout_s=1.0,
        retry=RetryPolicy(),
        deadline=clock.deadline,
        sleep=clock.sleep,
        clock=now.timestamp,
    )
    assert api.request("GET", "/v1/things").status_code == 200
    assert clock.waits == [12.0]


def test_429_without_retry_after_uses_backoff(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=429)
    rsps.get(URL, json={})
    clock = FakeTime()
    api_client(BASE, fake_time=clock).request("GET", "/v1/things")
    assert clock.waits == [0.5]


def test_retry_after_past_the_deadline_gives_up_without_sleeping(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=429, headers={"Retry-After": "3600"})
    clock = FakeTime(budget_s=60.0)
    with pytest.raises(ApiUnavailable) as err:
        api_client(BASE, fake_time=clock).request("GET", "/v1/things")
    assert clock.waits == []
    assert len(rsps.calls) == 1
    assert err.value.status == 429
    assert err.value.retry_after_s == 3600.0
    assert "deadline" in err.value.message


def test_backoff_never_sleeps_past_the_deadline(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=500)
    clock = FakeTime(budget_s=1.2)
    with pytest.raises(ApiUnavailable) as err:
        api_client(BASE, fake_time=clock).request("GET", "/v1/things")
    assert clock.waits == [0.5]
    assert sum(clock.waits) < 1.2
    assert len(rsps.calls) == 2
    assert err.value.status == 500


def test_no_request_once_the_deadline_has_passed(rsps: responses.RequestsMock) -> None:
    with pytest.raises(ApiUnavailable) as err:
        api_client(BASE, fake_time=FakeTime(budget_s=0.0)).request("GET", "/v1/things")
    assert len(rsps.calls) == 0
    assert "deadline" in err.value.message


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_names_the_token_source_never_the_token(rsps: responses.RequestsMock, status: int) -> None:
    rsps.get(URL, status=status, body=f"bad token {TOKEN}")
    with pytest.raises(ApiAuthError) as err:
        api_client(BASE, token=TOKEN).request("GET", "/v1/things")
    assert len(rsps.calls) == 1
    assert err.value.status == status
    assert err.value.message == (
        f"sigma API rejected the token (HTTP {status}) on GET /v1/things: check NETWATCH_SIGMA_TOKEN"
    )
    assert TOKEN not in str(err.value)


def test_auth_failure_without_a_token_asks_for_one(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=401)
    with pytest.raises(ApiAuthError, match=r"requires a token .*set NETWATCH_SIGMA_TOKEN"):
        api_client(BASE, token=None).request("GET", "/v1/things")


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_other_4xx_is_rejected_without_retry(rsps: responses.RequestsMock, status: int) -> None:
    rsps.get(URL, status=status, json={"error": "nope"})
    clock = FakeTime()
    with pytest.raises(ApiRejected) as err:
        api_client(BASE, fake_time=clock).request("GET", "/v1/things")
    assert len(rsps.calls) == 1
    assert clock.waits == []
    assert err.value.status == status
    assert err.value.detail == '{"error": "nope"}'
    assert f"HTTP {status}" in err.value.message


def test_rejected_detail_is_short_one_line_and_redacts_an_echoed_token(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=400, body=f"bad\nrequest {TOKEN} " + "x" * 500)
    with pytest.raises(ApiRejected) as err:
        api_client(BASE, token=TOKEN).request("POST", "/v1/things", json_body={"k": "body-secret"})
    assert TOKEN not in err.value.message
    assert "<redacted>" in err.value.detail
    assert "\n" not in err.value.message
    assert len(err.value.detail) <= 160


def test_messages_never_contain_token_headers_or_request_body(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=503)
    with pytest.raises(ApiUnavailable) as err:
        api_client(BASE, token=TOKEN).request(
            "POST", "/v1/things", json_body={"k": "body-secret"}, headers={"X-Key": "hdr-secret"}
        )
    text = str(err.value)
    for secret in (TOKEN, "body-secret", "hdr-secret", "Authorization"):
        assert secret not in text
    assert "POST /v1/things" in text


def test_client_repr_hides_the_token() -> None:
    assert TOKEN not in repr(api_client(BASE, token=TOKEN))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Sun, 22 Nov 2026 10:01:00 GMT", 60.0),
        ("Sun, 22 Nov 2026 09:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(header, now) == expected


def test_parse_retry_after_roundtrips_a_formatted_date() -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    later = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)
    assert parse_retry_after(format_datetime(later, usegmt=True), now.timestamp()) == 30.0


def test_refused_loopback_connection_is_unavailable_through_a_real_session() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeTime()
    with pytest.raises(ApiUnavailable, match="ConnectionError after 4 tries") as err:
        api_client(f"http://127.0.0.1:{port}", fake_time=clock).request("GET", "/v1/things")
    assert err.value.status is None
    assert clock.waits == [0.5, 1.0, 2.0]


def test_each_client_takes_the_environments_proxy_and_ca_bundle(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looked up once per client (not per try, as Session.request would), with NO_PROXY per host.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "direct.example.invalid")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/netwatch/ca.pem")
    rsps.get(URL, json={})
    rsps.get("https://direct.example.invalid/v1/things", json={})
    api_client(BASE).request("GET", "/v1/things")
    api_client("https://direct.example.invalid").request("GET", "/v1/things")
    proxied, direct = (call.request.req_kwargs for call in rsps.calls)  # type: ignore[attr-defined]
    assert proxied["proxies"].get("https") == "http://127.0.0.1:9"
    assert "https" not in direct["proxies"]
    assert proxied["verify"] == direct["verify"] == "/etc/netwatch/ca.pem"
    assert proxied["stream"] is True and proxied["timeout"] == (2.0, 2.0)
