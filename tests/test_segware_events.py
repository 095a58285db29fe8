"""SegwareClient.iter_event_pages: paging, duplicates, 422 splitting, failures, and runs against FakeApis."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from fakeapi import FakeApis, FakeTime, api_client, flatten
from responses import matchers

from netwatch.clients.http import ApiAuthError, ApiRejected, ApiUnavailable
from netwatch.clients.segware import SegwareClient, SegwareEvent, format_timestamp
from netwatch.errors import ExitCode

BASE = "https://segware.example.invalid"
URL = f"{BASE}/v1/events"
TOKEN = "segware-tok-s3cret"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MIN_SLICE = timedelta(seconds=60)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def segware(clock: FakeTime | None = None, token: str | None = TOKEN, base_url: str = BASE) -> SegwareClient:
    return SegwareClient(api_client(base_url, name="segware", token=token, fake_time=clock))


def event_json(n: int, at: datetime, code: str = "E130") -> dict[str, Any]:
    return {
        "id": f"ev-{n:06d}",
        "account": "1234",
        "cuc": "CUC-77",
        "code": code,
        "partition": "01",
        "zone": "003",
        "receivedAt": format_timestamp(at),
    }


def page_json(content: list[dict[str, Any]], page: int, size: int, total: int) -> dict[str, Any]:
    return {
        "content": content,
        "page": page,
        "size": size,
        "totalElements": total,
        "totalPages": -(-total // size),
    }


def query(start: datetime, end: datetime, page: int, size: int, **extra: str) -> dict[str, str]:
    return {"from": format_timestamp(start), "to": format_timestamp(end), "page": str(page), "size": str(size), **extra}


def add_page(
    rsps: responses.RequestsMock, params: dict[str, str], *, status: int = 200, body: Any = None, **kwargs: Any
) -> None:
    rsps.get(URL, status=status, json=body, match=[matchers.query_param_matcher(params)], **kwargs)


def too_many(max_results: int = 700) -> dict[str, Any]:
    return {"error": "too_many_results", "maxResults": max_results}


def sent_windows(rsps: responses.RequestsMock) -> list[tuple[str, str, str]]:
    windows = []
    for call in rsps.calls:
        q = parse_qs(urlsplit(call.request.url).query)
        windows.append((q["from"][0], q["to"][0], q["page"][0]))
    return windows


def read(client: SegwareClient, start: datetime = T0, end: datetime = T0 + HOUR, **kwargs: Any) -> list[SegwareEvent]:
    """Every event of the window; each page read yields a non-empty list of at most a page's events."""
    options: dict[str, Any] = {"codes": None, "page_size": 3, "min_slice": MIN_SLICE, **kwargs}
    pages = list(client.iter_event_pages(start, end, **options))
    assert all(0 < len(events) <= options["page_size"] for events in pages)
    return list(flatten(pages))


def ids(events: list[SegwareEvent]) -> list[str]:
    return [e.id for e in events]


def test_event_fields_are_parsed() -> None:
    assert format_timestamp(T0) == "2026-11-22T10:00:00Z"
    assert format_timestamp(T0 + timedelta(microseconds=500_000)) == "2026-11-22T10:00:00.500000Z"


def test_reads_three_pages_with_contract_params(rsps: responses.RequestsMock) -> None:
    events = [event_json(n, T0 + timedelta(minutes=n)) for n in range(7)]
    for page in range(3):
        add_page(rsps, query(T0, T0 + HOUR, page, 3), body=page_json(events[page * 3 : page * 3 + 3], page, 3, 7))
    got = read(segware())
    assert ids(got) == [f"ev-{n:06d}" for n in range(7)]
    assert got[1] == SegwareEvent("ev-000001", "1234", "CUC-77", "E130", "01", "003", T0 + timedelta(minutes=1))
    assert got[1].received_at.tzinfo is UTC
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "codes" not in rsps.calls[0].request.url


def test_codes_are_sorted_unique_and_comma_separated(rsps: responses.RequestsMock) -> None:
    add_page(rsps, query(T0, T0 + HOUR, 0, 3, codes="A100,E130"), body=page_json([], 0, 3, 0))
    assert read(segware(), codes=["E130", "A100", "E130"]) == []
    assert len(rsps.calls) == 1


def test_no_watched_codes_or_an_empty_window_reads_nothing(rsps: responses.RequestsMock) -> None:
    assert read(segware(), codes=set()) == []
    assert read(segware(), end=T0) == []
    assert len(rsps.calls) == 0


