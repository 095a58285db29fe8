"""Segware API adapter: every Segware field name lives in this module and only here."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson

from netwatch import limits
from netwatch.clients.http import (
    ApiClient,
    ApiRejected,
    ApiUnavailable,
    format_timestamp,
    parse_timestamp,
)
from netwatch.core.times import require_aware
from netwatch.excerpt import one_line
from netwatch.outcome import Delivery

log = logging.getLogger(__name__)

_EVENTS_PATH = "/v1/events"
_ALARMS_PATH = "/v1/alarms"
MAX_PAGE_SIZE = 500
# The contract's default per-query limit; a 422 tells us the server's real figure.
DEFAULT_MAX_RESULTS = 10_000
# Pages allowed beyond what the query's size implies, for events arriving while we page.
_EXTRA_PAGES = 5
# Key fields longer than their columns (netwatch/limits.py) fail the read as a malformed page: a
# group that cannot be stored must not be counted as if it could. Partition and zone only name
# where an injected alarm points: one too long to store is left empty (unknown), never cut to a
# code that may name another zone. Ids are never stored.
_KEY_FIELD_LIMITS = {"account": limits.ACCOUNT, "cuc": limits.CUC, "code": limits.CODE}
# Longest id shown in a message.
_ID_SHOWN = 100
# Longest description of a malformed body in a message (it may quote the server's values).
_PROBLEM_SHOWN = 300


@dataclass(frozen=True)
class Partition:
    code: str
    name: str


@dataclass(frozen=True)
class Zone:
    code: str
    name: str
    partition: str


@dataclass(frozen=True)
class Account:
    """A monitored account with its partitions and zones, as used for enrichment."""

    account: str
    name: str
    company_id: int | None
    company_name: str
    client_group: str
    partitions: tuple[Partition, ...]
    zones: tuple[Zone, ...]

    def to_cache(self) -> dict[str, Any]:
        """Our own JSON-able dict (independent of Segware's field names) for a database cache."""
        return {
            "account": self.account,
            "name": self.name,
            "company_id": self.company_id,
            "company_name": self.company_name,
            "client_group": self.client_group,
            "partitions": [{"code": p.code, "name": p.name} for p in self.partitions],
            "zones": [{"code": z.code, "name": z.name, "partition": z.partition} for z in self.zones],
        }


class _Malformed(ValueError):
    """A response body that does not have the contract's shape."""


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _Malformed(f"field {key!r} is not a non-empty string")
    return value


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _Malformed(f"field {key!r} is not a list of objects")
    return value


def parse_account(data: Any) -> Account:
    """Build an Account from a GET /v1/accounts/{account} body; raises ValueError on a wrong shape."""
    if not isinstance(data, dict):
        raise _Malformed("body is not an object")
    company_id = data.get("companyId")
    if company_id is not None and (isinstance(company_id, bool) or not isinstance(company_id, int)):
        raise _Malformed("field 'companyId' is not an integer")
    return Account(
        account=_text(data, "account"),
        name=_text(data, "name"),
        company_id=company_id,
        company_name=_text(data, "companyName", required=False),
        client_group=_text(data, "clientGroup", required=False),
        partitions=tuple(
            Partition(code=_text(p, "code"), name=_text(p, "name", required=False))
            for p in _objects(data, "partitions")
        ),
        zones=tuple(
            Zone(
                code=_text(z, "code"),
                name=_text(z, "name", required=False),
                partition=_text(z, "partition", required=False),
            )
            for z in _objects(data, "zones")
        ),
    )


class SegwareEvent(NamedTuple):
    """One event received by Segware (an alarm, a test, an arm/disarm ...).

    A named tuple, not a frozen dataclass: one is built per event read, and a frozen dataclass takes
    three times as long to build (an `object.__setattr__` per field).
    """

    id: str
    account: str
    cuc: str
    code: str
    partition: str
    zone: str
    received_at: datetime  # aware UTC


@dataclass(frozen=True)
class Alarm:
    """An alarm to inject into Segware through POST /v1/alarms."""

    account: str
    partition: str
    zone: str
    code: str
    description: str
    occurred_at: datetime

    def __post_init__(self) -> None:
        require_aware(self.occurred_at, "occurred_at")


def parse_event(data: Any) -> SegwareEvent:
    """Build a SegwareEvent from one item of a GET /v1/events page; raises ValueError on a wrong shape."""
    if not isinstance(data, dict):
        raise _Malformed("event is not an object")
    for key in ("cuc", "partition", "zone"):
        if not isinstance(data.get(key), str):
            raise _Malformed(f"event field {key!r} is not a string")
    for key, limit in _KEY_FIELD_LIMITS.items():
        value = data.get(key)
        if isinstance(value, str) and len(value) > limit:
            raise _Malformed(f"event field {key!r} is longer than {limit} characters")
    return SegwareEvent(
        id=_text(data, "id"),
        account=_text(data, "account"),
        cuc=data["cuc"],
        code=_text(data, "code"),
        partition=_code_or_unknown(data["partition"], limits.PARTITION),
        zone=_code_or_unknown(data["zone"], limits.ZONE),
        received_at=parse_timestamp(data.get("receivedAt")),
    )


def _code_or_unknown(value: str, width: int) -> str:
    return value if len(value) <= width else ""


def parse_events(items: list[Any]) -> list[SegwareEvent]:
    """`parse_event` of every item of a page, in order; raises ValueError on the first wrong shape.

    The common case, an item with every field of the contract's types and within its limits, is
    checked in one expression, and each distinct `receivedAt` of the page is parsed once (events come
    in time order, often many in one second). Any other item goes through `parse_event`, so its
    result or its error (one line) is exactly what `parse_event` gives. The tuple is built by
    `tuple.__new__` itself: the named tuple's generated `__new__` is a Python call per event (0.15 s
    per million events).
    """
    account_limit, cuc_limit, code_limit = limits.ACCOUNT, limits.CUC, limits.CODE
    partition_limit, zone_limit = limits.PARTITION, limits.ZONE
    events: list[SegwareEvent] = []
    append, new = events.append, tuple.__new__
    times: dict[str, datetime] = {}
    for item in items:
        try:
            id_, account, cuc, code = item["id"], item["account"], item["cuc"], item["code"]
            partition, zone, text = item["partition"], item["zone"], item["receivedAt"]
        except (KeyError, TypeError):
            append(parse_event(item))  # raises: not an object, or a field missing
            continue
        if not (
            type(item) is dict
            and type(id_) is str and id_
            and type(account) is str and 0 < len(account) <= account_limit
            and type(cuc) is str and len(cuc) <= cuc_limit
            and type(code) is str and 0 < len(code) <= code_limit
            and type(partition) is str and type(zone) is str
            and type(text) is str
        ):
            append(parse_event(item))
            continue
        received_at = times.get(text)
        if received_at is None:
            try:
                received_at = times[text] = parse_timestamp(text)
            except ValueError:
                append(parse_event(item))  # raises the timestamp's error
                continue
        append(new(SegwareEvent, (
            id_, account, cuc, code,
            partition if len(partition) <= partition_limit else "",
            zone if len(zone) <= zone_limit else "",
            received_at,
        )))
    return events


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"field {key!r} is not a non-negative integer")
    return value


