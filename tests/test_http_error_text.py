"""Error texts built from a server's answer are short, one line, free of control characters and of our token.

The 4xx detail, Segware's 422 `error` field and the descriptions of malformed bodies all quote
what a server sent; a hostile or broken server must not be able to flood an error (and so a log
line or a stored row), forge a line or move a terminal's cursor through them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses
from fakeapi import api_client, flatten
from jobkit import ACCOUNT
from slowhttp import ScriptedServer, stalling

from netwatch.clients.http import ApiRejected, ApiUnavailable
from netwatch.clients.segware import SegwareClient
from netwatch.excerpt import one_line

BASE = "https://segware.example.invalid"
TOKEN = "tok-s3cret-value"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
HOSTILE = "bad\x1b[2J\r\nERROR forged line\x00\u2028\x9b"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
# Longer than any message about a server's answer may be.
MESSAGE_MAX = 600


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def assert_clean(text: str) -> None:
    assert not CONTROL.search(text), text
    assert len(text) < MESSAGE_MAX, len(text)


def segware(token: str | None = TOKEN) -> SegwareClient:
    return SegwareClient(api_client(BASE, name="segware", token=token))


def read_window(client: SegwareClient) -> list[object]:
    return list(flatten(client.iter_event_pages(T0, T0 + timedelta(hours=1), codes=None, page_size=500,
                                                min_slice=timedelta(seconds=60))))


def page(*events: dict[str, object]) -> str:
    return json.dumps({"content": list(events), "page": 0, "size": 500, "totalElements": len(events),
                       "totalPages": 1})


def test_one_line_is_one_short_printable_line() -> None:
    assert one_line("  a\n\tb  ", 160) == "a b"
    assert one_line(HOSTILE, 160) == "bad\\x1b[2J ERROR forged line\\x00 \\x9b"
    assert one_line("x" * 1000, 20) == "x" * 17 + "..."
    assert_clean(one_line(HOSTILE * 1000, 160))


def test_a_4xx_detail_escapes_control_characters_and_stays_short(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", status=400, body=HOSTILE * 500)
    with pytest.raises(ApiRejected) as err:
        segware().get_account("1234")
    assert_clean(err.value.message)
    assert err.value.detail.startswith("bad\\x1b[2J ERROR forged line\\x00")
    assert len(err.value.detail) <= 160


def test_a_hostile_reason_phrase_is_escaped_when_the_body_is_empty() -> None:
    head = b"HTTP/1.1 400 Bad\x1b[2J\x85Thing\r\nContent-Length: 0\r\n\r\n"
    with ScriptedServer(stalling(head, total_s=10)) as server:
        with pytest.raises(ApiRejected) as err:
            api_client(server.url).request("GET", "/v1/things")
    assert err.value.detail == "Bad\\x1b[2J Thing"
    assert_clean(err.value.message)


def test_the_422_error_field_is_escaped_and_bounded(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/events", status=422, json={"error": HOSTILE + "y" * 100_000})
    with pytest.raises(ApiRejected) as err:
        read_window(segware())
    assert_clean(err.value.message)
    assert err.value.detail.startswith("error 'bad\\x1b[2J ERROR forged line")


def test_a_malformed_timestamp_is_described_without_its_whole_value(rsps: responses.RequestsMock) -> None:
    event = {"id": "e1", "account": "1234", "cuc": "c", "code": "E130", "partition": "01", "zone": "003",
             "receivedAt": HOSTILE + "9" * 100_000}
    rsps.get(f"{BASE}/v1/events", body=page(event))
    with pytest.raises(ApiUnavailable, match="malformed page") as err:
        read_window(segware())
    assert_clean(err.value.message)


def test_a_mismatched_account_is_described_without_its_whole_value(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", json={**ACCOUNT, "account": HOSTILE + "z" * 100_000})
    with pytest.raises(ApiUnavailable, match=r"malformed response .*asked for account '1234'") as err:
        segware().get_account("1234")
    assert_clean(err.value.message)


def test_a_body_that_is_not_utf8_json_is_malformed_not_a_crash(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", body=b"\xff\xfe{\x1b")
    with pytest.raises(ApiUnavailable, match="malformed response") as err:
        segware().get_account("1234")
    assert_clean(err.value.message)