def test_an_unwatched_code_from_the_server_is_skipped(rsps: responses.RequestsMock) -> None:
    content = [event_json(1, T0, "E130"), event_json(2, T0, "R999")]
    add_page(rsps, query(T0, T0 + HOUR, 0, 3, codes="E130"), body=page_json(content, 0, 3, 2))
    assert ids(read(segware(), codes=["E130"])) == ["ev-000001"]


def test_an_id_on_two_pages_is_counted_once(rsps: responses.RequestsMock) -> None:
    e = [event_json(n, T0 + timedelta(minutes=n)) for n in range(6)]
    # A late arrival before page 1 shifted ev-2 from the end of page 0 to the start of page 1.
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json(e[0:3], 0, 3, 6))
    add_page(rsps, query(T0, T0 + HOUR, 1, 3), body=page_json([e[2], e[3], e[4]], 1, 3, 7))
    add_page(rsps, query(T0, T0 + HOUR, 2, 3), body=page_json([e[5]], 2, 3, 7))
    assert ids(read(segware())) == [f"ev-{n:06d}" for n in range(6)]


def test_same_instant_ids_are_not_compared_by_our_collation(rsps: responses.RequestsMock) -> None:
    # A case-insensitive server collation sorts "b" before "C"; Python would sort "C" first.
    same = [{**event_json(0, T0), "id": "b"}, {**event_json(1, T0), "id": "C"}]
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json(same, 0, 3, 2))
    assert ids(read(segware())) == ["b", "C"]


def test_too_many_results_splits_recursively_into_half_open_halves(rsps: responses.RequestsMock) -> None:
    m15, m30 = T0 + timedelta(minutes=15), T0 + timedelta(minutes=30)
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), status=422, body=too_many())
    add_page(rsps, query(T0, m30, 0, 3), status=422, body=too_many())
    add_page(rsps, query(T0, m15, 0, 3), body=page_json([event_json(1, T0)], 0, 3, 1))
    add_page(rsps, query(m15, m30, 0, 3), body=page_json([event_json(2, m15)], 0, 3, 1))
    add_page(rsps, query(m30, T0 + HOUR, 0, 3), body=page_json([event_json(3, m30)], 0, 3, 1))
    assert ids(read(segware())) == ["ev-000001", "ev-000002", "ev-000003"]
    assert sent_windows(rsps) == [
        ("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", "0"),
        ("2026-11-22T10:00:00Z", "2026-11-22T10:30:00Z", "0"),
        ("2026-11-22T10:00:00Z", "2026-11-22T10:15:00Z", "0"),
        ("2026-11-22T10:15:00Z", "2026-11-22T10:30:00Z", "0"),
        ("2026-11-22T10:30:00Z", "2026-11-22T11:00:00Z", "0"),
    ]


def test_split_midpoint_keeps_microseconds(rsps: responses.RequestsMock) -> None:
    end = T0 + timedelta(seconds=1)
    add_page(rsps, query(T0, end, 0, 3), status=422, body=too_many())
    rsps.get(URL, json=page_json([], 0, 3, 0))
    assert read(segware(), end=end, min_slice=timedelta(milliseconds=1)) == []
    assert sent_windows(rsps)[1:] == [
        ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00.500000Z", "0"),
        ("2026-11-22T10:00:00.500000Z", "2026-11-22T10:00:01Z", "0"),
    ]


def test_a_minimum_slice_still_too_large_fails_the_window(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=422, json=too_many(700))
    with pytest.raises(ApiUnavailable) as err:
        read(segware(), min_slice=timedelta(minutes=20))
    assert "more than 700 events in a slice of 900 s" in err.value.message
    assert "window not read completely" in err.value.message
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    # 60 min -> 30 -> 15 (<= 20: give up).
    assert [w[:2] for w in sent_windows(rsps)] == [
        ("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"),
        ("2026-11-22T10:00:00Z", "2026-11-22T10:30:00Z"),
        ("2026-11-22T10:00:00Z", "2026-11-22T10:15:00Z"),
    ]