@dataclass(frozen=True)
class _Page:
    events: list[SegwareEvent]
    total_elements: int
    total_pages: int


def parse_page(data: Any, size: int) -> _Page:
    """Parse one 200 body of GET /v1/events; raises ValueError on a wrong shape."""
    if not isinstance(data, dict):
        raise _Malformed("page is not an object")
    content = data.get("content")
    if not isinstance(content, list):
        raise _Malformed("field 'content' is not a list")
    if len(content) > size:
        raise _Malformed(f"{len(content)} events on a page of size {size}")
    return _Page(
        events=parse_events(content),
        total_elements=_count(data, "totalElements"),
        total_pages=_count(data, "totalPages"),
    )


def alarm_body(alarm: Alarm) -> dict[str, Any]:
    """The JSON body of POST /v1/alarms for one alarm."""
    return {
        "account": alarm.account,
        "partition": alarm.partition,
        "zone": alarm.zone,
        "code": alarm.code,
        "description": alarm.description,
        "occurredAt": format_timestamp(alarm.occurred_at),
    }


class _TooManyResults(Exception):
    """The server refused a query for matching more than `max_results` events (422); None if it did not say."""

    def __init__(self, max_results: int | None) -> None:
        super().__init__(max_results)
        self.max_results = max_results


class _OutOfOrder(ValueError):
    """An event received before the last yielded one that is not a duplicate: the promised order is broken."""


