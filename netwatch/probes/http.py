"""HTTP(S) service checks: one request per check (and its redirects), judged by netwatch/core/servicecheck.py.

Each check opens its own connections (a pass measures what a new visitor meets, TLS set-up
included) through urllib3, with no retries, no proxy from the environment and redirects followed
here: up to REDIRECT_LIMIT, a URL met twice being a loop. The whole exchange (name lookup,
connect, TLS, status line, headers, body, every redirect) runs within the check's budget
(netwatch/probes/pool.py), and at most `max_body_bytes` of a body are read. TLS is verified
against certifi's roots or the check's `ca_file`; the verified peer certificate gives the days
left. Nothing the check sends (headers, Basic-Auth, body) is logged or put in a result.
"""

from __future__ import annotations

import base64
import functools
import http.client
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import certifi
import urllib3
import urllib3.connection
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    InsecureRequestWarning,
    LocationParseError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Url, parse_url

from netwatch.core.servicecheck import HttpAnswer, failed, judge_http
from netwatch.probes.neterrors import connect_problem
from netwatch.probes.pool import Check, ProbeSettings, Sockets, run_checks, timed_out
from netwatch.services import HttpCheckSpec, ServiceResult
from netwatch.wire import read_capped, user_agent

# Redirects followed at most (when a check follows them); one more fails the check.
REDIRECT_LIMIT = 5
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Request headers that carry credentials: never sent on to another origin by a redirect.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Headers that describe the request body: dropped when a redirect turns the request into a GET.
_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

E = TypeVar("E", bound=BaseException)

# A check without verification asked for it (`verify_tls: false`): urllib3's warning about it would
# print, outside the log format, on every run that has such a check.
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


class _Failed(Exception):
    """A check ends as failed with `reason` (and the status code of the answer that ended it, if any)."""

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


@dataclass(frozen=True)
class _Tls:
    """How a check verifies TLS: a context shared by the checks that verify alike, or why there is none."""

    context: ssl.SSLContext | None
    problem: str | None = None


def check_http(specs: Sequence[HttpCheckSpec], settings: ProbeSettings, *, now: datetime,
               check_stop: Callable[[], None]) -> dict[str, ServiceResult]:
    """One pass over `specs` (netwatch/probes/pool.py): a result for each, by name, in order.

    `now` is the run's time, for the days a certificate has left. Raises what `check_stop` raises.
    """
    return run_checks(http_checks(specs, settings.max_body_bytes, now), settings, check_stop)


def http_checks(specs: Sequence[HttpCheckSpec], max_body_bytes: int, now: datetime) -> list[Check]:
    """The checks of a pass over `specs` (see `check_http`), to run alone or beside others."""
    contexts = {key: _tls(*key) for key in dict.fromkeys((spec.verify_tls, spec.ca_file) for spec in specs)}
    return [
        Check(spec.name, spec.timeout_seconds,
              functools.partial(_probe, spec, contexts[spec.verify_tls, spec.ca_file], max_body_bytes, now))
        for spec in specs
    ]


def _tls(verify: bool, ca_file: Path | None) -> _Tls:
    """One SSL context per way of verifying: loading roots takes milliseconds; a pass may hold thousands of checks."""
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return _Tls(context)
    try:
        return _Tls(ssl.create_default_context(cafile=str(ca_file) if ca_file else certifi.where()))
    except (OSError, ssl.SSLError) as exc:
        return _Tls(None, f"TLS error: ca_file not loaded: {(exc.strerror or exc.reason or 'unreadable').lower()}")