def test_too_many_results_on_a_later_page_resumes_without_double_counting(rsps: responses.RequestsMock) -> None:
    m5, m10, m20 = (T0 + timedelta(minutes=n) for n in (5, 10, 20))
    m35 = T0 + timedelta(minutes=35)
    # Five events (ev-2 .. ev-6) share 10:10, more than two pages of size 2.
    at_m10 = [event_json(n, m10) for n in range(2, 7)]
    first = [event_json(1, m5), *at_m10]
    for page in range(3):
        add_page(rsps, query(T0, T0 + HOUR, page, 2), body=page_json(first[page * 2 : page * 2 + 2], page, 2, 9))
    add_page(rsps, query(T0, T0 + HOUR, 3, 2), status=422, body=too_many())
    # The rest [10:10, 11:00) is split; all of 10:10 comes again, over three pages, and is skipped.
    rest = [*at_m10, event_json(7, m20)]
    for page in range(3):
        add_page(rsps, query(m10, m35, page, 2), body=page_json(rest[page * 2 : page * 2 + 2], page, 2, 6))
    add_page(rsps, query(m35, T0 + HOUR, 0, 2), body=page_json([event_json(8, m35)], 0, 2, 1))
    assert ids(read(segware(), page_size=2)) == [f"ev-{n:06d}" for n in range(1, 9)]
    assert len(rsps.calls) == 8


def test_another_422_is_rejected(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=422, json={"error": "bad_range"})
    with pytest.raises(ApiRejected, match="HTTP 422"):
        read(segware())


def test_rate_limit_is_honoured_then_read(rsps: responses.RequestsMock) -> None:
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), status=429, headers={"Retry-After": "7"})
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json([event_json(1, T0)], 0, 3, 1))
    clock = FakeTime()
    assert ids(read(segware(clock))) == ["ev-000001"]
    assert clock.waits == [7.0]


def test_server_error_is_retried_then_read(rsps: responses.RequestsMock) -> None:
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), status=502)
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json([event_json(1, T0)], 0, 3, 1))
    clock = FakeTime()
    assert ids(read(segware(clock))) == ["ev-000001"]
    assert len(clock.waits) == 1


def test_auth_failure_raises_without_the_token(rsps: responses.RequestsMock) -> None:
    rsps.get(URL, status=401)
    with pytest.raises(ApiAuthError) as err:
        read(segware())
    assert "NETWATCH_SEGWARE_TOKEN" in err.value.message
    assert TOKEN not in str(err.value)


GOOD_PAGE = page_json([event_json(1, T0)], 0, 3, 1)


@pytest.mark.parametrize(
    "body",
    [
        "<html>proxy error</html>",
        json.dumps([event_json(1, T0)]),
        json.dumps({**GOOD_PAGE, "content": {"id": "ev-1"}}),
        json.dumps({**GOOD_PAGE, "content": [{k: v for k, v in event_json(1, T0).items() if k != "zone"}]}),
        json.dumps({**GOOD_PAGE, "content": [{**event_json(1, T0), "id": ""}]}),
        json.dumps({**GOOD_PAGE, "content": [{**event_json(1, T0), "receivedAt": "2026-11-22T10:00:00"}]}),
        json.dumps({**GOOD_PAGE, "content": [{**event_json(1, T0), "receivedAt": "yesterday"}]}),
        json.dumps({k: v for k, v in GOOD_PAGE.items() if k != "totalPages"}),
        json.dumps({**GOOD_PAGE, "content": [event_json(n, T0) for n in range(4)]}),
    ],
)
def test_malformed_page_is_unavailable(rsps: responses.RequestsMock, body: str) -> None:
    rsps.get(URL, body=body)
    with pytest.raises(ApiUnavailable, match="malformed page") as err:
        read(segware())
    assert err.value.exit_code == ExitCode.UNAVAILABLE


def test_malformed_later_page_fails_after_earlier_events(rsps: responses.RequestsMock) -> None:
    add_page(rsps, query(T0, T0 + HOUR, 0, 1), body=page_json([event_json(1, T0)], 0, 1, 2))
    add_page(rsps, query(T0, T0 + HOUR, 1, 1), body="not json")
    events = flatten(segware().iter_event_pages(T0, T0 + HOUR, codes=None, page_size=1, min_slice=MIN_SLICE))
    assert next(events).id == "ev-000001"
    with pytest.raises(ApiUnavailable, match=r"page 1 .*malformed page"):
        next(events)


def test_events_outside_the_window_are_skipped(rsps: responses.RequestsMock) -> None:
    content = [
        event_json(1, T0 - timedelta(seconds=1)),
        event_json(2, T0),
        event_json(3, T0 + HOUR - timedelta(microseconds=1)),
        event_json(4, T0 + HOUR),
    ]
    add_page(rsps, query(T0, T0 + HOUR, 0, 4), body=page_json(content, 0, 4, 4))
    assert ids(read(segware(), page_size=4)) == ["ev-000002", "ev-000003"]