class _Seen:
    """Which events were already yielded, in memory bounded by two pages plus the events of one instant.

    Events come in (receivedAt, id) order and slices are read oldest first. An event after `last_at`
    is new. One at `last_at` is a duplicate if its id was yielded at that instant (a query resumed
    after a 422 starts at `last_at` and serves that instant again, possibly over several pages). One
    before `last_at` can only be an event shifted onto the next page by late arrivals, so it must be
    on the previous or current page; otherwise the server broke its order and events may be missing.
    Ids are never compared by order: the server's collation need not match Python's.
    """

    def __init__(self) -> None:
        self.last_at: datetime | None = None
        self._at_last: set[str] = set()
        self._previous: set[str] = set()
        self._current: set[str] = set()

    def take_page(
        self, events: list[SegwareEvent], low: datetime, high: datetime, watched: frozenset[str] | None
    ) -> list[SegwareEvent]:
        """The events of the next page to yield, in order: in [low, high), of a watched code, not yet yielded.

        Records them. Raises _OutOfOrder for an early event not seen on this page or the previous one.
        """
        self._previous, self._current = self._current, set()
        previous, current = self._previous, self._current
        last_at, at_last = self.last_at, self._at_last
        fresh = []
        for event in events:
            at, event_id = event.received_at, event.id
            # Defensive: an event outside this slice would move `last_at` past events still to come,
            # and a server ignoring `codes` must not make us count unwatched codes.
            if not low <= at < high or (watched is not None and event.code not in watched):
                continue
            if last_at is None or at > last_at:
                last_at, at_last = at, {event_id}
                fresh.append(event)
            elif at == last_at:
                if event_id not in at_last:
                    at_last.add(event_id)
                    fresh.append(event)
            elif event_id not in current and event_id not in previous:
                raise _OutOfOrder(
                    f"event {event_id[:_ID_SHOWN]!r} received at {format_timestamp(at)}"
                    f" after one received at {format_timestamp(last_at)}"
                )
            current.add(event_id)
        self.last_at, self._at_last = last_at, at_last
        return fresh


