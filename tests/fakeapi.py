"""A real loopback HTTP server standing in for both the Segware and the Sigma API.

    with FakeApis(accounts={"1234": ACCOUNT_JSON}) as fake:
        ...  # point segware.base_url and sigma.base_url at fake.url
        fake.sigma_status = 503        # every POST /v1/events now answers 503
        assert fake.sigma_events() == [...]

Segware events (GET /v1/events) are served from `fake.events`, contract-shaped dicts; append to
the list or assign a new one (after editing items in place, assign the list again). Knobs:
`max_results` (a query matching more answers 422 too_many_results), `insert_during_paging`
([(page_index, event), ...]: the event is appended once a page with that index was served, as if
it arrived while a client pages), `events_status` (force a status), `events_fail_after_pages`
(after that many pages were served, every further events request answers 503), `events_delay_s`
(each events page is held that long, like a slow server), `events_retry_after` (the Retry-After of a
forced 429 or 503 events answer). GET /up/ANYTHING answers 200 without a token: a heartbeat's ping or
a service check's target that a test can `hold`.
Alarms (POST /v1/alarms): 201 the first time per Idempotency-Key, 409 after; `alarms_status`
forces a status; `fake.alarms()` returns the accepted bodies. `posts_per_key(path)` and
`bodies_of(key, path)` (parsed) and `raw_bodies_of(key, path)` (bytes) read either POST path (Sigma's
/v1/events by default).
`hold(method, path_prefix, from_request=n)` returns a `Hold`: the n-th matching request and every
later one is decided and recorded (a new Idempotency-Key is accepted, so a retry after a kill is a
409), sets `arrived`, then waits (at most 60 s) until the test calls `release()`. A test can so act
while a run is certainly in the middle of a request (inside its lease, between its reads), with no
sleep. Leaving the `with` block releases every hold.

Attributes may be changed while the server runs; a lock guards the shared state.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from netwatch.clients.http import ApiClient, RetryPolicy, make_session
from netwatch.clients.segware import SegwareEvent


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, and the status it answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int
    raw_body: bytes = b""


HOLD_LIMIT_S = 60.0


@dataclass
class Hold:
    """Requests matching `method` and `path_prefix`, from the `from_request`-th on, wait for `release()`."""

    method: str
    path_prefix: str
    from_request: int = 1
    seen: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and path.startswith(self.path_prefix)

    def wait_arrived(self, timeout: float = 30) -> None:
        """Returns once a request is being held; fails the test after `timeout`."""
        assert self.arrived.wait(timeout), f"no {self.method} {self.path_prefix} was held within {timeout} s"

    def release(self) -> None:
        """Answers the held requests and every later one at once."""
        self.released.set()


@dataclass
class FakeApis:
    """Both APIs on one 127.0.0.1 port; use as a context manager, base URL for both is `url`."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    token: str | None = None
    accounts_status: int | None = None
    accounts_delay_s: float = 0.0
    sigma_status: int | None = None
    sigma_delay_s: float = 0.0
    sigma_retry_after: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    max_results: int = 10_000
    insert_during_paging: list[tuple[int, dict[str, Any]]] = field(default_factory=list, repr=False)
    events_status: int | None = None
    events_fail_after_pages: int | None = None
    alarms_status: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seen_keys: set[str] = field(default_factory=set, repr=False)
    _alarm_keys: set[str] = field(default_factory=set, repr=False)
    _event_pages_served: int = field(default=0, repr=False)
    _index: _EventIndex | None = field(default=None, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    events_delay_s: float = 0.0
    events_retry_after: str | None = None
    holds: list[Hold] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeApis is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeApis:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        for hold in self.holds:
            hold.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def hold(self, method: str, path_prefix: str, from_request: int = 1) -> Hold:
        """Holds matching requests from the `from_request`-th on (see the module docstring)."""
        hold = Hold(method, path_prefix, from_request)
        with self.lock:
            self.holds.append(hold)
        return hold

    def wait_if_held(self, method: str, path: str) -> None:
        waiting = []
        with self.lock:
            for hold in self.holds:
                if hold.matches(method, path):
                    hold.seen += 1
                    if hold.seen >= hold.from_request:
                        waiting.append(hold)
        for hold in waiting:
            hold.arrived.set()
            hold.released.wait(HOLD_LIMIT_S)

    def posts_per_key(self, path: str = "/v1/events") -> Counter[str]:
        """How often each Idempotency-Key was POSTed to `path` (Sigma's /v1/events by default)."""
        return Counter(r.headers["idempotency-key"] for r in self.requests_to("POST", path))

    def bodies_of(self, key: str, path: str = "/v1/events") -> list[Any]:
        """The bodies of every POST to `path` (Sigma's /v1/events by default) that carried `key`, in arrival order."""
        return [r.body for r in self.requests_to("POST", path) if r.headers.get("idempotency-key") == key]

    def raw_bodies_of(self, key: str, path: str = "/v1/events") -> list[bytes]:
        """As `bodies_of`, the bytes as they arrived: one key's attempts must send the very same bytes."""
        return [r.raw_body for r in self.requests_to("POST", path) if r.headers.get("idempotency-key") == key]

    def sigma_events(self) -> list[Any]:
        """Bodies of the events Sigma accepted (201/202), in arrival order; duplicates (409) excluded."""
        with self.lock:
            return [
                r.body
                for r in self.requests
                if r.method == "POST" and r.path == "/v1/events" and r.status in (201, 202)
            ]

    def alarms(self) -> list[Any]:
        """Bodies of the alarms Segware accepted (201), in arrival order; duplicates (409) excluded."""
        with self.lock:
            return [r.body for r in self.requests if r.method == "POST" and r.path == "/v1/alarms" and r.status == 201]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests for one method and path."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def answer(
        self, method: str, path: str, headers: dict[str, str], raw_body: bytes, query: str = ""
    ) -> tuple[int, Any]:
        """Decide the status and JSON answer for one request (runs on the server's threads)."""
        if method == "GET" and path.startswith("/up/"):
            return 200, {"up": path.removeprefix("/up/")}
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthorized"}
        if method == "GET" and path.startswith("/v1/accounts/"):
            return self._answer_account(unquote(path.removeprefix("/v1/accounts/")))
        if method == "GET" and path == "/v1/events":
            return self._answer_events_page(parse_qs(query))
        if method == "POST" and path == "/v1/events":
            return self._answer_event(headers, raw_body)
        if method == "POST" and path == "/v1/alarms":
            return self._answer_alarm(headers, raw_body)
        return 404, {"error": "not_found"}

    def delay_s(self, method: str, path: str) -> float:
        """How long to hold the answer; the request is already decided and recorded, like a slow server."""
        if method == "POST" and path == "/v1/events":
            return self.sigma_delay_s
        if path.startswith("/v1/accounts/"):
            return self.accounts_delay_s
        if method == "GET" and path == "/v1/events":
            return self.events_delay_s
        return 0.0

    def retry_after(self, method: str, path: str) -> str | None:
        """The Retry-After header of a 429 or 503 answer to this request, if the test set one."""
        if (method, path) == ("POST", "/v1/events"):
            return self.sigma_retry_after
        if (method, path) == ("GET", "/v1/events"):
            return self.events_retry_after
        return None

    def _answer_account(self, account: str) -> tuple[int, Any]:
        if self.accounts_status is not None:
            return self.accounts_status, {"error": "forced"}
        with self.lock:
            data = self.accounts.get(account)
        if data is None:
            return 404, {"error": "account_not_found"}
        return 200, data

    def _answer_event(self, headers: dict[str, str], raw_body: bytes) -> tuple[int, Any]:
        return self._idempotent_post(self.sigma_status, self._seen_keys, headers, raw_body)

    def _idempotent_post(
        self, forced: int | None, seen: set[str], headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, Any]:
        """201 for a new Idempotency-Key, 409 for one already accepted, like both real APIs."""
        if forced is not None:
            return forced, {"error": "forced"}
        key = headers.get("idempotency-key")
        if not key:
            return 400, {"error": "missing Idempotency-Key"}
        try:
            json.loads(raw_body)
        except ValueError:
            return 400, {"error": "body is not JSON"}
        with self.lock:
            if key in seen:
                return 409, {"error": "duplicate"}
            seen.add(key)
        return 201, {"id": key}

    def _answer_events_page(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        if self.events_status is not None:
            return self.events_status, {"error": "forced"}
        try:
            start = _parse_time(query["from"][0])
            end = _parse_time(query["to"][0])
            page = int(query.get("page", ["0"])[0])
            size = min(int(query.get("size", ["20"])[0]), 500)
        except (KeyError, ValueError) as exc:
            return 400, {"error": f"bad query: {exc}"}
        if page < 0 or size < 1:
            return 400, {"error": "bad page or size"}
        codes = frozenset(query["codes"][0].split(",")) if "codes" in query else None
        with self.lock:
            if self.events_fail_after_pages is not None and self._event_pages_served >= self.events_fail_after_pages:
                return 503, {"error": "down"}
            index = self._current_index()
            total = index.count(start, end, codes)
            if total > self.max_results:
                return 422, {"error": "too_many_results", "maxResults": self.max_results}
            content = index.page(start, end, codes, page * size, size)
            self._event_pages_served += 1
            arrivals = [event for after, event in self.insert_during_paging if after == page]
            if arrivals:
                self.insert_during_paging = [(a, e) for a, e in self.insert_during_paging if a != page]
                self.events.extend(arrivals)
        return 200, {
            "content": content,
            "page": page,
            "size": size,
            "totalElements": total,
            "totalPages": math.ceil(total / size),
        }

    def _current_index(self) -> _EventIndex:
        # Rebuilt only when the list changed, so 100,000 events are sorted once, not per page.
        if self._index is None or not self._index.describes(self.events):
            self._index = _EventIndex(self.events)
        return self._index

    def _answer_alarm(self, headers: dict[str, str], raw_body: bytes) -> tuple[int, Any]:
        return self._idempotent_post(self.alarms_status, self._alarm_keys, headers, raw_body)

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no offset")
    return parsed


class _EventIndex:
    """`FakeApis.events` sorted by (receivedAt, id), with the last filtered query cached for paging."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._source = events
        self._source_len = len(events)
        ordered = sorted(events, key=lambda e: (_parse_time(e["receivedAt"]), e["id"]))
        self._times = [_parse_time(e["receivedAt"]) for e in ordered]
        self._events = ordered
        self._filtered_key: tuple[int, int, frozenset[str]] | None = None
        self._filtered: list[dict[str, Any]] = []

    def describes(self, events: list[dict[str, Any]]) -> bool:
        return events is self._source and len(events) == self._source_len

    def _bounds(self, start: datetime, end: datetime) -> tuple[int, int]:
        return bisect.bisect_left(self._times, start), bisect.bisect_left(self._times, end)

    def _matching(self, low: int, high: int, codes: frozenset[str]) -> list[dict[str, Any]]:
        if self._filtered_key != (low, high, codes):
            self._filtered = [e for e in self._events[low:high] if e["code"] in codes]
            self._filtered_key = (low, high, codes)
        return self._filtered

    def count(self, start: datetime, end: datetime, codes: frozenset[str] | None) -> int:
        low, high = self._bounds(start, end)
        if codes is None:
            return max(0, high - low)
        return len(self._matching(low, high, codes))

    def page(
        self, start: datetime, end: datetime, codes: frozenset[str] | None, offset: int, size: int
    ) -> list[dict[str, Any]]:
        low, high = self._bounds(start, end)
        if codes is None:
            return self._events[min(low + offset, high) : min(low + offset + size, high)]
        return self._matching(low, high, codes)[offset : offset + size]


class FakeTime:
    """A job clock for ApiClient: `sleep` records the wait and advances time instead of sleeping."""

    def __init__(self, budget_s: float = 300.0) -> None:
        self.now = 0.0
        self.budget_s = budget_s
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def deadline(self) -> float:
        return self.budget_s - self.now


def api_client(
    base_url: str,
    *,
    name: str = "sigma",
    token: str | None = None,
    fake_time: FakeTime | None = None,
    timeout_s: float = 2.0,
    retry: RetryPolicy | None = None,
) -> ApiClient:
    """An ApiClient on a real session, with a fake job clock and a jitter of 1.0 (the longest waits)."""
    clock = fake_time or FakeTime()
    return ApiClient(
        name=name,
        base_url=base_url,
        token=token,
        token_source=f"NETWATCH_{name.upper()}_TOKEN",
        session=make_session(),
        timeout_s=timeout_s,
        retry=retry or RetryPolicy(),
        deadline=clock.deadline,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
    )


def flatten(pages: Iterable[list[SegwareEvent]]) -> Iterator[SegwareEvent]:
    """The events of SegwareClient.iter_event_pages one at a time, as pages come (a read failing midway
    yields what came before it)."""
    for events in pages:
        yield from events


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake: FakeApis = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, answer = fake.answer(self.command, url.path, headers, raw_body, url.query)
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        fake.record(RecordedRequest(self.command, url.path, url.query, headers, body, status, raw_body))
        fake.wait_if_held(self.command, url.path)
        time.sleep(fake.delay_s(self.command, url.path))
        payload = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            retry_after = fake.retry_after(self.command, url.path) if status in (429, 503) else None
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client timed out during a delay mode and hung up: expected, nothing to answer.
            return

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr line; tests read `FakeApis.requests` instead."""