def test_an_empty_page_ends_the_query_when_nothing_more_is_announced(rsps: responses.RequestsMock) -> None:
    three = [event_json(n, T0 + timedelta(minutes=n)) for n in range(3)]
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json([], 0, 3, 0))
    assert read(segware()) == []
    # A last page that comes back empty is fine once every announced event was served.
    add_page(rsps, query(T0, T0 + 2 * HOUR, 0, 3), body={**page_json(three, 0, 3, 3), "totalPages": 2})
    add_page(rsps, query(T0, T0 + 2 * HOUR, 1, 3), body={**page_json([], 1, 3, 3), "totalPages": 2})
    assert ids(read(segware(), end=T0 + 2 * HOUR)) == ["ev-000000", "ev-000001", "ev-000002"]
    assert len(rsps.calls) == 3


def test_an_empty_page_before_the_last_is_unavailable(rsps: responses.RequestsMock) -> None:
    events = [event_json(n, T0 + timedelta(minutes=n)) for n in range(9)]
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json(events[:3], 0, 3, 9))
    add_page(rsps, query(T0, T0 + HOUR, 1, 3), body=page_json([], 1, 3, 9))
    got: list[SegwareEvent] = []
    with pytest.raises(ApiUnavailable, match="incomplete read: page 1 of 3 is empty") as err:
        got.extend(flatten(segware().iter_event_pages(T0, T0 + HOUR, codes=None, page_size=3, min_slice=MIN_SLICE)))
    assert len(got) == 3
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert len(rsps.calls) == 2


@pytest.mark.parametrize(
    "pages",
    [
        # One page that holds fewer events than it announces.
        [page_json([event_json(1, T0), event_json(2, T0)], 0, 3, 3)],
        # The count shrinks while paging, so paging stops one page early.
        [
            page_json([event_json(n, T0 + timedelta(minutes=n)) for n in range(3)], 0, 3, 7),
            page_json([event_json(n, T0 + timedelta(minutes=n)) for n in range(3, 6)], 1, 3, 6),
        ],
        # An empty last page, but events announced are missing.
        [
            page_json([event_json(n, T0 + timedelta(minutes=n)) for n in range(3)], 0, 3, 4),
            page_json([], 1, 3, 4),
        ],
    ],
)
def test_fewer_events_than_announced_is_unavailable(rsps: responses.RequestsMock, pages: list[dict[str, Any]]) -> None:
    for number, body in enumerate(pages):
        add_page(rsps, query(T0, T0 + HOUR, number, 3), body=body)
    with pytest.raises(ApiUnavailable, match="incomplete read") as err:
        read(segware())
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert len(rsps.calls) == len(pages)


def test_duplicates_count_towards_the_announced_total(rsps: responses.RequestsMock) -> None:
    # Three events announced; ev-1 is shifted onto page 1 and served twice: four served, three counted.
    add_page(rsps, query(T0, T0 + HOUR, 0, 2), body=page_json([event_json(0, T0), event_json(1, T0)], 0, 2, 3))
    add_page(rsps, query(T0, T0 + HOUR, 1, 2), body=page_json([event_json(1, T0), event_json(2, T0)], 1, 2, 3))
    assert ids(read(segware(), page_size=2)) == ["ev-000000", "ev-000001", "ev-000002"]


@pytest.mark.parametrize(
    "pages",
    [
        [page_json([event_json(1, T0 + timedelta(minutes=5)), event_json(2, T0 + timedelta(minutes=3))], 0, 3, 2)],
        [
            page_json([event_json(1, T0 + timedelta(minutes=5)), event_json(2, T0 + timedelta(minutes=9))], 0, 2, 3),
            page_json([event_json(3, T0 + timedelta(minutes=7))], 1, 2, 3),
        ],
    ],
)
def test_an_event_out_of_order_is_unavailable(rsps: responses.RequestsMock, pages: list[dict[str, Any]]) -> None:
    size = pages[0]["size"]
    for number, body in enumerate(pages):
        add_page(rsps, query(T0, T0 + HOUR, number, size), body=body)
    with pytest.raises(ApiUnavailable, match="events out of order") as err:
        read(segware(), page_size=size)
    assert err.value.exit_code == ExitCode.UNAVAILABLE


