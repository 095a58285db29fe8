"""The pure arithmetic of history (netwatch.core.rollup): buckets, gaps, histogram, percentile, incidents."""

from __future__ import annotations

import math

import pytest

from netwatch.core import rollup
from netwatch.core.rollup import (
    DAY,
    HOUR,
    RTT_BUCKETS,
    RTT_EDGES_MS,
    Incident,
    bucket_start,
    counted_gap,
    incidents_of,
    percentile_ms,
    rtt_bucket,
    split_interval,
    uptime_percent,
)

OFFLINE = rollup.STATE_CODES["offline"]
ONLINE = rollup.STATE_CODES["online"]
UNKNOWN = rollup.STATE_CODES["unknown"]


@pytest.mark.parametrize(("epoch", "size", "start"), [
    (0, HOUR, 0), (3_599, HOUR, 0), (3_600, HOUR, 3_600), (7_199, HOUR, 3_600),
    (86_399, DAY, 0), (86_400, DAY, 86_400), (1_764_633_599, DAY, 1_764_547_200),
])
def test_buckets_have_utc_edges(epoch: int, size: int, start: int) -> None:
    assert bucket_start(epoch, size) == start


@pytest.mark.parametrize(("previous", "now", "counted"), [
    (None, 1_000, 0),        # a host's first check: nothing before it was observed
    (1_000, 1_000, 0),       # the same second
    (1_060, 1_000, 0),       # the clock went back: no negative time
    (1_000, 1_060, 60),
    (1_000, 1_900, 900),     # exactly the limit
    (1_000, 1_901, 900),     # longer: the job did not run, only the limit counts
])
def test_counted_gap(previous: int | None, now: int, counted: int) -> None:
    assert counted_gap(previous, now, 900) == counted


def test_split_interval_cuts_at_every_edge_and_keeps_the_total() -> None:
    assert split_interval(3_590, 3_600, HOUR) == [(0, 10)]
    assert split_interval(3_590, 3_610, HOUR) == [(0, 10), (3_600, 10)]
    assert split_interval(3_600, 3_610, HOUR) == [(3_600, 10)]
    parts = split_interval(100, 3 * HOUR + 50, HOUR)
    assert parts == [(0, 3_500), (3_600, 3_600), (7_200, 3_600), (10_800, 50)]
    assert sum(seconds for _, seconds in parts) == 3 * HOUR + 50 - 100
    assert split_interval(500, 500, HOUR) == [] and split_interval(600, 500, DAY) == []


def test_rtt_buckets_are_geometric_from_a_tenth_of_a_millisecond() -> None:
    assert len(RTT_EDGES_MS) == RTT_BUCKETS
    assert rtt_bucket(0.0) == 0 and rtt_bucket(0.099) == 0
    for index, edge in enumerate(RTT_EDGES_MS[:-1]):
        assert rtt_bucket(edge * 1.000001) == index + 1
        assert rtt_bucket(edge * 0.999) == index
    assert rtt_bucket(10 * 60_000) == RTT_BUCKETS - 1


def test_percentile_of_an_empty_histogram_is_none() -> None:
    assert percentile_ms([0] * RTT_BUCKETS, 0.95) is None


def test_percentile_stays_in_the_bucket_of_its_rank_and_is_clamped() -> None:
    hist = [0] * RTT_BUCKETS
    hist[rtt_bucket(1.0)] = 95
    hist[rtt_bucket(50.0)] = 5
    p95 = percentile_ms(hist, 0.95)
    p96 = percentile_ms(hist, 0.96)
    assert p95 is not None and RTT_EDGES_MS[rtt_bucket(1.0) - 1] <= p95 <= RTT_EDGES_MS[rtt_bucket(1.0)]
    assert p96 is not None and RTT_EDGES_MS[rtt_bucket(50.0) - 1] <= p96 <= RTT_EDGES_MS[rtt_bucket(50.0)]
    assert percentile_ms(hist, 0.95, low_ms=1.0, high_ms=1.0) == 1.0
    one = [0] * RTT_BUCKETS
    one[0] = 1
    assert percentile_ms(one, 0.5) == 0.1  # the whole of bucket 0: its upper edge


def test_percentile_is_within_a_bucket_width_of_the_exact_value() -> None:
    samples = [0.2 * 1.07**k for k in range(200)]
    hist = [0] * RTT_BUCKETS
    for sample in samples:
        hist[rtt_bucket(sample)] += 1
    exact = sorted(samples)[math.ceil(0.95 * len(samples)) - 1]
    assert exact / math.sqrt(2) <= percentile_ms(hist, 0.95) <= exact * math.sqrt(2)


def test_uptime_excludes_unknown_time() -> None:
    assert uptime_percent(0, 0) is None
    assert uptime_percent(3_000, 600) == 83.333
    assert uptime_percent(10, 0) == 100.0 and uptime_percent(0, 10) == 0.0


def test_incidents_are_offline_periods_ended_by_any_later_change() -> None:
    changes = [
        (1, 100, OFFLINE), (1, 200, ONLINE),          # ended by a recovery
        (1, 300, OFFLINE),                            # ongoing
        (2, 50, ONLINE), (2, 60, OFFLINE), (2, 90, UNKNOWN),  # ended by the host's removal
        (3, 10, ONLINE),
    ]
    assert incidents_of(reversed(changes)) == [
        Incident(1, 100, 200), Incident(1, 300, None), Incident(2, 60, 90),
    ]
    assert Incident(1, 300, None).duration_s(now_s=350) == 50
    assert Incident(1, 100, 200).duration_s(now_s=10_000) == 100
    assert incidents_of([]) == []
