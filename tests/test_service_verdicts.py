"""Judging what a service check measured (netwatch/core/servicecheck.py): plain values, no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from netwatch.core.checks import CheckStatus
from netwatch.core.servicecheck import EXCERPT_CHARS, HttpAnswer, format_ranges, judge_http, judge_tcp, may_quote
from netwatch.limits import ERROR_TEXT
from netwatch.services import HttpCheckSpec, TcpCheckSpec

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
URL = "https://shop.example.invalid/health"


def answer(status: int = 200, elapsed_ms: float = 20.0, body: bytes = b"fine", content_type: str | None = None,
           days_left: float | None = None) -> HttpAnswer:
    not_after = None if days_left is None else NOW + timedelta(days=days_left)
    return HttpAnswer(status, elapsed_ms, body, content_type, not_after)


def test_an_expected_answer_is_ok_with_its_numbers() -> None:
    result = judge_http(HttpCheckSpec("web", URL), answer(elapsed_ms=12.34567), NOW)

    assert (result.status, result.reason, result.elapsed_ms, result.status_code, result.size_bytes, result.excerpt) == (
        CheckStatus.OK, None, 12.346, 200, 4, None)


@pytest.mark.parametrize(("ranges", "text"), [
    (((200, 399),), "200-399"), (((200, 200), (204, 204)), "200, 204"), (((200, 299), (404, 404)), "200-299, 404"),
])
def test_ranges_are_written_as_configured(ranges: tuple[tuple[int, int], ...], text: str) -> None:
    assert format_ranges(ranges) == text


@pytest.mark.parametrize(("code", "status"), [(199, "failed"), (200, "ok"), (399, "ok"), (400, "failed")])
def test_range_bounds_are_inclusive(code: int, status: str) -> None:
    assert judge_http(HttpCheckSpec("web", URL), answer(code), NOW).status == status


def test_a_failed_answer_keeps_a_bounded_one_line_excerpt() -> None:
    result = judge_http(HttpCheckSpec("web", URL), answer(503, body=b"down\nfor\tmaintenance " * 100), NOW)

    assert result.reason == "status 503 (expected 200-399)"
    assert result.excerpt is not None and result.excerpt.startswith("down for maintenance down")
    assert len(result.excerpt) <= EXCERPT_CHARS and result.excerpt.endswith("...")


def test_an_empty_failed_body_has_no_excerpt() -> None:
    assert judge_http(HttpCheckSpec("web", URL), answer(500, body=b""), NOW).excerpt is None


@pytest.mark.parametrize(("spec", "quoted"), [
    (HttpCheckSpec("plain", URL), True),
    (HttpCheckSpec("user", URL, username="monitor", password="pw-123456"), False),
    (HttpCheckSpec("header", URL, headers=(("Accept", "text/html"),)), False),
    (HttpCheckSpec("body", URL, method="POST", body="{}"), False),
    (HttpCheckSpec("query", URL + "?key=abc"), False),
    (HttpCheckSpec("userinfo", "https://me:pw@shop.example.invalid/"), False),
])
def test_a_body_is_quoted_only_when_the_check_sent_nothing_of_its_own(spec: HttpCheckSpec, quoted: bool) -> None:
    assert may_quote(spec) is quoted
    assert (judge_http(spec, answer(500, body=b"oops"), NOW).excerpt is not None) is quoted


def test_body_checks_read_the_charset_of_the_answer() -> None:
    spec = HttpCheckSpec("web", URL, body_contains="café", body_matches=re.compile(r"caf\w"))
    latin = "menu: café".encode("latin-1")

    assert judge_http(spec, answer(body=latin, content_type="text/plain; charset=ISO-8859-1"), NOW).status == "ok"
    assert judge_http(spec, answer(body="menu: café".encode()), NOW).status == "ok"
    unknown = judge_http(spec, answer(body="menu: café".encode(), content_type="text/plain; charset=nonsense"), NOW)
    assert unknown.status == "ok"
    assert judge_http(spec, answer(body=latin), NOW).reason == "body mismatch: body_contains not found"


@pytest.mark.parametrize(("elapsed_ms", "status"), [(499.9994, "ok"), (499.9996, "degraded"), (500.0, "degraded")])
def test_slow_is_reaching_the_limit_after_rounding(elapsed_ms: float, status: str) -> None:
    result = judge_http(HttpCheckSpec("web", URL, degraded_after_ms=500), answer(elapsed_ms=elapsed_ms), NOW)

    assert result.status == status
    assert result.reason == (None if status == "ok" else "slow: 500 ms >= 500 ms")


@pytest.mark.parametrize(("days_left", "reason"), [
    (14.0, None), (13.99, "certificate expires in 13 days"), (1.5, "certificate expires in 1 day"),
    (0.2, "certificate expires in 0 days"), (-0.5, "certificate expires in 0 days"), (None, None),
])
def test_certificate_days_left_are_whole_days_rounded_down(days_left: float | None, reason: str | None) -> None:
    spec = HttpCheckSpec("web", URL, cert_expiry_warning_days=14)
    result = judge_http(spec, answer(days_left=days_left), NOW)

    assert result.reason == reason
    assert result.status == ("ok" if reason is None else "degraded")


def test_without_a_warning_setting_the_certificate_is_not_judged() -> None:
    assert judge_http(HttpCheckSpec("web", URL), answer(days_left=1), NOW).status == "ok"


def test_slow_and_expiring_are_both_given() -> None:
    spec = HttpCheckSpec("web", URL, degraded_after_ms=100, cert_expiry_warning_days=30)

    assert judge_http(spec, answer(elapsed_ms=250, days_left=9.5), NOW).reason == (
        "slow: 250 ms >= 100 ms; certificate expires in 9 days")


def test_a_failure_wins_over_degradation_and_reasons_fit_their_column() -> None:
    ranges = tuple((n, n) for n in range(100, 200))
    spec = HttpCheckSpec("web", URL, expected_status=ranges, degraded_after_ms=1, cert_expiry_warning_days=30)
    result = judge_http(spec, answer(500, elapsed_ms=900, days_left=1), NOW)

    assert result.status is CheckStatus.FAILED
    assert result.reason is not None and len(result.reason) == ERROR_TEXT and result.reason.endswith("...")


def test_a_tcp_connect_is_ok_or_slow() -> None:
    assert judge_tcp(TcpCheckSpec("db", "db.example.invalid", 5432), 3.21).status == "ok"
    slow = judge_tcp(TcpCheckSpec("db", "db.example.invalid", 5432, degraded_after_ms=2), 3.21)
    assert (slow.status, slow.reason, slow.elapsed_ms) == ("degraded", "slow: 3 ms >= 2 ms", 3.21)
