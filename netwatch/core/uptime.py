"""Uptime report arithmetic: summed counters and incidents -> the figures of one row. Pure code.

The counters are the same whether they were summed from daily rollups or from raw checks (see
netwatch/history/uptime.py), so both sources give the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from netwatch.core.periods import Period
from netwatch.core.rollup import percentile_ms, uptime_percent


@dataclass(frozen=True)
class Totals:
    """Counters summed over a period for one host or one account (`hosts`: how many were summed)."""

    hosts: int
    checks: int
    ok: int
    degraded: int
    failed: int
    sent: int
    received: int
    rtt_samples: int
    rtt_min_us: int | None
    rtt_sum_us: int  # the sum of the checks' average RTTs: over rtt_samples, the latency average
    rtt_max_us: int | None
    online_s: int
    offline_s: int
    histogram: tuple[int, ...]


@dataclass(frozen=True)
class Downtime:
    """Incidents seen in a period: how many, the offline time inside it, and recovery times."""

    incidents: int
    total_s: int
    longest_s: int | None
    mttr_s: int | None


@dataclass(frozen=True)
class DowntimeSums:
    """One host's incidents in a period, summed (history/incidents.py): how many overlapped it, their
    offline seconds inside it (total and longest), and how many ended in it with their whole durations."""

    incidents: int
    total_s: int
    longest_s: int | None
    ended: int
    ended_s: int


def downtime(parts: Sequence[DowntimeSums]) -> Downtime:
    """The downtime of one host or of several (an account): counts and totals add up, the longest is
    the longest of all, and MTTR is the mean whole duration of the incidents that ended (also the part
    before the period began)."""
    ended = sum(part.ended for part in parts)
    longest = [part.longest_s for part in parts if part.longest_s is not None]
    return Downtime(
        incidents=sum(part.incidents for part in parts),
        total_s=sum(part.total_s for part in parts),
        longest_s=max(longest, default=None),
        mttr_s=round(sum(part.ended_s for part in parts) / ended) if ended else None,
    )


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else round(microseconds / 1000, 3)


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 3)


def uptime_figures(totals: Totals, period: Period, down: Downtime) -> dict[str, Any]:
    """The report's numbers: uptime % of the known time, unknown time, checks, downtime, loss, latency."""
    unknown_s = max(0, totals.hosts * period.known_s - totals.online_s - totals.offline_s)
    low, high = _ms(totals.rtt_min_us), _ms(totals.rtt_max_us)
    return {
        "uptime_pct": uptime_percent(totals.online_s, totals.offline_s),
        "online_s": totals.online_s,
        "offline_s": totals.offline_s,
        "unknown_s": unknown_s,
        "checks": totals.checks,
        "good_checks": totals.ok + totals.degraded,
        "check_success_pct": _percent(totals.ok + totals.degraded, totals.checks),
        "incidents": down.incidents,
        "downtime_s": down.total_s,
        "longest_downtime_s": down.longest_s,
        "mttr_s": down.mttr_s,
        "loss_pct": _percent(totals.sent - totals.received, totals.sent),
        "latency_avg_ms": _ms(totals.rtt_sum_us / totals.rtt_samples) if totals.rtt_samples else None,
        "latency_p95_ms": percentile_ms(totals.histogram, 0.95, low, high),
        "latency_max_ms": high,
    }