class SegwareClient:
    """Reads account details and events from the Segware API and injects alarms into it."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def get_account(self, account: str) -> Account | None:
        """The account's details, or None when Segware does not know the account (404)."""
        path = f"/v1/accounts/{quote(account, safe='')}"
        response = self._api.request("GET", path, accept=(200, 404))
        if response.status_code == 404:
            return None
        try:
            parsed = parse_account(response.json())
            if parsed.account != account:
                raise _Malformed(f"asked for account {account!r}, got {parsed.account[:_ID_SHOWN]!r}")
        except ValueError as exc:
            # Not JSON or not the contract's shape: likely a proxy or a bad deploy.
            raise ApiUnavailable(
                f"{self._api.name} API GET {path}: malformed response ({one_line(str(exc), _PROBLEM_SHOWN)})",
                status=response.status_code,
            ) from exc
        return parsed

    def iter_event_pages(
        self,
        start: datetime,
        end: datetime,
        *,
        codes: Collection[str] | None,
        page_size: int,
        min_slice: timedelta,
    ) -> Iterator[list[SegwareEvent]]:
        """Every event with start <= receivedAt < end, each id once, in server order per slice, a page at a time.

        Each list holds the new events of one page read (never empty), so memory is a page, not the window.

        A range the server refuses as too large (422 too_many_results) is split at its midpoint and
        the halves read oldest first, recursively down to `min_slice`. Raises ApiUnavailable when the
        window cannot be read completely; the caller must then discard what it has counted.
        """
        if start.utcoffset() is None or end.utcoffset() is None:
            raise ValueError("start and end must be timezone-aware")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if min_slice <= timedelta(0):
            raise ValueError("min_slice must be positive")
        watched = None if codes is None else frozenset(codes)
        if watched is not None and any(not code or "," in code for code in watched):
            raise ValueError("event codes must be non-empty and contain no comma")
        if start >= end or watched == frozenset():
            return  # nothing to read (an empty `codes` parameter could mean "all codes" to the server)
        seen = _Seen()
        slices = [(start.astimezone(UTC), end.astimezone(UTC))]  # a stack; the oldest slice on top
        max_results = DEFAULT_MAX_RESULTS
        while slices:
            low, high = slices.pop()
            try:
                yield from self._read_slice(low, high, watched, page_size, seen, max_results)
            except _TooManyResults as exc:
                max_results = exc.max_results or max_results
                # Resume after what this slice already yielded; `seen` skips the overlap at `last_at`.
                resume = max(low, seen.last_at) if seen.last_at is not None else low
                if high - resume <= min_slice:
                    raise ApiUnavailable(
                        f"{self._api.name} API GET {_EVENTS_PATH}: more than {max_results} events in a slice"
                        f" of {(high - resume).total_seconds():g} s from {format_timestamp(resume)}:"
                        " window not read completely",
                        status=422,
                    ) from None
                middle = resume + (high - resume) / 2
                log.info(
                    "%s API: more than %d events from %s to %s; splitting at %s",
                    self._api.name,
                    max_results,
                    format_timestamp(resume),
                    format_timestamp(high),
                    format_timestamp(middle),
                )
                slices.append((middle, high))
                slices.append((resume, middle))

    def _read_slice(
        self,
        low: datetime,
        high: datetime,
        watched: frozenset[str] | None,
        page_size: int,
        seen: _Seen,
        max_results: int,
    ) -> Iterator[list[SegwareEvent]]:
        """Page through one query [low, high); raises _TooManyResults on a 422 too_many_results."""
        params: dict[str, Any] = {"from": format_timestamp(low), "to": format_timestamp(high), "size": page_size}
        if watched is not None:
            params["codes"] = ",".join(sorted(watched))
        what = f"{self._api.name} API GET {_EVENTS_PATH} from {params['from']} to {params['to']}"
        page_number = 0
        page_cap: int | None = None
        expected = 0  # the first page's totalElements: more may arrive while we page, never fewer
        received = 0  # every event served, duplicates and skipped ones included
        while True:
            params["page"] = page_number
            page = self._fetch_page(params, page_size)
            if page_cap is None:
                expected = page.total_elements
                # A query matches at most max_results events; a few extra pages allow for late arrivals.
                page_cap = math.ceil(max(max_results, page.total_elements) / page_size) + _EXTRA_PAGES
            if not page.events and page_number < page.total_pages - 1:
                raise ApiUnavailable(
                    f"{what}: incomplete read: page {page_number} of {page.total_pages} is empty:"
                    " window not read completely"
                )
            received += len(page.events)
            try:
                fresh = seen.take_page(page.events, low, high, watched)
            except _OutOfOrder as exc:
                raise ApiUnavailable(
                    f"{what}: events out of order on page {page_number} ({one_line(str(exc), _PROBLEM_SHOWN)}):"
                    " window not read completely"
                ) from None
            if fresh:
                yield fresh
            page_number += 1
            if not page.events or page_number >= page.total_pages:
                break
            if page_number >= page_cap:
                raise ApiUnavailable(f"{what}: paging did not end after {page_cap} pages: window not read completely")
        if received < expected:
            raise ApiUnavailable(
                f"{what}: incomplete read: {received} events served, the first page announced {expected}:"
                " window not read completely"
            )

    def _fetch_page(self, params: dict[str, Any], size: int) -> _Page:
        """One page of events, parsed; a garbled page is ApiUnavailable (the window is not read)."""
        response = self._api.request("GET", _EVENTS_PATH, params=params, accept=(200, 422))
        what = f"{self._api.name} API GET {_EVENTS_PATH} page {params['page']} from {params['from']} to {params['to']}"
        try:
            # orjson: a page of 500 events decodes in half the time of json.loads.
            data = orjson.loads(response.content)
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError (invalid UTF-8 included)
            raise ApiUnavailable(f"{what}: malformed page (not JSON)", status=response.status_code) from exc
        if response.status_code == 422:
            error = data.get("error") if isinstance(data, dict) else None
            if error != "too_many_results":
                detail = f"error '{one_line(str(error), 80)}'"
                raise ApiRejected(f"{what}: HTTP 422: {detail}", status=422, detail=detail)
            limit = data.get("maxResults")
            valid = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
            raise _TooManyResults(limit if valid else None)
        try:
            return parse_page(data, size)
        except ValueError as exc:
            raise ApiUnavailable(
                f"{what}: malformed page ({one_line(str(exc), _PROBLEM_SHOWN)})", status=response.status_code
            ) from exc

    def check_access(self, now: datetime) -> None:
        """Reads the first page (one event at most) of the second before `now`: raises ApiAuthError when the
        token is refused, ApiUnavailable or ApiRejected when the API cannot answer; changes nothing."""
        start = now - timedelta(seconds=1)
        self._fetch_page({"from": format_timestamp(start), "to": format_timestamp(now), "size": 1, "page": 0}, 1)

    def post_alarm(self, alarm: Alarm, idempotency_key: str) -> Delivery:
        """POST one alarm with its Idempotency-Key; 201 created, 409 already delivered (sent too)."""
        if not idempotency_key:
            raise ValueError("idempotency_key must not be empty")
        return self._api.deliver("POST", _ALARMS_PATH, alarm_body(alarm), idempotency_key, (201, 409))
