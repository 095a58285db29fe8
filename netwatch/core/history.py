"""What one ping-sweep run adds to the stored history of a host: pure code, no I/O.

`check_entry` turns a host's check into its raw row (compact codes, microseconds, the counted gap);
`add_entry` adds that row to the hourly or daily tallies it touches: the check itself to the bucket
of `checked_at`, and the gap before it, split at bucket edges, to the confirmed state it was spent
in (`prior`). `rollups_from_raw` adds the raw rows this way, oldest first; the writer adds the same
amounts to the stored rows in SQL (netwatch/db/rollups.py): every counter is a sum (the latency as
`rtt_sum_us`, averaged by readers over `rtt_samples`) or a min / max, so the order does not matter
and both give the same rollups.

An hour's p95 needs its whole histogram: it is computed when the hour closes (`closing_hours`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from netwatch.core import rollup
from netwatch.core.checks import CheckResult
from netwatch.core.hoststate import Status

_EMPTY_HIST = (0,) * rollup.RTT_BUCKETS
_OK, _DEGRADED, _FAILED = (rollup.CHECK_CODES[name] for name in ("ok", "degraded", "failed"))
_UNKNOWN, _ONLINE, _OFFLINE = (rollup.STATE_CODES[name] for name in ("unknown", "online", "offline"))


@dataclass(frozen=True)
class CheckEntry:
    """One host's check as the `checks` table stores it; times in epoch seconds, RTTs in microseconds."""

    target_id: int
    checked_at: int
    status: int
    prior: int
    state: int
    gap_s: int
    sent: int
    received: int
    attempts: int
    rtt_min_us: int | None
    rtt_avg_us: int | None
    rtt_max_us: int | None
    rtt_bucket: int | None
    error: str | None


def check_entry(target_id: int, checked_at: int, previous_check_at: int | None, prior: Status, state: Status,
                result: CheckResult, gap_limit_s: int) -> CheckEntry:
    """The raw row of a check at `checked_at` of a host last checked at `previous_check_at` (None: new)."""
    return CheckEntry(
        target_id=target_id,
        checked_at=checked_at,
        # A StrEnum member is its text as a dict key: no str() per host.
        status=rollup.CHECK_CODES[result.status],
        prior=rollup.STATE_CODES[prior],
        state=rollup.STATE_CODES[state],
        gap_s=rollup.counted_gap(previous_check_at, checked_at, gap_limit_s),
        sent=result.sent,
        received=result.received,
        attempts=result.attempts,
        rtt_min_us=_micros(result.rtt_min_ms),
        rtt_avg_us=_micros(result.rtt_avg_ms),
        rtt_max_us=_micros(result.rtt_max_ms),
        rtt_bucket=None if result.rtt_avg_ms is None else rollup.rtt_bucket(result.rtt_avg_ms),
        error=result.error,
    )


@dataclass(frozen=True)
class Tally:
    """The counters of one rollup row (one bucket of one target), with its RTT histogram."""

    ok: int = 0
    degraded: int = 0
    failed: int = 0
    sent: int = 0
    received: int = 0
    rtt_samples: int = 0
    rtt_min_us: int | None = None
    rtt_sum_us: int = 0
    rtt_max_us: int | None = None
    online_s: int = 0
    offline_s: int = 0
    unknown_s: int = 0
    hist: tuple[int, ...] = field(default=_EMPTY_HIST)

    @property
    def checks(self) -> int:
        """Every check counts in exactly one status (so no column stores the total)."""
        return self.ok + self.degraded + self.failed

    @property
    def rtt_p95_us(self) -> int | None:
        """The 95th percentile of the checks' averages, clamped to the observed min and max."""
        return p95_us(self.hist, self.rtt_min_us, self.rtt_max_us)


def p95_us(histogram: Sequence[int], low_us: int | None, high_us: int | None) -> int | None:
    """The 95th percentile of a histogram of checks' averages clamped to [low_us, high_us], in microseconds."""
    low = None if low_us is None else low_us / 1000
    high = None if high_us is None else high_us / 1000
    return _micros(rollup.percentile_ms(histogram, 0.95, low, high))


def replied(entry: CheckEntry) -> bool:
    """Whether the check has an RTT sample (replies came): it counts in rtt_* and the histogram."""
    return not (entry.rtt_avg_us is None or entry.rtt_min_us is None or entry.rtt_max_us is None
                or entry.rtt_bucket is None)


