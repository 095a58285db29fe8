"""Classifying one ping check: ok / degraded / failed, rounding and bounds, with plain values."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from netwatch.core.checks import CheckResult, CheckStatus, evaluate_check

LOSS_LIMIT = 20.0
LATENCY_LIMIT = 200.0


def check(
    sent: int,
    received: int,
    rtts_ms: Sequence[float],
    *,
    attempts: int = 1,
    error: str | None = None,
    loss_limit: float = LOSS_LIMIT,
    latency_limit: float = LATENCY_LIMIT,
) -> CheckResult:
    return evaluate_check(
        sent=sent,
        received=received,
        rtts_ms=rtts_ms,
        attempts=attempts,
        error=error,
        loss_degraded_percent=loss_limit,
        latency_degraded_ms=latency_limit,
    )


def test_all_replies_fast_is_ok() -> None:
    result = check(4, 4, [10.0, 12.0, 11.0, 13.0], attempts=1, error="ignored when ok")

    assert result == CheckResult(
        sent=4,
        received=4,
        loss_percent=0.0,
        rtt_min_ms=10.0,
        rtt_avg_ms=11.5,
        rtt_max_ms=13.0,
        status=CheckStatus.OK,
        error=None,
        attempts=1,
    )
    assert result.check_ok is True


def test_no_reply_is_failed_with_default_error() -> None:
    result = check(4, 0, [], attempts=3)

    assert result == CheckResult(
        sent=4,
        received=0,
        loss_percent=100.0,
        rtt_min_ms=None,
        rtt_avg_ms=None,
        rtt_max_ms=None,
        status=CheckStatus.FAILED,
        error="no reply",
        attempts=3,
    )
    assert result.check_ok is False


@pytest.mark.parametrize(("given", "stored"), [("host unreachable", "host unreachable"), ("", "no reply")])
def test_failed_check_keeps_the_given_error(given: str, stored: str) -> None:
    assert check(4, 0, [], error=given).error == stored


def test_nothing_sent_is_failed_with_full_loss() -> None:
    result = check(0, 0, [], attempts=0, error="name resolution failed")

    assert result.status is CheckStatus.FAILED
    assert result.loss_percent == 100.0
    assert result.error == "name resolution failed"
    assert result.attempts == 0


@pytest.mark.parametrize(
    ("sent", "received", "loss"),
    [(3, 2, 33.33), (3, 1, 66.67), (6, 5, 16.67), (7, 6, 14.29), (4, 3, 25.0), (1, 1, 0.0)],
)
def test_loss_is_rounded_to_two_decimals(sent: int, received: int, loss: float) -> None:
    result = check(sent, received, [1.0] * received, loss_limit=100.0)

    assert result.loss_percent == loss


def test_rtts_are_rounded_to_three_decimals() -> None:
    result = check(3, 3, [1.23449, 2.0, 3.98765])

    assert (result.rtt_min_ms, result.rtt_avg_ms, result.rtt_max_ms) == (1.234, 2.407, 3.988)


@pytest.mark.parametrize(
    ("sent", "received", "loss_limit", "expected"),
    [
        (10, 8, 20.0, CheckStatus.DEGRADED),  # loss 20.0 reaches the limit: inclusive
        (10, 9, 20.0, CheckStatus.OK),  # 10.0 below
        (10, 7, 20.0, CheckStatus.DEGRADED),  # 30.0 above
        (3, 2, 33.33, CheckStatus.DEGRADED),  # compared after rounding: 33.33 reaches 33.33
        (3, 2, 33.34, CheckStatus.OK),
        (10, 1, 100.0, CheckStatus.OK),  # 90.0 below a 100 limit
    ],
)
def test_loss_limit_boundaries(sent: int, received: int, loss_limit: float, expected: CheckStatus) -> None:
    result = check(sent, received, [5.0] * received, loss_limit=loss_limit)

    assert result.status is expected
    assert result.check_ok is True


@pytest.mark.parametrize(
    ("rtts", "expected"),
    [
        ([200.0], CheckStatus.DEGRADED),  # exactly at the limit: inclusive
        ([199.999], CheckStatus.OK),
        ([199.9994], CheckStatus.OK),  # rounds to 199.999
        ([199.9996], CheckStatus.DEGRADED),  # rounds to 200.0, which is what is stored
        ([100.0, 300.0], CheckStatus.DEGRADED),  # the average decides, not the max
        ([10.0, 389.0], CheckStatus.OK),  # avg 199.5 even though one reply was slow
        ([500.0], CheckStatus.DEGRADED),
    ],
)
def test_latency_limit_boundaries(rtts: list[float], expected: CheckStatus) -> None:
    result = check(len(rtts), len(rtts), rtts)

    assert result.status is expected
    assert result.check_ok is True


def test_degraded_error_names_every_crossed_limit() -> None:
    result = check(10, 5, [250.0] * 5)

    assert result.status is CheckStatus.DEGRADED
    assert result.error == "loss 50% >= 20%; avg rtt 250 ms >= 200 ms"


def test_degraded_by_loss_only_names_loss() -> None:
    assert check(10, 5, [1.0] * 5).error == "loss 50% >= 20%"


def test_degraded_by_latency_only_names_latency() -> None:
    assert check(2, 2, [300.5, 300.5]).error == "avg rtt 300.5 ms >= 200 ms"


def test_zero_loss_limit_degrades_every_answered_check() -> None:
    # A configuration choice, not an error: "loss reached 0 %" is always true.
    assert check(1, 1, [1.0], loss_limit=0.0).status is CheckStatus.DEGRADED


def test_single_reply_sets_min_avg_max_alike() -> None:
    result = check(1, 1, [42.4242])

    assert result.rtt_min_ms == result.rtt_avg_ms == result.rtt_max_ms == 42.424


@pytest.mark.parametrize("status", list(CheckStatus))
def test_check_ok_is_true_unless_failed(status: CheckStatus) -> None:
    result = CheckResult(
        sent=1,
        received=1,
        loss_percent=0.0,
        rtt_min_ms=1.0,
        rtt_avg_ms=1.0,
        rtt_max_ms=1.0,
        status=status,
        error=None,
        attempts=1,
    )

    assert result.check_ok is (status is not CheckStatus.FAILED)


def test_status_values_are_the_stored_strings() -> None:
    assert [str(s) for s in CheckStatus] == ["ok", "degraded", "failed"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sent": -1, "received": 0, "rtts_ms": []}, "negative"),
        ({"sent": 1, "received": 0, "rtts_ms": [], "attempts": -1}, "negative"),
        ({"sent": 1, "received": 2, "rtts_ms": [1.0, 1.0]}, "exceeds"),
        ({"sent": 2, "received": 2, "rtts_ms": [1.0]}, "one rtt per reply"),
        ({"sent": 1, "received": 0, "rtts_ms": [1.0]}, "one rtt per reply"),
        ({"sent": 1, "received": 1, "rtts_ms": [-0.5]}, "finite"),
        ({"sent": 1, "received": 1, "rtts_ms": [float("nan")]}, "finite"),
        ({"sent": 1, "received": 1, "rtts_ms": [float("inf")]}, "finite"),
        ({"sent": 1, "received": 1, "rtts_ms": [1.0], "loss_limit": -1.0}, "limits"),
        ({"sent": 1, "received": 1, "rtts_ms": [1.0], "latency_limit": float("nan")}, "limits"),
    ],
)
def test_inconsistent_input_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check(**kwargs)  # type: ignore[arg-type]
