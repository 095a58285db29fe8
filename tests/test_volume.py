"""Event-scan and alert-clear window decisions, case by case, with plain values and an explicit `now`."""

from __future__ import annotations

import random
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

import pytest

from netwatch.core.volume import (
    ActiveTrigger,
    Clear,
    ClearReason,
    GroupCount,
    GroupCounter,
    GroupKey,
    Raise,
    Rules,
    Update,
    decide_clear,
    decide_scan,
    format_duration,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RULES = Rules(thresholds={"E130": 50, "E401": 5, "R130": 200}, clear_below_percent=100, expire_minutes=30)
K = GroupKey("1001", "7", "E130")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def group(count: int, first: float = 0, last: float = 10) -> GroupCount:
    return GroupCount(count=count, first_seen=at(first), last_seen=at(last))


def trigger(
    key: GroupKey = K, count: int = 60, peak: int = 60, raised: float = -60, last: float = 0, threshold: int = 50
) -> ActiveTrigger:
    return ActiveTrigger(key=key, count=count, peak=peak, threshold=threshold, raised_at=at(raised), last_seen=at(last))


def stored(raised: Raise, now: datetime) -> ActiveTrigger:
    """What the job writes for a raise: the trigger row keyed by the group."""
    return ActiveTrigger(
        key=raised.key,
        count=raised.count,
        peak=raised.count,
        threshold=raised.threshold,
        raised_at=now,
        last_seen=raised.last_seen,
    )


def applied(active: ActiveTrigger, update: Update) -> ActiveTrigger:
    """What the job writes for an update."""
    return replace(active, count=update.count, peak=update.peak, last_seen=update.last_seen)


# --- GroupCounter -------------------------------------------------------------------------------


def test_counter_counts_only_watched_codes_per_group() -> None:
    counter = GroupCounter(["E130", "E401"])
    counter.add("1001", "7", "E130", at(1))
    counter.add("1001", "7", "E130", at(2))
    counter.add("1001", "8", "E130", at(3))
    counter.add("1002", "7", "E401", at(4))
    counter.add("1001", "7", "R130", at(5))
    counter.add("1001", "7", "e130", at(6))

    assert counter.events == 4
    assert counter.groups() == {
        GroupKey("1001", "7", "E130"): GroupCount(2, at(1), at(2)),
        GroupKey("1001", "8", "E130"): GroupCount(1, at(3), at(3)),
        GroupKey("1002", "7", "E401"): GroupCount(1, at(4), at(4)),
    }


def test_counter_first_and_last_seen_ignore_arrival_order() -> None:
    counter = GroupCounter({"E130"})
    for minute in [5, 2, 9, 1, 7, 9, 3]:
        counter.add("1001", "7", "E130", at(minute))

    assert counter.groups() == {K: GroupCount(7, at(1), at(9))}


def test_counter_keeps_the_partition_and_zone_of_the_latest_event() -> None:
    counter = GroupCounter({"E130"})
    counter.add("1001", "7", "E130", at(5), "02", "010")
    counter.add("1001", "7", "E130", at(9), "01", "003")
    counter.add("1001", "7", "E130", at(2), "03", "099")
    assert counter.groups() == {K: GroupCount(3, at(2), at(9), "01", "003")}
    counter.add("1001", "7", "E130", at(9), "04", "004")
    assert (counter.groups()[K].partition, counter.groups()[K].zone) == ("04", "004"), "a tie: the later one read"


def test_counter_compares_instants_across_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    counter = GroupCounter({"E130"})
    counter.add("1001", "7", "E130", datetime(2024, 3, 1, 14, 5, tzinfo=plus_two))  # 12:05 UTC
    counter.add("1001", "7", "E130", at(3))

    result = counter.groups()[K]
    assert result.first_seen == at(3) and result.last_seen == at(5)


def test_counter_accepts_the_rules_mapping_as_watched_codes() -> None:
    counter = GroupCounter(RULES.thresholds)
    counter.add("1001", "7", "R130", at(0))
    counter.add("1001", "7", "X999", at(0))

    assert list(counter.groups()) == [GroupKey("1001", "7", "R130")]


def test_counter_without_events_is_empty() -> None:
    counter = GroupCounter({"E130"})

    assert counter.events == 0
    assert counter.groups() == {}


def _growth_while_counting(counter: GroupCounter, times: list[datetime]) -> int:
    """Bytes allocated while `counter` counts one event at each of `times`, alternating two groups."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i, received_at in enumerate(times):
            counter.add("1001", "7", "E130" if i % 2 else "E401", received_at)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


def test_counter_memory_is_one_entry_per_group_not_per_event() -> None:
    counter = GroupCounter({"E130", "E401"})
    times = [at(i % 60) for i in range(100_000)]
    for code in ["E130", "E401"]:
        counter.add("1001", "7", code, at(0))

    # Keeping 100,000 events would take at least 800 kB (a list of pointers alone); updating two
    # tallies takes nothing but interpreter noise.
    assert _growth_while_counting(counter, times) < 100_000
    assert counter.events == 100_002
    assert counter.groups() == {
        GroupKey("1001", "7", "E130"): GroupCount(50_001, at(0), at(59)),
        GroupKey("1001", "7", "E401"): GroupCount(50_001, at(0), at(58)),
    }


def test_counter_snapshot_is_not_affected_by_later_events() -> None:
    counter = GroupCounter({"E130"})
    counter.add("1001", "7", "E130", at(0))
    snapshot = counter.groups()
    counter.add("1001", "7", "E130", at(1))

    assert snapshot == {K: GroupCount(1, at(0), at(0))}
    assert counter.groups() == {K: GroupCount(2, at(0), at(1))}


def test_counter_rejects_naive_times_even_for_unwatched_codes() -> None:
    counter = GroupCounter({"E130"})
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        counter.add("1001", "7", "R130", datetime(2024, 3, 1, 12, 0))
    assert counter.events == 0


class _Event(NamedTuple):
    account: str
    cuc: str
    code: str
    received_at: datetime
    partition: str = ""
    zone: str = ""


def test_counter_rejects_a_naive_time_after_aware_ones_of_the_same_instant_on_a_page() -> None:
    # A page's events share timestamp objects, and only a new object is checked: a naive one always is.
    counter = GroupCounter({"E130"})
    page = [_Event("1001", "7", "E130", T0), _Event("1001", "7", "E130", T0),
            _Event("1001", "7", "E130", T0.replace(tzinfo=None))]
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        counter.add_all(page)
    counter.add_all(page[:2])
    assert counter.groups() == {K: GroupCount(4, T0, T0)}
    assert counter.events == 4  # the two counted before the refusal too, as the tallies have them


# --- Rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "percent", "level"),
    [(50, 100, 50.0), (50, 60, 30.0), (50, 1, 0.5), (1, 100, 1.0), (3, 50, 1.5), (200, 0.5, 1.0)],
)
def test_clear_level_is_threshold_times_percent(threshold: int, percent: float, level: float) -> None:
    rules = Rules(thresholds={"E130": threshold}, clear_below_percent=percent, expire_minutes=30)

    assert rules.threshold("E130") == threshold
    assert rules.clear_level("E130") == pytest.approx(level)


def test_threshold_of_an_unwatched_code_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="X999"):
        RULES.threshold("X999")


def test_rules_keep_a_read_only_copy_of_the_thresholds() -> None:
    source = {"E130": 50}
    rules = Rules(thresholds=source, clear_below_percent=100, expire_minutes=30)
    source["E130"] = 1
    source["E401"] = 1

    assert dict(rules.thresholds) == {"E130": 50}
    with pytest.raises(TypeError):
        rules.thresholds["E130"] = 2  # type: ignore[index]
    assert rules == Rules(thresholds={"E130": 50}, clear_below_percent=100, expire_minutes=30)
    assert hash(rules) == hash(Rules(thresholds={"E130": 7}, clear_below_percent=100, expire_minutes=30))


def test_rules_without_codes_watch_nothing() -> None:
    rules = Rules(thresholds={}, clear_below_percent=100, expire_minutes=30)

    assert decide_scan({K: group(1000)}, {}, rules) == ([], [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": {"E130": 0}}, "threshold of code 'E130'"),
        ({"thresholds": {"E130": -5}}, "threshold of code 'E130'"),
        ({"thresholds": {"E130": "50"}}, "threshold of code 'E130'"),
        ({"thresholds": {"E130": 50.0}}, "threshold of code 'E130'"),
        ({"thresholds": {"E130": True}}, "threshold of code 'E130'"),
        ({"thresholds": {"E130": None}}, "threshold of code 'E130'"),
        ({"clear_below_percent": 0}, "clear_below_percent"),
        ({"clear_below_percent": -10}, "clear_below_percent"),
        ({"clear_below_percent": 100.01}, "clear_below_percent"),
        ({"clear_below_percent": float("nan")}, "clear_below_percent"),
        ({"expire_minutes": 0}, "expire_minutes"),
        ({"expire_minutes": -1}, "expire_minutes"),
        ({"expire_minutes": float("nan")}, "expire_minutes"),
    ],
)
def test_invalid_rules_are_rejected(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"thresholds": {"E130": 50}, "clear_below_percent": 100, "expire_minutes": 30}
    with pytest.raises(ValueError, match=message):
        Rules(**(values | kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(("percent", "expire"), [(100, 30), (0.01, 0.01), (100.0, 1e9), (50, 1)])
def test_valid_rule_edges_are_accepted(percent: float, expire: float) -> None:
    rules = Rules(thresholds={"E130": 1}, clear_below_percent=percent, expire_minutes=expire)
    assert rules.clear_below_percent == percent and rules.expire_minutes == expire


# --- decide_scan: raising -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "count", "raises"),
    [
        ("E130", 1, False),
        ("E130", 49, False),
        ("E130", 50, True),
        ("E130", 51, True),
        ("E130", 10_000, True),
        ("E401", 4, False),
        ("E401", 5, True),
        ("R130", 199, False),
        ("R130", 200, True),
        ("X999", 10_000, False),
    ],
)
def test_a_group_raises_at_or_above_its_codes_threshold(code: str, count: int, raises: bool) -> None:
    key = GroupKey("1001", "7", code)

    raised, updates = decide_scan({key: group(count, first=2, last=9)}, {}, RULES)

    expected = [Raise(key, count, RULES.thresholds[code], at(2), at(9))] if raises else []
    assert raised == expected
    assert updates == []


def test_several_codes_with_different_thresholds_in_one_scan() -> None:
    counts = {
        GroupKey("1001", "7", "E130"): group(50),
        GroupKey("1001", "7", "E401"): group(4),
        GroupKey("1001", "8", "E401"): group(5),
        GroupKey("1002", "7", "R130"): group(199),
        GroupKey("1002", "7", "E130"): group(49),
        GroupKey("1003", "1", "R130"): group(250),
        GroupKey("1003", "1", "X999"): group(10_000),
    }

    raised, updates = decide_scan(counts, {}, RULES)

    assert [(r.key, r.count, r.threshold) for r in raised] == [
        (GroupKey("1001", "7", "E130"), 50, 50),
        (GroupKey("1001", "8", "E401"), 5, 5),
        (GroupKey("1003", "1", "R130"), 250, 200),
    ]
    assert updates == []


def test_the_same_code_raises_separately_per_account_and_cuc() -> None:
    keys = [GroupKey("1001", "7", "E401"), GroupKey("1001", "8", "E401"), GroupKey("1002", "7", "E401")]

    raised, _ = decide_scan({key: group(5) for key in keys}, {}, RULES)

    assert [r.key for r in raised] == keys


def test_raises_and_updates_are_sorted_by_key_whatever_the_input_order() -> None:
    keys = [GroupKey(a, c, code) for a in ["2", "10", "1"] for c in ["b", "a"] for code in ["E401", "E130"]]
    counts = {key: group(100) for key in keys}
    active = {key: trigger(key=key) for key in reversed(keys[:4])}

    raised, updates = decide_scan(counts, active, RULES)

    assert [r.key for r in raised] == sorted(keys[4:])
    assert [u.key for u in updates] == sorted(keys[:4])
    assert sorted(keys)[0] == GroupKey("1", "a", "E130")


def test_raise_carries_the_window_first_and_last_seen() -> None:
    raised, _ = decide_scan({K: GroupCount(80, at(-14.5), at(-0.25))}, {}, RULES)

    assert raised == [Raise(K, 80, 50, at(-14.5), at(-0.25))]


# --- decide_scan: idempotence and updates -------------------------------------------------------


def test_feeding_a_raise_back_as_active_gives_an_update_not_a_second_raise() -> None:
    counts = {K: group(60, last=10)}
    raised, _ = decide_scan(counts, {}, RULES)
    active = {K: stored(raised[0], now=at(10))}

    again, updates = decide_scan(counts, active, RULES)

    assert again == []
    assert updates == [Update(K, 60, 60, at(10))]


@pytest.mark.parametrize("repeats", [2, 3, 10])
def test_repeated_scans_of_the_same_window_raise_once(repeats: int) -> None:
    # Overlapping runs and retries re-read the same window; the stored trigger row absorbs them.
    counts = {K: group(60), GroupKey("1002", "1", "E401"): group(9)}
    active: dict[GroupKey, ActiveTrigger] = {}
    all_raised = []
    for run in range(repeats):
        raised, updates = decide_scan(counts, active, RULES)
        all_raised += raised
        active = {key: applied(t, u) for (key, t), u in zip(sorted(active.items()), updates, strict=True)}
        active |= {r.key: stored(r, now=at(run)) for r in raised}

    assert [r.key for r in all_raised] == sorted(counts)
    assert set(active) == set(counts)


@pytest.mark.parametrize(
    ("stored_peak", "count", "peak"),
    [(60, 55, 60), (60, 60, 60), (60, 61, 61), (60, 500, 500), (60, 1, 60), (75, 20, 75)],
)
def test_update_tracks_count_and_peak(stored_peak: int, count: int, peak: int) -> None:
    active = {K: trigger(count=stored_peak, peak=stored_peak, last=0)}

    raised, updates = decide_scan({K: group(count, last=5)}, active, RULES)

    assert raised == []
    assert updates == [Update(K, count, peak, at(5))]


@pytest.mark.parametrize(("stored_last", "window_last", "expected"), [(0, 5, 5), (5, 5, 5), (9, 5, 9)])
def test_update_last_seen_never_moves_backwards(stored_last: float, window_last: float, expected: float) -> None:
    active = {K: trigger(last=stored_last)}

    _, updates = decide_scan({K: group(60, first=0, last=window_last)}, active, RULES)

    assert updates == [Update(K, 60, 60, at(expected))]


def test_active_trigger_without_events_in_the_window_is_updated_to_count_zero() -> None:
    active = {K: trigger(count=70, peak=90, last=-3)}

    raised, updates = decide_scan({}, active, RULES)

    assert raised == []
    assert updates == [Update(K, 0, 90, at(-3))]


def test_active_trigger_below_threshold_is_still_updated_not_raised_or_dropped() -> None:
    active = {K: trigger(peak=80)}

    raised, updates = decide_scan({K: group(3)}, active, RULES)

    assert raised == []
    assert updates == [Update(K, 3, 80, at(10))]


def test_a_key_is_never_both_raised_and_updated() -> None:
    other = GroupKey("1001", "7", "E401")
    counts = {K: group(60), other: group(6)}

    raised, updates = decide_scan(counts, {K: trigger()}, RULES)

    assert [r.key for r in raised] == [other]
    assert [u.key for u in updates] == [K]


def test_active_trigger_of_an_unwatched_code_is_neither_updated_nor_raised() -> None:
    key = GroupKey("1001", "7", "X999")

    assert decide_scan({key: group(1000)}, {key: trigger(key=key)}, RULES) == ([], [])


def test_stored_threshold_does_not_matter_to_the_scan() -> None:
    # The operator lowered the threshold after the raise: the trigger is still active, so no raise.
    active = {K: trigger(threshold=500, count=600, peak=600)}

    raised, updates = decide_scan({K: group(60)}, active, RULES)

    assert raised == []
    assert updates == [Update(K, 60, 600, at(10))]


def test_active_trigger_stored_under_a_different_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="stored under"):
        decide_scan({}, {GroupKey("1", "1", "E130"): trigger()}, RULES)
    with pytest.raises(ValueError, match="stored under"):
        decide_clear({}, {GroupKey("1", "1", "E130"): trigger()}, RULES, T0)


# --- decide_clear: hysteresis -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "count", "clears"),
    [
        (100, 0, True),
        (100, 1, True),
        (100, 49, True),
        (100, 50, False),
        (100, 51, False),
        (60, 0, True),
        (60, 29, True),
        (60, 30, False),
        (60, 35, False),
        (60, 49, False),
        (60, 50, False),
        (50, 24, True),
        (50, 25, False),
        (1, 0, True),
        (1, 1, False),
    ],
)
def test_hysteresis_clears_only_below_the_clear_level(percent: float, count: int, clears: bool) -> None:
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=percent, expire_minutes=30)
    counts = {K: group(count, last=5)} if count else {}

    result = decide_clear(counts, {K: trigger(raised=-60)}, rules, now=at(10))

    assert result == ([Clear(K, ClearReason.BELOW_THRESHOLD, count, 70 * 60)] if clears else [])


def test_fractional_clear_level_compares_exactly() -> None:
    # threshold 3 at 50 % is 1.5: one event clears, two keep the alert.
    rules = Rules(thresholds={"E130": 3}, clear_below_percent=50, expire_minutes=30)
    active = {K: trigger(threshold=3)}

    assert [c.last_count for c in decide_clear({K: group(1)}, active, rules, at(10))] == [1]
    assert decide_clear({K: group(2)}, active, rules, at(10)) == []


def test_a_trigger_kept_by_hysteresis_is_not_raised_again_by_the_scan() -> None:
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=60, expire_minutes=30)
    active = {K: trigger()}
    counts = {K: group(35)}

    assert decide_clear(counts, active, rules, at(10)) == []
    assert decide_scan(counts, active, rules) == ([], [Update(K, 35, 60, at(10))])


def test_clear_uses_the_current_threshold_not_the_stored_one() -> None:
    raised_higher = Rules(thresholds={"E130": 100}, clear_below_percent=100, expire_minutes=30)
    active = {K: trigger(threshold=50)}

    result = decide_clear({K: group(60)}, active, raised_higher, at(10))

    assert [(c.reason, c.last_count) for c in result] == [(ClearReason.BELOW_THRESHOLD, 60)]


# --- decide_clear: expiry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since_last", "expired"),
    [
        (timedelta(0), False),
        (timedelta(minutes=29, seconds=59), False),
        (timedelta(minutes=30), False),
        (timedelta(minutes=30, microseconds=1), True),
        (timedelta(minutes=30, seconds=1), True),
        (timedelta(days=3), True),
    ],
)
def test_expiry_is_strictly_longer_than_expire_minutes(since_last: timedelta, expired: bool) -> None:
    # Percent 1 keeps the count test out of the way: any event holds the level.
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=1, expire_minutes=30)
    last = at(0)
    counts = {K: GroupCount(40, at(-5), last)}

    result = decide_clear(counts, {K: trigger(raised=-60, last=-10)}, rules, now=last + since_last)

    assert [c.reason for c in result] == ([ClearReason.EXPIRED] if expired else [])


def test_expiry_uses_the_later_of_stored_and_window_last_seen() -> None:
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=1, expire_minutes=30)

    stored_later = decide_clear({K: group(40, first=-40, last=-40)}, {K: trigger(last=-5)}, rules, now=at(20))
    window_later = decide_clear({K: group(40, first=-5, last=-5)}, {K: trigger(last=-40)}, rules, now=at(20))
    both_old = decide_clear({K: group(40, first=-40, last=-40)}, {K: trigger(last=-50)}, rules, now=at(20))

    assert stored_later == window_later == []
    assert [c.reason for c in both_old] == [ClearReason.EXPIRED]


def test_fractional_expire_minutes() -> None:
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=1, expire_minutes=0.5)
    counts = {K: GroupCount(40, at(0), at(0))}
    active = {K: trigger(raised=0, last=0)}

    assert decide_clear(counts, active, rules, at(0) + timedelta(seconds=30)) == []
    assert decide_clear(counts, active, rules, at(0) + timedelta(seconds=31)) == [
        Clear(K, ClearReason.EXPIRED, 40, 31.0)
    ]


# --- decide_clear: reasons, precedence, durations -----------------------------------------------


@pytest.mark.parametrize(
    ("code", "count", "last", "reason"),
    [
        ("E130", 60, 5, None),
        ("E130", 49, 5, ClearReason.BELOW_THRESHOLD),
        ("E130", 60, -60, ClearReason.EXPIRED),
        ("E130", 49, -60, ClearReason.BELOW_THRESHOLD),
        ("E130", 0, -60, ClearReason.BELOW_THRESHOLD),
        ("X999", 60, 5, ClearReason.UNWATCHED),
        ("X999", 0, 5, ClearReason.UNWATCHED),
        ("X999", 10_000, -60, ClearReason.UNWATCHED),
    ],
)
def test_clear_reason_precedence_is_unwatched_then_below_threshold_then_expired(
    code: str, count: int, last: float, reason: ClearReason | None
) -> None:
    key = GroupKey("1001", "7", code)
    counts = {key: group(count, first=last, last=last)} if count else {}
    active = {key: trigger(key=key, raised=-120, last=last)}

    result = decide_clear(counts, active, RULES, now=at(10))

    assert result == ([] if reason is None else [Clear(key, reason, count, 130 * 60)])


def test_unwatched_trigger_clears_even_though_the_scan_never_saw_its_events() -> None:
    key = GroupKey("1001", "7", "X999")
    counter = GroupCounter(RULES.thresholds)
    for minute in range(100):
        counter.add("1001", "7", "X999", at(minute / 10))

    result = decide_clear(counter.groups(), {key: trigger(key=key)}, RULES, now=at(10))

    assert result == [Clear(key, ClearReason.UNWATCHED, 0, 70 * 60)]


def test_clear_reasons_are_plain_strings_for_the_register_log() -> None:
    assert [str(r) for r in ClearReason] == ["below_threshold", "expired", "unwatched"]
    assert ClearReason.EXPIRED == "expired"


@pytest.mark.parametrize(
    ("raised_at", "now", "seconds"),
    [
        (at(0), at(0), 0.0),
        (at(0), at(0) + timedelta(milliseconds=1500), 1.5),
        (at(0), at(90), 5400.0),
        (at(0), at(-1), 0.0),
        (at(0), at(-60 * 24), 0.0),
    ],
)
def test_active_seconds_is_now_minus_raised_at_and_never_negative(
    raised_at: datetime, now: datetime, seconds: float
) -> None:
    active = {K: replace(trigger(), raised_at=raised_at, last_seen=raised_at)}

    result = decide_clear({}, active, RULES, now=now)

    assert result == [Clear(K, ClearReason.BELOW_THRESHOLD, 0, seconds)]


def test_backwards_clock_does_not_expire_a_trigger_with_a_future_last_seen() -> None:
    # The stored last-seen came from a clock 6 hours fast; now is before it: not expired, no crash.
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=1, expire_minutes=30)
    active = {K: trigger(raised=300, last=360)}

    assert decide_clear({K: group(40)}, active, rules, now=at(10)) == []


def test_clear_handles_many_triggers_sorted_and_independently() -> None:
    keys = {
        "keep": GroupKey("1001", "7", "E130"),
        "low": GroupKey("1001", "8", "E130"),
        "old": GroupKey("1002", "1", "E401"),
        "gone": GroupKey("1003", "1", "X999"),
        "quiet": GroupKey("1000", "1", "R130"),
    }
    counts = {
        keys["keep"]: group(50, last=9),
        keys["low"]: group(10, last=9),
        keys["old"]: group(5, first=-50, last=-45),
        keys["gone"]: group(500, last=9),
    }
    active = {key: trigger(key=key, raised=-100, last=-45) for key in reversed(keys.values())}

    result = decide_clear(counts, active, RULES, now=at(10))

    assert result == [
        Clear(keys["quiet"], ClearReason.BELOW_THRESHOLD, 0, 6600.0),
        Clear(keys["low"], ClearReason.BELOW_THRESHOLD, 10, 6600.0),
        Clear(keys["old"], ClearReason.EXPIRED, 5, 6600.0),
        Clear(keys["gone"], ClearReason.UNWATCHED, 500, 6600.0),
    ]


def test_counts_without_an_active_trigger_are_ignored_by_clear() -> None:
    assert decide_clear({K: group(1), GroupKey("1", "1", "E401"): group(100)}, {}, RULES, at(10)) == []


def test_clear_accepts_a_non_utc_aware_now() -> None:
    plus_two = timezone(timedelta(hours=2))
    now = datetime(2024, 3, 1, 14, 10, tzinfo=plus_two)  # 12:10 UTC

    result = decide_clear({}, {K: trigger(raised=0)}, RULES, now=now)

    assert result == [Clear(K, ClearReason.BELOW_THRESHOLD, 0, 600.0)]


# --- naive datetimes and inconsistent values ----------------------------------------------------


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        decide_clear({}, {}, RULES, datetime(2024, 3, 1, 12, 0))


@pytest.mark.parametrize("field_name", ["raised_at", "last_seen"])
def test_naive_trigger_times_are_rejected(field_name: str) -> None:
    values = {"raised_at": at(0), "last_seen": at(0)} | {field_name: datetime(2024, 3, 1, 12, 0)}
    with pytest.raises(ValueError, match=f"{field_name} must be a timezone-aware"):
        ActiveTrigger(key=K, count=1, peak=1, threshold=1, **values)


@pytest.mark.parametrize("field_name", ["first_seen", "last_seen"])
def test_naive_group_times_are_rejected(field_name: str) -> None:
    values = {"first_seen": at(0), "last_seen": at(0)} | {field_name: datetime(2024, 3, 1, 12, 0)}
    with pytest.raises(ValueError, match=f"{field_name} must be a timezone-aware"):
        GroupCount(count=1, **values)


@pytest.mark.parametrize(
    ("count", "first", "last", "message"),
    [(0, 0, 0, "count must be >= 1"), (-1, 0, 0, "count must be >= 1"), (1, 5, 4, "is after last_seen")],
)
def test_inconsistent_group_counts_are_rejected(count: int, first: float, last: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GroupCount(count=count, first_seen=at(first), last_seen=at(last))


# --- format_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (1, "1s"),
        (45, "45s"),
        (59.99, "59s"),
        (60, "1m"),
        (90, "1m"),
        (12 * 60 + 30, "12m"),
        (3599, "59m"),
        (3600, "1h"),
        (3600 + 5 * 60, "1h 5m"),
        (3600 + 5 * 60 + 59, "1h 5m"),
        (23 * 3600 + 59 * 60, "23h 59m"),
        (86400, "1d"),
        (86400 + 59 * 60, "1d"),
        (2 * 86400 + 3 * 3600, "2d 3h"),
        (2 * 86400 + 3 * 3600 + 45 * 60, "2d 3h"),
        (400 * 86400 + 3600, "400d 1h"),
        (-5, "0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), float("-inf")])
def test_format_duration_rejects_non_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        format_duration(seconds)


# --- invariants over random sequences of windows ------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_invariants_hold_over_random_window_sequences(seed: int) -> None:
    rng = random.Random(seed)
    thresholds = {code: rng.randint(1, 12) for code in ["E130", "E401", "R130"]}
    rules = Rules(
        thresholds=thresholds,
        clear_below_percent=rng.choice([100, 80, 60, 25, 1]),
        expire_minutes=rng.choice([5, 15, 60]),
    )
    keys = [GroupKey(a, c, code) for a in ["1001", "1002"] for c in ["1", "2"] for code in [*thresholds, "X999"]]
    active: dict[GroupKey, ActiveTrigger] = {}
    now = T0
    for step in range(150):
        if step == 100:
            # The operator removes a code: its active triggers must clear as unwatched.
            dropped = rng.choice(sorted(thresholds))
            rules = replace(rules, thresholds={c: n for c, n in thresholds.items() if c != dropped})
        watched = rules.thresholds
        now += timedelta(minutes=rng.choice([1, 1, 5, 10, 30]))
        counter = GroupCounter(rules.thresholds)
        for _ in range(rng.choice([0, 5, 40, 120])):
            key = rng.choice(keys)
            counter.add(key.account, key.cuc, key.code, now - timedelta(seconds=rng.randint(0, 600)))
        counts = counter.groups()
        assert sum(g.count for g in counts.values()) == counter.events

        raised, updates = decide_scan(counts, active, rules)
        raised_keys = [r.key for r in raised]
        updated_keys = [u.key for u in updates]

        assert len(set(raised_keys)) == len(raised_keys)
        assert not set(raised_keys) & set(active), "raised while already active"
        assert not set(raised_keys) & set(updated_keys), "raised and updated in one scan"
        assert updated_keys == sorted(k for k in active if k.code in watched)
        assert raised_keys == sorted(raised_keys)
        for r in raised:
            assert r.key.code in watched and r.count == counts[r.key].count >= watched[r.key.code]
        for u in updates:
            before = active[u.key]
            assert u.peak >= before.peak and u.peak >= u.count
            assert u.last_seen >= before.last_seen
            assert u.count == (counts[u.key].count if u.key in counts else 0)
            active[u.key] = applied(before, u)
        active |= {r.key: stored(r, now) for r in raised}

        clears = decide_clear(counts, active, rules, now)
        for c in clears:
            trigger_ = active.pop(c.key)
            assert c.active_seconds == (now - trigger_.raised_at).total_seconds() >= 0
            if c.reason is ClearReason.UNWATCHED:
                assert c.key.code not in watched
            elif c.reason is ClearReason.BELOW_THRESHOLD:
                assert c.last_count < rules.clear_level(c.key.code)
            else:
                assert c.last_count >= rules.clear_level(c.key.code)
                assert now - trigger_.last_seen > timedelta(minutes=rules.expire_minutes)
        for key, remaining in active.items():
            assert key.code in watched
            count = counts[key].count if key in counts else 0
            assert count >= rules.clear_level(key.code)
            assert now - remaining.last_seen <= timedelta(minutes=rules.expire_minutes)


# --- re-raising a cleared group: only events after the clear count ------------------------------


def counted(cleared: dict[GroupKey, datetime], *minutes: float, key: GroupKey = K) -> dict[GroupKey, GroupCount]:
    """The groups a counter given `cleared` makes of events of `key` at these minutes."""
    counter = GroupCounter(RULES.thresholds, cleared)
    for minute in minutes:
        counter.add(key.account, key.cuc, key.code, at(minute))
    return counter.groups()


def test_counter_counts_the_events_up_to_a_clear_apart() -> None:
    other = GroupKey("1002", "7", "E130")
    counter = GroupCounter({"E130"}, {K: at(5)})
    for minute in [6, 3, 5, 9, 1]:
        counter.add("1001", "7", "E130", at(minute))
    counter.add("1002", "7", "E130", at(2))

    groups = counter.groups()

    assert groups == {K: GroupCount(5, at(1), at(9), before_clear=3, cleared_at=at(5)),
                      other: GroupCount(1, at(2), at(2))}
    assert (groups[K].since_clear, groups[other].since_clear) == (2, 1)


@pytest.mark.parametrize(
    ("offset", "fresh"),
    [(timedelta(microseconds=-1), False), (timedelta(0), False), (timedelta(microseconds=1), True)],
    ids=["just-before-clear", "exactly-at-clear", "just-after-clear"],
)
def test_an_event_exactly_at_the_clear_is_not_fresh(offset: timedelta, fresh: bool) -> None:
    counter = GroupCounter({"E130"}, {K: at(5)})
    counter.add("1001", "7", "E130", at(5) + offset)

    assert counter.groups()[K].since_clear == int(fresh)


def test_counter_compares_clears_and_events_as_instants_across_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    counter = GroupCounter({"E130"}, {K: datetime(2024, 3, 1, 14, 5, tzinfo=plus_two)})  # 12:05 UTC
    counter.add("1001", "7", "E130", at(5))
    counter.add("1001", "7", "E130", at(6))
    groups = counter.groups()

    assert groups[K].since_clear == 1
    assert decide_scan(groups, {}, replace(RULES, thresholds={"E130": 1}), {K: at(5)})[0] == [
        Raise(K, 2, 1, at(5), at(6))]


def test_counter_keeps_its_own_copy_of_the_clears() -> None:
    clears = {K: at(5)}
    counter = GroupCounter({"E130"}, clears)
    counter.add("1001", "7", "E130", at(1))
    clears[K] = at(0)
    counter.add("1001", "7", "E130", at(2))

    assert counter.groups()[K] == GroupCount(2, at(1), at(2), before_clear=2, cleared_at=at(5))


def test_a_clear_of_an_unwatched_code_changes_nothing() -> None:
    key = GroupKey("1001", "7", "X999")
    counter = GroupCounter(RULES.thresholds, {key: at(5)})
    counter.add("1001", "7", "X999", at(6))

    assert counter.groups() == {}
    assert counter.events == 0


def test_counter_memory_is_one_entry_per_group_also_with_clears() -> None:
    e401 = GroupKey("1001", "7", "E401")
    clears = {K: at(29.5), e401: at(29.5)} | {GroupKey(f"c{i}", "7", "E130"): at(0) for i in range(1000)}
    counter = GroupCounter({"E130", "E401"}, clears)
    times = [at(i % 60) for i in range(100_000)]
    for code in ["E130", "E401"]:
        counter.add("1001", "7", code, at(0))

    assert _growth_while_counting(counter, times) < 100_000
    # Minutes 0-39 occur 1,667 times, 40-59 1,666 times; 15 of each group's minutes are up to 29.5.
    old = 1 + 15 * 1667
    assert old == 1 + sum(1 for i, t in enumerate(times) if i % 2 and t <= at(29.5))
    groups = counter.groups()
    assert groups == {
        K: GroupCount(50_001, at(0), at(59), before_clear=old, cleared_at=at(29.5)),
        e401: GroupCount(50_001, at(0), at(58), before_clear=old, cleared_at=at(29.5)),
    }
    assert groups[K].since_clear == groups[e401].since_clear == 50_001 - old


def test_naive_clears_are_rejected() -> None:
    bad = datetime(2024, 3, 1, 12, 0)
    with pytest.raises(ValueError, match=r"cleared_at\[.*\] must be a timezone-aware"):
        GroupCounter({"E130"}, {K: bad})
    with pytest.raises(ValueError, match=r"cleared_at\[.*\] must be a timezone-aware"):
        decide_scan({}, {}, RULES, {K: bad})
    with pytest.raises(ValueError, match="cleared_at must be a timezone-aware"):
        GroupCount(1, at(0), at(0), cleared_at=bad)


@pytest.mark.parametrize(
    ("count", "before_clear", "cleared", "message"),
    [
        (3, 1, None, "before_clear must be 0 without a clear"),
        (3, 4, at(0), "before_clear must be >= 0 and <= count 3"),
        (3, -1, at(0), "before_clear must be >= 0 and <= count 3"),
    ],
)
def test_inconsistent_counts_since_a_clear_are_rejected(
    count: int, before_clear: int, cleared: datetime | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        GroupCount(count, at(0), at(1), before_clear=before_clear, cleared_at=cleared)


@pytest.mark.parametrize(("before_clear", "since_clear"), [(0, 3), (1, 2), (3, 0)])
def test_since_clear_is_the_count_without_the_events_up_to_the_clear(before_clear: int, since_clear: int) -> None:
    assert GroupCount(3, at(0), at(1), before_clear=before_clear, cleared_at=at(0)).since_clear == since_clear
    assert GroupCount(3, at(0), at(1)).since_clear == 3, "never cleared: every event is fresh"


@pytest.mark.parametrize(
    ("old", "fresh", "raises"),
    [(60, 0, False), (60, 1, False), (60, 49, False), (60, 50, True), (60, 51, True), (0, 49, False),
     (0, 50, True), (500, 1, False)],
)
def test_a_cleared_group_raises_again_only_when_its_fresh_events_reach_the_threshold(
    old: int, fresh: int, raises: bool
) -> None:
    # Cleared at minute 0: `old` events before it (and one exactly at it), `fresh` ones after it.
    minutes = [-60 + i * 59 / max(old, 1) for i in range(old)] + [0] + [1 + i / 10 for i in range(fresh)]
    counts = counted({K: at(0)}, *minutes)

    raised, updates = decide_scan(counts, {}, RULES, {K: at(0)})

    assert counts[K].since_clear == fresh
    first = at(-60) if old else at(0)
    assert raised == ([Raise(K, old + 1 + fresh, 50, first, at(1 + (fresh - 1) / 10))] if raises else []), (
        "the raise carries the whole window's count, first and last seen")
    assert updates == []


@pytest.mark.parametrize(
    ("code", "count", "raises"),
    [("E130", 49, False), ("E130", 50, True), ("E401", 4, False), ("E401", 5, True), ("X999", 500, False)],
)
def test_never_cleared_groups_raise_on_their_whole_count_as_before(code: str, count: int, raises: bool) -> None:
    key = GroupKey("1001", "7", code)
    cleared = {GroupKey("1001", "8", code): at(0), GroupKey("1002", "7", code): at(100)}  # other groups' clears
    counts = counted(cleared, *[i / 10 for i in range(count)], key=key)

    raised, _ = decide_scan(counts, {}, RULES, cleared)

    assert [(r.key, r.count) for r in raised] == ([(key, count)] if raises else [])


def test_cleared_and_never_cleared_groups_in_one_scan() -> None:
    cleared_key, new_key = GroupKey("1001", "7", "E401"), GroupKey("1001", "8", "E401")
    clears = {cleared_key: at(0)}
    counter = GroupCounter(RULES.thresholds, clears)
    for minute in [-3, -2, -1, 0, 1, 2, 3, 4]:  # 4 fresh of 8
        counter.add("1001", "7", "E401", at(minute))
        counter.add("1001", "8", "E401", at(minute))

    raised, _ = decide_scan(counter.groups(), {}, RULES, clears)

    assert [r.key for r in raised] == [new_key]
    counter.add("1001", "7", "E401", at(5))
    assert [r.key for r in decide_scan(counter.groups(), {}, RULES, clears)[0]] == [cleared_key, new_key]


def test_the_update_of_an_active_trigger_uses_the_whole_window_count() -> None:
    # A group being raised again is active: its update describes the window, old events included.
    counts = counted({K: at(0)}, *[i - 30 for i in range(60)])

    raised, updates = decide_scan(counts, {K: trigger(peak=60, last=-40)}, RULES, {})

    assert raised == []
    assert updates == [Update(K, 60, 60, at(29))]


@pytest.mark.parametrize(
    ("counted_with", "given"),
    [({}, {K: at(0)}), ({K: at(0)}, {}), ({K: at(0)}, {K: at(1)})],
    ids=["counted-without-the-clear", "clear-gone", "other-clear"],
)
def test_counts_made_against_other_clears_are_rejected(
    counted_with: dict[GroupKey, datetime], given: dict[GroupKey, datetime]
) -> None:
    counts = counted(counted_with, *[i / 10 for i in range(60)])

    with pytest.raises(ValueError, match="was counted since the clear"):
        decide_scan(counts, {}, RULES, given)


def test_a_trickle_after_an_expired_clear_does_not_flap() -> None:
    # Raised on 60 events, cleared as expired 40 minutes later while the window still holds them.
    rules = Rules(thresholds={"E130": 50}, clear_below_percent=100, expire_minutes=30)
    old = [i / 10 for i in range(60)]
    [raised], _ = decide_scan(counted({}, *old), {}, rules)
    active = {K: stored(raised, now=at(6))}
    [clear] = decide_clear(counted({}, *old), active, rules, now=at(40))
    assert clear.reason is ClearReason.EXPIRED
    clears = {K: at(40)}

    # Then one event a minute: the alert comes back with the 50th event after the clear, not the 1st.
    trickle: list[float] = []
    for minute in range(41, 91):
        trickle.append(minute)
        again, updates = decide_scan(counted(clears, *old, *trickle), {}, rules, clears)
        assert updates == []
        assert [r.count for r in again] == ([110] if len(trickle) == 50 else []), len(trickle)


@pytest.mark.parametrize("seed", range(30))
def test_random_windows_raise_a_cleared_group_only_on_events_after_its_clear(seed: int) -> None:
    # An oracle over the raw events: each scan's raises are exactly the inactive watched groups with
    # at least threshold events newer than their last clear, each carrying its whole window count.
    rng = random.Random(seed)
    rules = Rules(thresholds={"E130": rng.randint(1, 8), "E401": rng.randint(1, 8)},
                  clear_below_percent=rng.choice([100, 50, 1]), expire_minutes=rng.choice([2, 5, 20]))
    keys = [GroupKey(a, "1", code) for a in ["1001", "1002", "1003"] for code in ["E130", "E401", "X999"]]
    window = timedelta(minutes=30)
    log: list[tuple[GroupKey, datetime]] = []
    active: dict[GroupKey, ActiveTrigger] = {}
    clears: dict[GroupKey, datetime] = {}
    now = T0
    raised_after_clear = 0
    for _ in range(120):
        now += timedelta(minutes=rng.choice([1, 1, 2, 5]))
        for _ in range(rng.choice([0, 0, 1, 3, 10])):
            log.append((rng.choice(keys), now - timedelta(seconds=rng.randint(1, 60))))
        seen = [(key, when) for key, when in log if now - window <= when < now]
        counter = GroupCounter(rules.thresholds, clears)
        for key, when in rng.sample(seen, len(seen)):
            counter.add(key.account, key.cuc, key.code, when)
        counts = counter.groups()

        raised, updates = decide_scan(counts, active, rules, clears)

        expected = sorted(
            key for key in {k for k, _ in seen}
            if key.code in rules.thresholds and key not in active
            and sum(1 for k, w in seen if k == key and (key not in clears or w > clears[key]))
            >= rules.thresholds[key.code])
        assert [r.key for r in raised] == expected
        for r in raised:
            assert r.count == sum(1 for k, _ in seen if k == r.key)
            raised_after_clear += r.key in clears
        for u in updates:
            assert u.count == sum(1 for k, _ in seen if k == u.key)
            active[u.key] = applied(active[u.key], u)
        for r in raised:
            active[r.key] = stored(r, now)
            clears.pop(r.key, None)
        for c in decide_clear(counts, active, rules, now):
            del active[c.key]
            clears[c.key] = now
    assert raised_after_clear, "the sequence raises a cleared group again at least once"
