"""Response bodies are read only up to MAX_BODY_BYTES (error bodies only for their excerpt); more fails the request.

Real loopback servers stream bodies far larger than the limit (made as they are sent, bounded in
time) or announce one and stall; `responses` checks the exact limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses
from fakeapi import FakeApis, api_client, flatten
from inproc import InProcess
from jobkit import ACCOUNT
from slowhttp import ScriptedServer, stalling, streaming

from netwatch.clients.http import MAX_BODY_BYTES, ApiRejected, ApiUnavailable
from netwatch.clients.segware import SegwareClient
from netwatch.outcome import Delivery

BASE = "https://segware.example.invalid"
HUGE = 256 * 1024 * 1024
HUGE_OK = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
# What a client that stopped reading at the limit lets the server send: the limit plus the
# loopback socket buffers of both ends.
STOPPED_READING = 3 * MAX_BODY_BYTES
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
EMPTY_PAGE = json.dumps({"content": [], "page": 0, "size": 500, "totalElements": 0, "totalPages": 0})


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def padded(text: str, size: int) -> str:
    """`text` followed by spaces up to `size` bytes: the same JSON, as long as wanted."""
    return text + " " * (size - len(text.encode()))


def segware(url: str, timeout_s: float = 2.0) -> SegwareClient:
    return SegwareClient(api_client(url, name="segware", timeout_s=timeout_s))


def read_window(client: SegwareClient) -> list[object]:
    return list(flatten(client.iter_event_pages(T0, T0 + timedelta(hours=1), codes=None, page_size=500,
                                                min_slice=timedelta(seconds=60))))


def test_a_body_streamed_past_the_limit_fails_the_request_and_the_client_hangs_up() -> None:
    with ScriptedServer(streaming(HUGE_OK, HUGE)) as server:
        with pytest.raises(ApiUnavailable, match=f"HTTP 200 body larger than the {MAX_BODY_BYTES} byte limit") as err:
            segware(server.url, timeout_s=20).get_account("1234")
        server.wait_for_hang_up()
        assert server.sent < STOPPED_READING
        assert len(server.heads) == 1, "not retried: the next try would get the same body"
    assert err.value.status == 200
    assert err.value.exit_code == 69


def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body_is_read() -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {400 * 1024 * 1024}\r\n\r\n[".encode()
    with ScriptedServer(stalling(head, total_s=10)) as server:
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match=f"larger than the {MAX_BODY_BYTES} byte limit"):
            read_window(segware(server.url, timeout_s=5))
        assert time.monotonic() - started < 3, "refused at the headers, without waiting for the body"


def test_an_events_page_of_exactly_the_limit_is_read_and_one_byte_more_fails_the_window(
    rsps: responses.RequestsMock,
) -> None:
    url = f"{BASE}/v1/events"
    rsps.get(url, body=padded(EMPTY_PAGE, MAX_BODY_BYTES))
    assert read_window(segware(BASE)) == []
    rsps.replace(responses.GET, url, body=padded(EMPTY_PAGE, MAX_BODY_BYTES + 1))
    with pytest.raises(ApiUnavailable, match="larger than"):
        read_window(segware(BASE))
    assert len(rsps.calls) == 2


def test_an_account_of_exactly_the_limit_is_read_and_one_byte_more_is_unavailable(
    rsps: responses.RequestsMock,
) -> None:
    url = f"{BASE}/v1/accounts/1234"
    rsps.get(url, body=padded(json.dumps(ACCOUNT), MAX_BODY_BYTES))
    account = segware(BASE).get_account("1234")
    assert account is not None and account.name == ACCOUNT["name"]
    rsps.replace(responses.GET, url, body=padded(json.dumps(ACCOUNT), MAX_BODY_BYTES + 1))
    with pytest.raises(ApiUnavailable, match="larger than"):
        segware(BASE).get_account("1234")
    assert len(rsps.calls) == 2


def test_an_error_body_is_read_only_for_its_excerpt() -> None:
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 8192
    with ScriptedServer(stalling(head, total_s=10)) as server:
        started = time.monotonic()
        with pytest.raises(ApiRejected) as err:
            api_client(server.url, timeout_s=5).request("GET", "/v1/things")
        assert time.monotonic() - started < 3, "the rest of the body was never waited for"
    assert err.value.detail == "x" * 157 + "..."


def test_an_accepted_delivery_is_sent_reading_only_the_start_of_its_answer() -> None:
    with ScriptedServer(streaming(b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n", HUGE)) as server:
        delivery = api_client(server.url, timeout_s=20).deliver("POST", "/v1/events", {"a": 1}, "key-1", (201,))
        server.wait_for_hang_up()
        assert server.sent < STOPPED_READING
    assert delivery == Delivery("sent", 201, None)


def test_event_scan_over_a_page_past_the_limit_exits_69_and_changes_nothing(nwi: InProcess) -> None:
    with ScriptedServer(streaming(HUGE_OK, HUGE)) as segware_api:
        nwi.write_config([], segware={"base_url": segware_api.url}, event_scan={"codes": {"E130": 50}})
        done = nwi.run("run", "event-scan")
    assert done.returncode == 69, done.stderr
    assert "byte limit" in done.stderr and "Traceback" not in done.stderr
    assert nwi.rows("triggers") == [] and nwi.rows("register_log") == [] and nwi.rows("scan_counts") == []
    assert [r["outcome"] for r in nwi.rows("job_runs")] == ["failed"]


def test_an_account_past_the_limit_holds_its_event_back_without_spending_an_attempt(
    nwi: InProcess, fake: FakeApis
) -> None:
    with ScriptedServer(streaming(HUGE_OK, HUGE)) as segware_api:
        nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234"}],
                         thresholds={"notify_initial": True}, sigma={"base_url": fake.url},
                         segware={"base_url": segware_api.url})
        done = nwi.sweep()
    assert done.returncode == 69, done.stderr
    [item] = nwi.outbox()
    assert (item.status, item.attempts) == ("pending", 0)
    assert "byte limit" in (item.last_error or "")
    assert fake.requests_to("POST", "/v1/events") == []