class _Cuttable:
    """A urllib3 connection that puts its socket in the check's Sockets once connected (TLS set up).

    A TLS handshake under way cannot be cut short (its socket is not ours until it is done); the
    socket timeout bounds each of its reads.
    """

    def __init__(self, *args: Any, sockets: Sockets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sockets = sockets

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._sockets.add(self.sock)  # type: ignore[attr-defined]


class _Connection(_Cuttable, urllib3.connection.HTTPConnection):
    pass


class _TlsConnection(_Cuttable, urllib3.connection.HTTPSConnection):
    """Also notes when the server's verified certificate expires: a connection whose answer is the last on
    it gives its socket away to the answer, so the certificate cannot be asked for later."""

    not_after: datetime | None = None

    def connect(self) -> None:
        super().connect()
        self.not_after = _not_after(self.sock)


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


def _probe(spec: HttpCheckSpec, tls: _Tls, max_body_bytes: int, now: datetime, budget_s: float, sockets: Sockets,
           abandoned: threading.Event) -> ServiceResult:
    """One check within `budget_s`: the request, its redirects and the first `max_body_bytes` of the answer."""
    started = time.monotonic()

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000

    if tls.context is None:
        return failed(spec.name, tls.problem or "TLS error", None)
    hop = functools.partial(_send, tls.context, sockets, started + budget_s)
    try:
        return judge_http(spec, _exchange(spec, hop, max_body_bytes, abandoned, elapsed_ms), now)
    except _Failed as exc:
        return failed(spec.name, exc.reason, elapsed_ms(), status_code=exc.status_code)
    except NewConnectionError as exc:  # before the timeouts: urllib3 makes it a ConnectTimeoutError too
        cause = exc.__cause__
        return failed(spec.name, connect_problem(cause) if isinstance(cause, OSError) else "connection error",
                      elapsed_ms())
    except (ConnectTimeoutError, ReadTimeoutError, TimeoutError):
        return timed_out(spec.name, spec.timeout_seconds, budget_s)
    except HTTPError as exc:
        return failed(spec.name, _problem(exc), elapsed_ms())
    except OSError as exc:
        return failed(spec.name, connect_problem(exc), elapsed_ms())


def _send(context: ssl.SSLContext, sockets: Sockets, ends: float, method: str, url: Url, body: bytes | None,
          headers: HTTPHeaderDict) -> urllib3.BaseHTTPResponse:
    """One request on a connection of its own, its answer not read yet (the caller closes it)."""
    left = max(0.001, ends - time.monotonic())
    timeout = urllib3.Timeout(connect=left, read=left)
    if url.scheme == "https":
        pool: urllib3.HTTPConnectionPool = _TlsPool(url.host, url.port, timeout=timeout, maxsize=1, retries=False,
                                                    ssl_context=context, sockets=sockets)
    else:
        pool = _Pool(url.host, url.port, timeout=timeout, maxsize=1, retries=False, sockets=sockets)
    return pool.urlopen(method, url.request_uri, body=body, headers=headers, redirect=False, retries=False,
                        preload_content=False, assert_same_host=False)


def _exchange(spec: HttpCheckSpec, send: Callable[..., urllib3.BaseHTTPResponse], max_body_bytes: int,
              abandoned: threading.Event, elapsed_ms: Callable[[], float]) -> HttpAnswer:
    """The final answer after the redirects a check follows; raises _Failed or urllib3's errors."""
    url = _parse(spec.url, "invalid URL")
    method = spec.method
    body = spec.body.encode("utf-8") if spec.body is not None else None
    headers = _request_headers(spec)
    seen = {url.url}
    not_after: datetime | None = None
    for redirects in range(REDIRECT_LIMIT + 1):
        if abandoned.is_set():
            raise _Failed("abandoned")
        response = send(method, url, body, headers)
        try:
            not_after = _earliest(not_after, _peer_not_after(response))
            location = response.headers.get("Location")
            if not (spec.follow_redirects and response.status in _REDIRECT_CODES and location):
                content = b"" if method == "HEAD" else read_capped(response, max_body_bytes, abandoned)
                return HttpAnswer(response.status, elapsed_ms(), content, response.headers.get("Content-Type"),
                                  not_after)
            status = response.status
        finally:
            response.close()
        target = _parse(urljoin(url.url, location), "redirect to an invalid URL", status)
        if target.url in seen:
            raise _Failed(f"redirect loop after {redirects + 1} redirects", status)
        seen.add(target.url)
        if not _same_origin(url, target):
            headers = _without(headers, _CREDENTIAL_HEADERS)
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = _without(headers, _BODY_HEADERS)
        url = target
    raise _Failed(f"too many redirects (more than {REDIRECT_LIMIT})", status)


def _parse(text: str, problem: str, status_code: int | None = None) -> Url:
    """An absolute http(s) URL with a host, else _Failed(problem): never quoting the URL, which may hold a secret."""
    try:
        url = parse_url(text)
    except LocationParseError:
        raise _Failed(problem, status_code) from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise _Failed(f"{problem}: not an http or https URL with a host", status_code)
    return url


def _same_origin(current: Url, target: Url) -> bool:
    """Whether credentials may follow a redirect: same scheme, host and port (a default port spelled out or not)."""
    return (current.scheme, current.host, current.port or _DEFAULT_PORTS[current.scheme or "http"]) == (
        target.scheme, target.host, target.port or _DEFAULT_PORTS[target.scheme or "http"])


def _request_headers(spec: HttpCheckSpec) -> HTTPHeaderDict:
    # Case-insensitive: a configured "user-agent" replaces ours instead of going out beside it.
    headers = HTTPHeaderDict({"User-Agent": user_agent()})
    for name, value in spec.headers:
        headers[name] = value
    if spec.username is not None:
        credentials = f"{spec.username}:{spec.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    return headers


def _without(headers: HTTPHeaderDict, names: frozenset[str]) -> HTTPHeaderDict:
    return HTTPHeaderDict({name: value for name, value in headers.items() if name.lower() not in names})


def _peer_not_after(response: urllib3.BaseHTTPResponse) -> datetime | None:
    """When the verified certificate of the server that answered expires; None over HTTP or unverified TLS."""
    connection = response.connection
    return connection.not_after if isinstance(connection, _TlsConnection) else None


def _not_after(sock: object) -> datetime | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert()  # empty unless the certificate was verified
    not_after = cert.get("notAfter") if cert else None
    if not isinstance(not_after, str):
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return min(first, second)


def _problem(exc: HTTPError) -> str:
    """A urllib3 error as a short reason: TLS, or what broke in the answer."""
    if isinstance(exc, SSLError):
        return _tls_problem(exc)
    if isinstance(exc, ProtocolError):
        return _protocol_problem(exc)
    if isinstance(exc, DecodeError):
        return "body not decodable (Content-Encoding)"
    return f"HTTP error: {type(exc).__name__}"


def _tls_problem(exc: BaseException) -> str:
    cause = _find(exc, ssl.SSLError)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS error: {cause.verify_message}"
    if cause is not None and cause.reason:
        return f"TLS error: {cause.reason.replace('_', ' ').lower()}"
    return "TLS error: handshake failed"


def _protocol_problem(exc: ProtocolError) -> str:
    cause = _find(exc, OSError) or _find(exc, http.client.HTTPException)
    if isinstance(cause, ssl.SSLError):
        return _tls_problem(cause)
    if isinstance(cause, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(cause, http.client.IncompleteRead):
        return "connection closed during the answer"
    if isinstance(cause, http.client.HTTPException):
        return "not a valid HTTP answer"
    if isinstance(cause, OSError):
        return connect_problem(cause)
    return "connection broken"


def _find(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` among exc, its arguments and what it was raised from (urllib3 wraps the errors it meets)."""
    pending = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None