Key = tuple[int, int]  # (bucket start, target id)


def add_entry(tallies: Mapping[Key, Tally], entry: CheckEntry, size_s: int) -> dict[Key, Tally]:
    """The tallies `entry` changes (buckets of `size_s` seconds), each with it added; others are left out."""
    changed: dict[Key, Tally] = {}
    bucket, seconds, earlier = gap_parts(entry, size_s)
    for start, part in earlier:
        key = (start, entry.target_id)
        changed[key] = _add_time(tallies.get(key) or Tally(), entry.prior, part)
    key = (bucket, entry.target_id)
    tally = tallies.get(key) or Tally()
    if seconds > 0:
        tally = _add_time(tally, entry.prior, seconds)
    changed[key] = _add_check(tally, entry)
    return changed


def add_entries(tallies: Mapping[Key, Tally], entries: Iterable[CheckEntry], size_s: int) -> dict[Key, Tally]:
    """`tallies` with every entry added in turn (all of them, changed or not)."""
    result = dict(tallies)
    for entry in entries:
        result.update(add_entry(result, entry, size_s))
    return result


def _add_time(tally: Tally, state: int, seconds: int) -> Tally:
    t = tally
    return Tally(t.ok, t.degraded, t.failed, t.sent, t.received, t.rtt_samples, t.rtt_min_us, t.rtt_sum_us,
                 t.rtt_max_us, t.online_s + seconds * (state == _ONLINE), t.offline_s + seconds * (state == _OFFLINE),
                 t.unknown_s + seconds * (state == _UNKNOWN), t.hist)


def _add_check(tally: Tally, entry: CheckEntry) -> Tally:
    # One constructor call per check (no dataclasses.replace): the writer adds 20,000 entries a run at 10,000 hosts.
    t, status = tally, entry.status
    ok, degraded, failed = t.ok + (status == _OK), t.degraded + (status == _DEGRADED), t.failed + (status == _FAILED)
    if not replied(entry):
        return Tally(ok, degraded, failed, t.sent + entry.sent, t.received + entry.received,
                     t.rtt_samples, t.rtt_min_us, t.rtt_sum_us, t.rtt_max_us, t.online_s, t.offline_s, t.unknown_s,
                     t.hist)
    hist = list(t.hist)
    hist[entry.rtt_bucket] += 1
    return Tally(ok, degraded, failed, t.sent + entry.sent, t.received + entry.received,
                 t.rtt_samples + 1, entry.rtt_min_us if t.rtt_min_us is None else min(t.rtt_min_us, entry.rtt_min_us),
                 t.rtt_sum_us + entry.rtt_avg_us,
                 entry.rtt_max_us if t.rtt_max_us is None else max(t.rtt_max_us, entry.rtt_max_us),
                 t.online_s, t.offline_s, t.unknown_s, tuple(hist))


def closing_hours(entries: Iterable[CheckEntry], previous_checks: Mapping[int, int | None]) -> set[Key]:
    """The hourly rows whose p95 is due with `entries`: the hour of each target's previous check when
    its entry is in a later hour (that hour is over). A clock stepped back across an hour edge can add
    checks to an hour already closed: its p95 is computed again when the target's checks leave it."""
    closing = set()
    for entry in entries:
        previous = previous_checks.get(entry.target_id)
        if previous is not None:
            hour = rollup.bucket_start(previous, rollup.HOUR)
            if hour < rollup.bucket_start(entry.checked_at, rollup.HOUR):
                closing.add((hour, entry.target_id))
    return closing


def gap_parts(entry: CheckEntry, size_s: int) -> tuple[int, int, list[tuple[int, int]]]:
    """Where `entry` counts in buckets of `size_s`: (its bucket, seconds of its gap in that bucket,
    [(earlier bucket, seconds of the gap in it)]), the way `add_entry` splits it."""
    bucket = rollup.bucket_start(entry.checked_at, size_s)
    began = entry.checked_at - entry.gap_s
    if began >= bucket:
        return bucket, entry.gap_s, []
    return bucket, entry.checked_at - bucket, rollup.split_interval(began, bucket, size_s)


def _micros(ms: float | None) -> int | None:
    return None if ms is None else round(ms * 1000)
