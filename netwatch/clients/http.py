"""Generic HTTP client for the external APIs: one session factory, timeouts, retries and error mapping.

One request is up to RetryPolicy.max_tries tries; for a delivery, the whole request is one
delivery attempt. Each try runs through the client's BoundedCalls (netwatch/bounded.py), so it ends
after min(its timeout, the time left before the run's deadline) however slowly the server answers
(connect, status line, headers or body), and a stop (SIGTERM) ends it within a slice. The client's
tries share a thread, and the environment's proxy and CA settings are looked up once per client,
not per try: on loopback a try of a 75 kB page costs about 0.7 ms of CPU, not 1.1-1.3 ms. Every
body read is capped: MAX_BODY_BYTES, and of a body not needed (an error's, an accepted delivery's)
only SHORT_READ_BYTES. No API field names live here; the adapters (segware.py, sigma.py) own those.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from netwatch.bounded import BoundedCalls, never_stopped, too_late
from netwatch.errors import ConfigError, ExitCode, NetwatchError, ServiceUnavailable, Stopped, StoppedDuringRequest
from netwatch.excerpt import one_line
from netwatch.outcome import Delivery
from netwatch.wire import json_bytes, read_capped, user_agent

log = logging.getLogger(__name__)

# The largest response body read (documented in README): a full Segware page or an account with
# thousands of zones is well under 1 MiB. A larger body fails the request, not the process's memory.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Of any other body (an error's, an accepted delivery's) only this much is read: enough for the
# excerpt in an error message (4 x 160 characters of up to 4 bytes, so an echoed token is never cut
# by the read) and for a short body to end, so that its connection can serve the next request.
SHORT_READ_BYTES = 4096
_DETAIL_MAX_CHARS = 160
# Errors that mean "the service or the path to it is having a bad moment": worth another try.
# The urllib3 ones come from reading a streamed body, which requests does not wrap.
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.DecodeError,
    urllib3.exceptions.SSLError,
)


def format_timestamp(when: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, as both APIs take it; microseconds only when non-zero."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if when.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 timestamp with an offset, as aware UTC; ValueError for anything else."""
    if not isinstance(value, str):
        raise ValueError("timestamp is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # fromisoformat's own message holds the whole value, however long.
        raise ValueError(f"timestamp {value[:40]!r} is not ISO 8601") from None
    if parsed.utcoffset() is None:
        raise ValueError(f"timestamp {value[:40]!r} has no offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is ISO 8601, yet before the first instant a datetime holds in UTC.
        raise ValueError(f"timestamp {value[:40]!r} is out of range") from None


def make_session() -> requests.Session:
    """Build the one HTTP session netwatch uses: our User-Agent and no urllib3-level retries."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent()
    # We retry ourselves (bounded by the job deadline); urllib3 must neither retry nor sleep on
    # Retry-After, which it would otherwise do for as long as the server asks.
    no_retries = Retry(total=0, read=False, redirect=False, respect_retry_after_header=False)
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(max_retries=no_retries))
    return session


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures (5xx, 429, timeouts, connection errors)."""

    max_tries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff times must not be negative")

    def backoff_s(self, failures: int, jitter: float) -> float:
        """Full-jitter exponential backoff after `failures` failed tries (jitter in [0, 1))."""
        return jitter * min(self.backoff_max_s, self.backoff_base_s * 2 ** (failures - 1))


class ApiAuthError(ConfigError):
    """The API rejected our credentials (401/403): a configuration problem, the job stops."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ApiUnavailable(ServiceUnavailable):
    """Transient failures exhausted the tries or the job deadline; worth trying on a later run."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class ApiNotSent(ApiUnavailable):
    """Too little time was left before the run's deadline (netwatch/bounded.py): the request never went out."""


class ApiRejected(NetwatchError):
    """The API refused this request for good (a 4xx other than 401/403/429).

    Callers that can go on without the answer catch it; where a job cannot (e.g. reading the event
    window), the service is unusable for this run: exit 69.
    """

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class _BearerAuth(requests.auth.AuthBase):
    # An auth object (not a default header) so that requests drops it on cross-host redirects
    # and ~/.netrc never replaces it.
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_s
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class ApiResponse:
    """An answer read within the limits: a whole accepted body, else only its first SHORT_READ_BYTES."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON (or not valid UTF-8)."""
        return json.loads(self.content)


class _BodyTooLarge(Exception):
    """An accepted answer's body is over MAX_BODY_BYTES, by its Content-Length or as it was read."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _read_plan(status: int, accept: Collection[int], read_body: bool) -> tuple[int, bool]:
    """How many body bytes to read for `status`, and whether a longer body is an error (else it is cut)."""
    if status in accept and read_body:
        return MAX_BODY_BYTES, True
    return SHORT_READ_BYTES, False


def _exchange(send: Callable[[], requests.Response], plan: Callable[[int], tuple[int, bool]],
              abandoned: threading.Event) -> ApiResponse:
    """One try, run through BoundedCalls: send the request and read its body within the plan's limit.

    The connection is closed unless read to its end. A try given up on (`abandoned`) stops reading
    the body at the next bytes that arrive; one still reading the status line or the headers goes
    on until they end, or until no byte came for its socket timeout.
    """
    response = send()
    try:
        status = response.status_code
        limit, strict = plan(status)
        declared = response.raw.length_remaining
        if strict and declared is not None and declared > limit:
            raise _BodyTooLarge(status)
        # One byte more than allowed shows that the body is longer.
        body = read_capped(response.raw, limit + 1, abandoned)
        if strict and len(body) > limit:
            raise _BodyTooLarge(status)
        return ApiResponse(status, response.reason or "", response.headers, body[:limit])
    finally:
        response.close()


def _tries(count: int) -> str:
    return "1 try" if count == 1 else f"{count} tries"


class ApiClient:
    """One external API: base URL, bearer token, timeouts, bounded retries and error mapping.

    `check_stop` raises Stopped once the run was told to stop; it is called before each try and
    every slice while one is under way.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        token: str | None,
        token_source: str,
        session: requests.Session,
        timeout_s: float,
        retry: RetryPolicy,
        deadline: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        check_stop: Callable[[], None] = never_stopped,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._auth = _BearerAuth(token) if token else None
        self._token_source = token_source
        self._session = session
        # What Session.request would look up in the environment on every try (proxies, NO_PROXY for
        # this host, REQUESTS_CA_BUNDLE): the environment does not change during a run.
        self._send_settings = session.merge_environment_settings(self._base_url, {}, True, None, None)
        self._calls: BoundedCalls[ApiResponse] = BoundedCalls("netwatch-http")
        self._timeout_s = timeout_s
        self._retry = retry
        self._deadline = deadline
        self._sleep = sleep
        self._check_stop = check_stop
        self._jitter = jitter
        self._clock = clock

    def __repr__(self) -> str:
        return f"ApiClient(name={self.name!r}, base_url={self._base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (200,),
        read_body: bool = True,
    ) -> ApiResponse:
        """Send one request, retrying transient failures; return the answer if its status is in `accept`.

        Each try, body included, ends within min(the client's timeout, the time left before the
        deadline). The body of an accepted answer is read up to MAX_BODY_BYTES (unless `read_body`
        is False), any other only up to SHORT_READ_BYTES. Raises ApiAuthError (401/403), ApiRejected
        (other 4xx or unexpected status), ApiUnavailable (transient failures exhausted the tries
        or the deadline, or the body is too large), ApiNotSent (less than MIN_REQUEST_S was left
        before the deadline for the first try), Stopped (stopped before the first try) or
        StoppedDuringRequest (stopped once a try was under way).
        """
        what = f"{self.name} API {method} {path}"
        sent_headers = dict(headers or {})
        data = None
        if json_body is not None:
            # Not requests' json=: its bytes follow the dict's order, which differs between a body
            # built in this run and the same body read back from the outbox after a kill.
            data = json_bytes(json_body)
            sent_headers["Content-Type"] = "application/json"
        outgoing = requests.Request(method, self._base_url + path, params=params, data=data,
                                    headers=sent_headers or None, auth=self._auth)
        plan = functools.partial(_read_plan, accept=accept, read_body=read_body)
        failures = 0
        sent = False
        try:
            while True:
                left = self._deadline()
                late = too_late(left, self._timeout_s) if failures == 0 else None
                if late is not None:
                    raise ApiNotSent(f"{what}: not sent, {late}")
                if left <= 0:
                    raise ApiUnavailable(f"{what}: job deadline reached after {_tries(failures)}")
                self._check_stop()
                timeout = min(self._timeout_s, left)
                status: int | None = None
                retry_after = None
                sent = True
                try:
                    # Prepared per try, as Session.request does: cookies the last answer set go along.
                    send = functools.partial(self._session.send, self._session.prepare_request(outgoing),
                                             timeout=(timeout, timeout), allow_redirects=True, **self._send_settings)
                    response = self._calls.run(functools.partial(_exchange, send, plan), timeout, self._check_stop)
                except _TRANSIENT_ERRORS as exc:
                    problem = type(exc).__name__
                except _BodyTooLarge as exc:
                    # Another try would most likely get the same body: give up at once.
                    raise ApiUnavailable(
                        f"{what}: HTTP {exc.status} body larger than the {MAX_BODY_BYTES} byte limit",
                        status=exc.status,
                    ) from None
                else:
                    if response is None:
                        problem = f"Timeout (no complete answer within {timeout:g}s)"
                    else:
                        status = response.status_code
                        if status in accept:
                            return response
                        self._raise_permanent(method, path, response, accept)
                        problem = f"HTTP {status}"
                        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
                failures += 1
                self._pause(what, problem, failures, status, retry_after)
        except Stopped as exc:
            if not sent:
                raise
            # The request went out: for a delivery, this attempt counts (netwatch/delivery/loop.py).
            raise StoppedDuringRequest(exc, what) from None

    def _pause(self, what: str, problem: str, failures: int, status: int | None, retry_after: float | None) -> None:
        """Waits before the next try, or raises ApiUnavailable when the tries or the deadline are used up."""
        if failures >= self._retry.max_tries:
            raise ApiUnavailable(f"{what}: {problem} after {_tries(failures)}", status=status,
                                 retry_after_s=retry_after)
        wait = self._retry.backoff_s(failures, self._jitter())
        if retry_after is not None:
            wait = retry_after
        if wait >= self._deadline():
            raise ApiUnavailable(f"{what}: {problem}; next try in {wait:.1f}s would pass the job deadline",
                                 status=status, retry_after_s=retry_after)
        log.warning("%s: %s; try %d/%d in %.1fs", what, problem, failures + 1, self._retry.max_tries, wait)
        self._sleep(wait)

    def deliver(self, method: str, path: str, body: Any, idempotency_key: str,
                accept: Collection[int]) -> Delivery:
        """One delivery attempt of an idempotent POST: the one mapping of HTTP results to outcomes.

        Accepted -> sent (its body is not needed); another 4xx or an answer the contract does not list
        -> failed; transient trouble -> pending; never sent (less than MIN_REQUEST_S left before the
        deadline) -> unsent. 401/403 raise ApiAuthError: the caller stops that sink. A stop once the
        request went out raises StoppedDuringRequest: the caller counts the attempt.
        """
        try:
            response = self.request(method, path, json_body=body, headers={"Idempotency-Key": idempotency_key},
                                    accept=accept, read_body=False)
        except ApiNotSent as exc:
            return Delivery("unsent", None, exc.message)
        except ApiUnavailable as exc:
            return Delivery("pending", exc.status, exc.message, exc.retry_after_s)
        except ApiRejected as exc:
            return Delivery("failed", exc.status, exc.message)
        return Delivery("sent", response.status_code, None)

    def _raise_permanent(self, method: str, path: str, response: ApiResponse, accept: Collection[int]) -> None:
        """Raise for statuses that another try cannot fix; return for transient ones (429, 5xx).

        A status that is neither an error nor one the API's contract lists (Sigma answering 200)
        is no refusal, but another try would most likely get the same: it fails the request too.
        """
        status = response.status_code
        if _is_transient(status):
            return
        if status < 400:
            accepted = ", ".join(str(code) for code in sorted(accept))
            raise ApiRejected(
                f"{self.name} API {method} {path}: unexpected answer HTTP {status} (the contract accepts {accepted})",
                status=status, detail=self._detail(response),
            )
        if status in (401, 403):
            if self._token:
                reason = f"rejected the token (HTTP {status}) on {method} {path}: check {self._token_source}"
            else:
                reason = f"requires a token (HTTP {status}) on {method} {path}: set {self._token_source}"
            raise ApiAuthError(f"{self.name} API {reason}", status=status)
        detail = self._detail(response)
        raise ApiRejected(f"{self.name} API {method} {path}: HTTP {status}: {detail}", status=status, detail=detail)

    def _detail(self, response: ApiResponse) -> str:
        """A short printable one-line excerpt of the error body, with our token removed should the server echo it.

        The excerpt looks at fewer characters than were read, so an echoed token is never cut off.
        """
        text = response.content.decode("utf-8", "replace")
        if self._token:
            text = text.replace(self._token, "<redacted>")
        return one_line(text, _DETAIL_MAX_CHARS) or one_line(response.reason, _DETAIL_MAX_CHARS) or "no detail"
