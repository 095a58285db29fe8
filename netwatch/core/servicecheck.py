"""Judge what an HTTP or TCP check measured: ok, degraded or failed, and why. Pure code.

A check fails on an unexpected status code or a body that does not match; a working one is
degraded when it was slow (elapsed reached `degraded_after_ms`) or its certificate expires within
`cert_expiry_warning_days`, both reasons given when both hold. Reasons are one short line cut to
the stored width (limits.ERROR_TEXT). Only a failed answer keeps an excerpt of its body, and only
when the check sent nothing that a server could echo back into it (see `may_quote`).
"""

from __future__ import annotations

import codecs
import email.message
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from netwatch.core.checks import CheckResult, CheckStatus
from netwatch.excerpt import one_line
from netwatch.limits import ERROR_TEXT
from netwatch.services import HttpCheckSpec, ServiceResult, TcpCheckSpec

# Of a failed answer's body, the excerpt looks at this many bytes and keeps at most this many characters.
EXCERPT_BYTES = 512
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class HttpAnswer:
    """The final answer of an HTTP check: `body` is its first bytes (at most the pass's max_body_bytes).

    `content_type` is the Content-Type header as sent; `cert_not_after` the earliest expiry of the
    verified certificates met on the way (None over plain HTTP or without verification).
    """

    status_code: int
    elapsed_ms: float
    body: bytes
    content_type: str | None = None
    cert_not_after: datetime | None = None


def failed(name: str, reason: str, elapsed_ms: float | None, *, status_code: int | None = None,
           size_bytes: int | None = None, excerpt: str | None = None) -> ServiceResult:
    """A failed result with `reason` as one line of at most the stored width."""
    return ServiceResult(name, CheckStatus.FAILED, one_line(reason, ERROR_TEXT), _ms(elapsed_ms),
                         status_code, size_bytes, excerpt)


def format_ranges(ranges: Sequence[tuple[int, int]]) -> str:
    """Status code ranges as configured: "200-399", "200, 204" or "200-299, 404"."""
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def may_quote(spec: HttpCheckSpec) -> bool:
    """Whether a failed answer's body may be quoted: only when the check sent nothing of its own.

    A server may echo what it was sent (a debug page showing the request, a form with the posted
    values), and a password, a header value, a request body or a URL's query or user part may be a
    secret. A check that sends any of them keeps no excerpt at all: masking would miss an echo in
    another encoding.
    """
    url = urlsplit(spec.url)
    return (spec.username is None and spec.password is None and not spec.headers and spec.body is None
            and not url.query and url.username is None and url.password is None)


def judge_http(spec: HttpCheckSpec, answer: HttpAnswer, now: datetime) -> ServiceResult:
    """The result of an HTTP check whose final answer is `answer`, at `now` (for the certificate's days left)."""
    elapsed = _ms(answer.elapsed_ms)
    size = len(answer.body)
    problem = _failure(spec, answer)
    if problem is not None:
        excerpt = _excerpt(answer) if may_quote(spec) else None
        return failed(spec.name, problem, elapsed, status_code=answer.status_code, size_bytes=size, excerpt=excerpt)
    reasons = [_slow(spec.degraded_after_ms, elapsed), _expiring(spec.cert_expiry_warning_days,
                                                               answer.cert_not_after, now)]
    return _working(spec.name, [r for r in reasons if r], elapsed, answer.status_code, size)


def judge_tcp(spec: TcpCheckSpec, elapsed_ms: float) -> ServiceResult:
    """The result of a TCP check whose connection opened after `elapsed_ms`."""
    elapsed = _ms(elapsed_ms)
    slow = _slow(spec.degraded_after_ms, elapsed)
    return _working(spec.name, [slow] if slow else [], elapsed, None, None)


def as_check(result: ServiceResult) -> CheckResult:
    """A service result as the history and the threshold machine take a check: one request, answered or not.

    A working check (ok or degraded) counts one reply with its response time as the RTT; a failed
    one none, with no time (a timeout's wait is not a latency). The reason is kept as the error.
    """
    working = result.status is not CheckStatus.FAILED
    elapsed = result.elapsed_ms if working else None
    return CheckResult(sent=1, received=1 if working else 0, loss_percent=0.0 if working else 100.0,
                       rtt_min_ms=elapsed, rtt_avg_ms=elapsed, rtt_max_ms=elapsed, status=result.status,
                       error=result.reason, attempts=1)


def _working(name: str, reasons: list[str], elapsed: float, status_code: int | None,
             size: int | None) -> ServiceResult:
    if not reasons:
        return ServiceResult(name, CheckStatus.OK, None, elapsed, status_code, size)
    return ServiceResult(name, CheckStatus.DEGRADED, one_line("; ".join(reasons), ERROR_TEXT), elapsed,
                         status_code, size)


def _ms(elapsed_ms: float | None) -> float | None:
    # Stored and compared as rounded, so that a stored result explains its own status.
    return None if elapsed_ms is None else round(elapsed_ms, 3)


def _failure(spec: HttpCheckSpec, answer: HttpAnswer) -> str | None:
    code = answer.status_code
    if not any(low <= code <= high for low, high in spec.expected_status):
        return f"status {code} (expected {format_ranges(spec.expected_status)})"
    if spec.body_contains is None and spec.body_matches is None:
        return None
    text = _text(answer)
    if spec.body_contains is not None and spec.body_contains not in text:
        return "body mismatch: body_contains not found"
    if spec.body_matches is not None and spec.body_matches.search(text) is None:
        return "body mismatch: body_matches not matched"
    return None


def _slow(limit_ms: float | None, elapsed_ms: float) -> str | None:
    if limit_ms is None or elapsed_ms < limit_ms:
        return None
    return f"slow: {elapsed_ms:.0f} ms >= {limit_ms:g} ms"


def _expiring(warning_days: int | None, not_after: datetime | None, now: datetime) -> str | None:
    if warning_days is None or not_after is None:
        return None
    # Whole days left, rounded down: a certificate with 13.9 days left "expires in 13 days".
    days = max(0, (not_after - now) // timedelta(days=1))
    if days >= warning_days:
        return None
    return f"certificate expires in {days} day{'' if days == 1 else 's'}"


def _charset(content_type: str | None) -> str:
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        charset = message.get_content_charset()
        if charset:
            try:
                return codecs.lookup(charset).name
            except LookupError:
                pass
    return "utf-8"


def _text(answer: HttpAnswer, limit: int | None = None) -> str:
    body = answer.body if limit is None else answer.body[:limit]
    return body.decode(_charset(answer.content_type), "replace")


def _excerpt(answer: HttpAnswer) -> str | None:
    return one_line(_text(answer, EXCERPT_BYTES), EXCERPT_CHARS) or None
