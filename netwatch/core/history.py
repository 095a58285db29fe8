"""What one ping-sweep run adds to the stored history of a host: pure code, no I/O.

`check_entry` turns a host's check into its raw row (compact codes, microseconds, the counted gap);
`add_entry` adds that row to the hourly or daily tallies it touches: the check itself to the bucket
of `checked_at`, and the gap before it, split at bucket edges, to the confirmed state it was spent
in (`prior`). The writer adds each run's entries to the stored tallies it read; `rollups_from_raw`
adds the raw rows again, oldest first: the same arithmetic, so both give the same rollups.

`rtt_avg_us` is the mean of the checks' averages, kept as a whole number of microseconds: each
check moves it by (average - mean) / samples, rounded half up. That is exact for whole-microsecond
averages folded in the same order; a clock stepped back changes the order of the writer's runs
against `checked_at`, and then the mean can differ from the recomputed one by rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
        status=rollup.CHECK_CODES[str(result.status)],
        prior=rollup.STATE_CODES[str(prior)],
        state=rollup.STATE_CODES[str(state)],
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

    checks: int = 0
    ok: int = 0
    degraded: int = 0
    failed: int = 0
    sent: int = 0
    received: int = 0
    rtt_samples: int = 0
    rtt_min_us: int | None = None
    rtt_avg_us: int | None = None
    rtt_max_us: int | None = None
    online_s: int = 0
    offline_s: int = 0
    unknown_s: int = 0
    hist: tuple[int, ...] = field(default=_EMPTY_HIST)

    @property
    def rtt_p95_us(self) -> int | None:
        """The 95th percentile of the checks' averages, clamped to the observed min and max."""
        low = None if self.rtt_min_us is None else self.rtt_min_us / 1000
        high = None if self.rtt_max_us is None else self.rtt_max_us / 1000
        p95 = rollup.percentile_ms(self.hist, 0.95, low, high)
        return _micros(p95)


Key = tuple[int, int]  # (bucket start, target id)


def add_entry(tallies: Mapping[Key, Tally], entry: CheckEntry, size_s: int) -> dict[Key, Tally]:
    """The tallies `entry` changes (buckets of `size_s` seconds), each with it added; others are left out."""
    changed: dict[Key, Tally] = {}
    bucket = rollup.bucket_start(entry.checked_at, size_s)
    for start, seconds in rollup.split_interval(entry.checked_at - entry.gap_s, entry.checked_at, size_s):
        if start != bucket:
            key = (start, entry.target_id)
            changed[key] = _add_time(tallies.get(key) or Tally(), entry.prior, seconds)
    key = (bucket, entry.target_id)
    tally = tallies.get(key) or Tally()
    if (seconds := min(entry.gap_s, entry.checked_at - bucket)) > 0:
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
    return Tally(t.checks, t.ok, t.degraded, t.failed, t.sent, t.received, t.rtt_samples, t.rtt_min_us, t.rtt_avg_us,
                 t.rtt_max_us, t.online_s + seconds * (state == _ONLINE), t.offline_s + seconds * (state == _OFFLINE),
                 t.unknown_s + seconds * (state == _UNKNOWN), t.hist)


def _add_check(tally: Tally, entry: CheckEntry) -> Tally:
    # One constructor call per check (no dataclasses.replace): the writer adds 20,000 entries a run at 10,000 hosts.
    t, status = tally, entry.status
    ok, degraded, failed = t.ok + (status == _OK), t.degraded + (status == _DEGRADED), t.failed + (status == _FAILED)
    if entry.rtt_avg_us is None or entry.rtt_min_us is None or entry.rtt_max_us is None or entry.rtt_bucket is None:
        return Tally(t.checks + 1, ok, degraded, failed, t.sent + entry.sent, t.received + entry.received,
                     t.rtt_samples, t.rtt_min_us, t.rtt_avg_us, t.rtt_max_us, t.online_s, t.offline_s, t.unknown_s,
                     t.hist)
    samples = t.rtt_samples + 1
    mean = entry.rtt_avg_us if t.rtt_avg_us is None else t.rtt_avg_us + _round_half_up(
        entry.rtt_avg_us - t.rtt_avg_us, samples)
    hist = list(t.hist)
    hist[entry.rtt_bucket] += 1
    return Tally(t.checks + 1, ok, degraded, failed, t.sent + entry.sent, t.received + entry.received, samples,
                 entry.rtt_min_us if t.rtt_min_us is None else min(t.rtt_min_us, entry.rtt_min_us), mean,
                 entry.rtt_max_us if t.rtt_max_us is None else max(t.rtt_max_us, entry.rtt_max_us),
                 t.online_s, t.offline_s, t.unknown_s, tuple(hist))


def hours_to_close(entry: CheckEntry, previous_check_at: int | None, touched: Iterable[Key]) -> set[Key]:
    """The hourly rows of `entry`'s target whose histogram goes once `entry` is written: the hours
    before the entry's own among `touched`, and the hour of the previous check when it is earlier."""
    hour = rollup.bucket_start(entry.checked_at, rollup.HOUR)
    closed = {key for key in touched if key[1] == entry.target_id and key[0] < hour}
    if previous_check_at is not None and rollup.bucket_start(previous_check_at, rollup.HOUR) < hour:
        closed.add((rollup.bucket_start(previous_check_at, rollup.HOUR), entry.target_id))
    return closed


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def _micros(ms: float | None) -> int | None:
    return None if ms is None else round(ms * 1000)
