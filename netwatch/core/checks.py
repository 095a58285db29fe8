"""Turn the raw numbers of one ping check into the result row the sweep stores: pure code.

A check is `failed` when no reply came, `degraded` when replies came but the loss or the average
round-trip time reached its limit (both bounds inclusive: "crossed" means "reached"), else `ok`.
The limits are compared with the rounded values that are stored, so a stored row always explains
its own status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

NO_REPLY = "no reply"


class CheckStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"


@dataclass(frozen=True)
class CheckResult:
    """One check of one host: loss is 0..100 (2 decimals), RTTs in ms (3 decimals, None without replies)."""

    sent: int
    received: int
    loss_percent: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    status: CheckStatus
    error: str | None
    attempts: int

    @property
    def check_ok(self) -> bool:
        """True when replies came (ok or degraded): the input of the host state machine."""
        return self.status is not CheckStatus.FAILED


def evaluate_check(
    *,
    sent: int,
    received: int,
    rtts_ms: Sequence[float],
    attempts: int,
    error: str | None,
    loss_degraded_percent: float,
    latency_degraded_ms: float,
) -> CheckResult:
    """Classify one check; `rtts_ms` holds one round-trip time per reply (so `received` of them).

    `error` is kept only for a failed check (defaulting to "no reply"); a degraded check gets the
    reason as its error text, an ok check none. Inconsistent numbers raise `ValueError`.
    """
    _validate(sent, received, rtts_ms, attempts, loss_degraded_percent, latency_degraded_ms)
    loss = 100.0 if sent == 0 else round((sent - received) * 100 / sent, 2)
    if received == 0:
        return CheckResult(
            sent=sent,
            received=0,
            loss_percent=loss,
            rtt_min_ms=None,
            rtt_avg_ms=None,
            rtt_max_ms=None,
            status=CheckStatus.FAILED,
            error=error or NO_REPLY,
            attempts=attempts,
        )

    rtt_avg = round(math.fsum(rtts_ms) / len(rtts_ms), 3)
    reasons = []
    if loss >= loss_degraded_percent:
        reasons.append(f"loss {loss:g}% >= {loss_degraded_percent:g}%")
    if rtt_avg >= latency_degraded_ms:
        reasons.append(f"avg rtt {rtt_avg:g} ms >= {latency_degraded_ms:g} ms")
    return CheckResult(
        sent=sent,
        received=received,
        loss_percent=loss,
        rtt_min_ms=round(min(rtts_ms), 3),
        rtt_avg_ms=rtt_avg,
        rtt_max_ms=round(max(rtts_ms), 3),
        status=CheckStatus.DEGRADED if reasons else CheckStatus.OK,
        error="; ".join(reasons) or None,
        attempts=attempts,
    )


def _validate(
    sent: int,
    received: int,
    rtts_ms: Sequence[float],
    attempts: int,
    loss_degraded_percent: float,
    latency_degraded_ms: float,
) -> None:
    if sent < 0 or received < 0 or attempts < 0:
        raise ValueError(f"negative count: sent={sent} received={received} attempts={attempts}")
    if received > sent:
        raise ValueError(f"received ({received}) exceeds sent ({sent})")
    if len(rtts_ms) != received:
        raise ValueError(f"expected one rtt per reply: {len(rtts_ms)} rtts for {received} replies")
    if not all(math.isfinite(rtt) and rtt >= 0 for rtt in rtts_ms):
        raise ValueError(f"rtts must be finite and >= 0, got {list(rtts_ms)}")
    # `not >= 0` also rejects NaN, which would silently disable the limit.
    if not loss_degraded_percent >= 0 or not latency_degraded_ms >= 0:
        raise ValueError(
            f"degraded limits must be >= 0, got loss {loss_degraded_percent} latency {latency_degraded_ms}"
        )