def test_an_earlier_event_shifted_onto_the_next_page_is_counted_once(rsps: responses.RequestsMock) -> None:
    e = [event_json(n, T0 + timedelta(minutes=n + 1)) for n in range(6)]
    # Two late arrivals at 10:00 shifted ev-1 and ev-2 onto page 1; ev-1 is older than the last yielded.
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json(e[0:3], 0, 3, 6))
    add_page(rsps, query(T0, T0 + HOUR, 1, 3), body=page_json([e[1], e[2], e[3]], 1, 3, 8))
    add_page(rsps, query(T0, T0 + HOUR, 2, 3), body=page_json([e[4], e[5]], 2, 3, 8))
    assert ids(read(segware())) == [f"ev-{n:06d}" for n in range(6)]


KEY_LIMITS = {"account": 64, "cuc": 64, "code": 32}


@pytest.mark.parametrize("field", sorted(KEY_LIMITS))
def test_a_key_field_too_long_for_the_database_is_unavailable(rsps: responses.RequestsMock, field: str) -> None:
    limit = KEY_LIMITS[field]
    longest = {**event_json(1, T0), field: "x" * limit}
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json([longest], 0, 3, 1))
    assert len(read(segware(), codes=None)) == 1
    add_page(rsps, query(T0, T0 + 2 * HOUR, 0, 3), body=page_json([{**longest, field: "x" * (limit + 1)}], 0, 3, 1))
    with pytest.raises(ApiUnavailable, match=f"malformed page .*'{field}' is longer than {limit} characters") as err:
        read(segware(), end=T0 + 2 * HOUR, codes=None)
    assert "x" * (limit + 1) not in err.value.message


def test_a_too_long_partition_or_zone_is_unknown_and_a_long_id_is_kept(rsps: responses.RequestsMock) -> None:
    long = {**event_json(1, T0), "id": "i" * 500, "partition": "p" * 33, "zone": "z" * 32}
    add_page(rsps, query(T0, T0 + HOUR, 0, 3), body=page_json([long], 0, 3, 1))
    [event] = read(segware())
    assert (event.id, event.partition, event.zone) == ("i" * 500, "", "z" * 32)


