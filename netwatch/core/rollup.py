"""The arithmetic of history: pure code, no I/O, shared by the writer, the reports and the status page.

- States and check statuses are stored as small codes (`STATE_CODES`, `CHECK_CODES`).
- Buckets have UTC edges: an hour starts at a multiple of 3,600 epoch seconds, a day at one of 86,400.
- Time in a confirmed state is attributed to the buckets it falls in (`split_interval`); a stretch
  longer than the gap limit (the job did not run) counts only up to the limit (`counted_gap`).
- RTT percentiles come from a histogram of each check's average RTT over `RTT_BUCKETS` geometric
  buckets (edges 0.1 ms x sqrt(2)^k), interpolated inside the bucket and clamped to the observed
  min and max. The same histogram is built from raw rows and from rollups, so both give the same p95.
- Uptime is online time over online plus offline time: unknown time is excluded (and reported).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HOUR = 3_600
DAY = 86_400

STATE_CODES = {"unknown": 0, "online": 1, "offline": 2}
STATE_NAMES = {code: name for name, code in STATE_CODES.items()}
CHECK_CODES = {"ok": 0, "degraded": 1, "failed": 2}
CHECK_NAMES = {code: name for name, code in CHECK_CODES.items()}

RTT_BUCKETS = 40
_FIRST_EDGE_MS = 0.1
_RATIO = math.sqrt(2)
# RTT_EDGES_MS[k] is the lower edge of bucket k + 1; bucket 0 holds everything under 0.1 ms.
RTT_EDGES_MS = tuple(_FIRST_EDGE_MS * _RATIO**k for k in range(RTT_BUCKETS))


def bucket_start(epoch_s: int, size_s: int) -> int:
    """The start of the UTC bucket of `size_s` seconds (HOUR or DAY) holding `epoch_s`."""
    return epoch_s - epoch_s % size_s


def counted_gap(previous_s: int | None, now_s: int, limit_s: int) -> int:
    """Seconds since the previous check that count as observed: 0 for a first check or a clock that
    went back, else the elapsed time capped at the gap limit (longer means the job did not run)."""
    if previous_s is None or now_s <= previous_s:
        return 0
    return min(now_s - previous_s, limit_s)


def split_interval(start_s: int, end_s: int, size_s: int) -> list[tuple[int, int]]:
    """[start, end) cut at bucket edges: (bucket start, seconds in it), oldest first; [] when empty."""
    parts = []
    at = start_s
    while at < end_s:
        bucket = bucket_start(at, size_s)
        stop = min(end_s, bucket + size_s)
        parts.append((bucket, stop - at))
        at = stop
    return parts


def rtt_bucket(rtt_ms: float) -> int:
    """The histogram bucket of one RTT in milliseconds."""
    if rtt_ms < _FIRST_EDGE_MS:
        return 0
    return min(RTT_BUCKETS - 1, 1 + int(math.log(rtt_ms / _FIRST_EDGE_MS, _RATIO) + 1e-9))


def percentile_ms(histogram: Sequence[int], fraction: float, low_ms: float | None = None,
                  high_ms: float | None = None) -> float | None:
    """The `fraction` (0..1) percentile of a histogram, in ms (3 decimals); None when it is empty.

    Nearest rank, then geometric interpolation inside the bucket that holds that rank; the result
    is clamped to [low_ms, high_ms] (the observed min and max) when they are given.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    before = 0
    for index, count in enumerate(histogram):
        if count and before + count >= rank:
            share = (rank - before) / count
            if index == 0:
                value = _FIRST_EDGE_MS * share
            else:
                low = RTT_EDGES_MS[index - 1]
                value = low * _RATIO**share
            break
        before += count
    if low_ms is not None:
        value = max(value, low_ms)
    if high_ms is not None:
        value = min(value, high_ms)
    return round(value, 3)


def uptime_percent(online_s: int, offline_s: int) -> float | None:
    """Online share of the known time, in percent (3 decimals); None when nothing is known."""
    known = online_s + offline_s
    return None if known == 0 else round(100 * online_s / known, 3)


@dataclass(frozen=True)
class Incident:
    """An offline period of one host: `end_s` None while it is ongoing."""

    target_id: int
    start_s: int
    end_s: int | None

    def duration_s(self, now_s: int) -> int:
        return (now_s if self.end_s is None else self.end_s) - self.start_s


def incidents_of(changes: Iterable[tuple[int, int, int]]) -> list[Incident]:
    """Offline periods from transitions (target id, at, to-state code), sorted by target then time.

    An incident starts at a change to offline and ends at the host's next change away from it;
    without one it is ongoing. Returned oldest first per target.
    """
    incidents = []
    open_at: dict[int, int] = {}
    for target_id, at_s, to_state in sorted(changes):
        if to_state == STATE_CODES["offline"]:
            open_at.setdefault(target_id, at_s)
        elif target_id in open_at:
            incidents.append(Incident(target_id, open_at.pop(target_id), at_s))
    incidents.extend(Incident(target_id, start, None) for target_id, start in open_at.items())
    return sorted(incidents, key=lambda i: (i.target_id, i.start_s))