def test_paging_that_never_ends_is_cut_off(rsps: responses.RequestsMock) -> None:
    def endless(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        page = int(parse_qs(urlsplit(request.url or "").query)["page"][0])
        content = [event_json(page * 500 + n, T0 + timedelta(milliseconds=page * 500 + n)) for n in range(500)]
        return 200, {}, json.dumps({**page_json(content, page, 500, 10), "totalPages": 10_000})

    rsps.add_callback(responses.GET, URL, callback=endless)
    with pytest.raises(ApiUnavailable, match="paging did not end after 25 pages"):
        read(segware(), page_size=500)
    assert len(rsps.calls) == 25


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": T0.replace(tzinfo=None)},
        {"page_size": 0},
        {"page_size": 501},
        {"min_slice": timedelta(0)},
        {"codes": ["E130", "A1,A2"]},
    ],
)
def test_bad_arguments_are_refused(rsps: responses.RequestsMock, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        read(segware(), **kwargs)
    assert len(rsps.calls) == 0


# --- against the loopback FakeApis -------------------------------------------------------------


def spread(count: int, codes: tuple[str, ...] = ("E130",)) -> list[dict[str, Any]]:
    """`count` events over the hour from T0, several per second, in shuffled order."""
    events = [
        event_json(n, T0 + timedelta(milliseconds=(n * 1_700_003) % 3_600_000 // 500 * 500), codes[n % len(codes)])
        for n in range(count)
    ]
    return events[::2] + events[1::2]


def test_fake_serves_every_event_exactly_once_across_splits() -> None:
    with FakeApis(events=spread(2_000), max_results=700, token="s3cret") as fake:
        got = read(segware(token="s3cret", base_url=fake.url), page_size=100)
        assert sorted(ids(got)) == sorted(e["id"] for e in fake.events)
        assert len(set(ids(got))) == 2_000
        assert [e.received_at for e in got] == sorted(e.received_at for e in got)
        statuses = {r.status for r in fake.requests_to("GET", "/v1/events")}
        assert statuses == {200, 422}


def test_fake_filters_by_code() -> None:
    with FakeApis(events=spread(300, ("E130", "E131", "R130"))) as fake:
        got = read(segware(token=None, base_url=fake.url), page_size=50, codes=["R130", "E130"])
        assert {e.code for e in got} == {"E130", "R130"}
        assert len(got) == 200 and len(set(ids(got))) == 200
        assert "codes=E130%2CR130" in fake.requests_to("GET", "/v1/events")[0].query


def test_fake_events_arriving_while_paging_are_not_counted_twice() -> None:
    events = [event_json(n, T0 + timedelta(seconds=10 * n)) for n in range(300)]
    late = event_json(999_999, T0 + timedelta(seconds=5))
    with FakeApis(events=list(events), insert_during_paging=[(0, late), (1, {**late, "id": "ev-late-2"})]) as fake:
        got = read(segware(token=None, base_url=fake.url), page_size=100)
        assert len(ids(got)) == len(set(ids(got)))
        assert {e["id"] for e in events} <= set(ids(got))
        assert len(fake.events) == 302


def test_fake_events_shifted_across_two_pages_are_counted_once() -> None:
    events = [event_json(n, T0 + timedelta(minutes=n + 1)) for n in range(6)]
    late = [{**event_json(900 + n, T0), "id": f"ev-late-{n}"} for n in range(5)]
    # Two arrive after page 0 and three after page 1: ev-1 .. ev-3 come on pages 0, 1 and 2.
    arrivals = [(0, late[0]), (0, late[1]), (1, late[2]), (1, late[3]), (1, late[4])]
    with FakeApis(events=list(events), insert_during_paging=arrivals) as fake:
        got = read(segware(token=None, base_url=fake.url), page_size=3)
        assert ids(got) == [f"ev-{n:06d}" for n in range(6)]
        assert len(fake.requests_to("GET", "/v1/events")) == 4
        assert len(fake.events) == 11


def test_fake_too_many_results_on_a_later_page_counts_each_id_once() -> None:
    t1 = T0 + timedelta(minutes=40)
    events = [event_json(n, T0) for n in range(1, 7)] + [event_json(n, t1) for n in range(7, 11)]
    # A late arrival after page 1 makes the query match 11 > 10 events: page 2 answers 422.
    late = event_json(99, T0 + timedelta(minutes=50))
    with FakeApis(events=events, max_results=10, insert_during_paging=[(1, late)]) as fake:
        got = read(segware(token=None, base_url=fake.url), page_size=2)
        assert sorted(ids(got)) == sorted(e["id"] for e in fake.events)
        assert len(got) == 11
        assert [r.status for r in fake.requests_to("GET", "/v1/events")][:3] == [200, 200, 422]


def test_fake_going_down_mid_read_is_unavailable() -> None:
    with FakeApis(events=spread(500), events_fail_after_pages=2) as fake:
        clock = FakeTime()
        events = flatten(segware(clock, token=None, base_url=fake.url).iter_event_pages(
            T0, T0 + HOUR, codes=None, page_size=100, min_slice=MIN_SLICE
        ))
        got = []
        with pytest.raises(ApiUnavailable) as err:
            for event in events:
                got.append(event)
        assert len(got) == 200
        assert err.value.status == 503 and err.value.exit_code == ExitCode.UNAVAILABLE
        assert [r.status for r in fake.requests_to("GET", "/v1/events")] == [200, 200, 503, 503, 503, 503]


def test_fake_rejects_a_wrong_token_for_events() -> None:
    with FakeApis(events=spread(10), token="s3cret") as fake:
        with pytest.raises(ApiAuthError):
            read(segware(token="nope", base_url=fake.url))


def peak_bytes_reading(count: int) -> int:
    """Peak traced memory while counting `count` events, after a warm-up read (the fake sorts once)."""
    with FakeApis(events=spread(count), max_results=10_000) as fake:
        client = segware(token=None, base_url=fake.url)
        assert sum(1 for _ in read(client, page_size=500)) == count
        tracemalloc.start()
        try:
            pages = client.iter_event_pages(T0, T0 + HOUR, codes=None, page_size=500, min_slice=MIN_SLICE)
            counted = sum(len(events) for events in pages)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert counted == count
        return peak


def test_memory_is_bounded_by_a_page_not_by_the_event_count() -> None:
    small, large = peak_bytes_reading(2_000), peak_bytes_reading(20_000)
    # Keeping every id (or event) would grow by well over 1 MB for 18,000 more events.
    assert large < small + 512 * 1024, (small, large)
