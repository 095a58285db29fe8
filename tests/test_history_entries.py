"""What one run adds to a host's history (netwatch/core/history.py): raw rows and rollup tallies, pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from netwatch.core import rollup
from netwatch.core.checks import CheckResult, CheckStatus
from netwatch.core.history import (
    CheckEntry,
    Tally,
    add_entries,
    add_entry,
    check_entry,
    closing_hours,
    gap_parts,
    replied,
)
from netwatch.core.hoststate import Status

DAY0 = 1_795_392_000  # 2026-11-22 00:00:00 UTC
OK = CheckResult(3, 3, 0.0, 0.04, 0.05, 0.061, CheckStatus.OK, None, 1)
FAILED = CheckResult(3, 0, 100.0, None, None, None, CheckStatus.FAILED, "no reply", 2)
LIMIT = 900


def entry(at: int, previous: int | None, prior: Status = Status.ONLINE, result: CheckResult = OK,
          limit: int = LIMIT) -> CheckEntry:
    return check_entry(7, at, previous, prior, Status.ONLINE, result, limit)


def test_a_check_becomes_compact_codes_and_microseconds() -> None:
    made = check_entry(7, DAY0 + 60, DAY0, Status.OFFLINE, Status.ONLINE, OK, LIMIT)
    assert made == CheckEntry(target_id=7, checked_at=DAY0 + 60, status=0, prior=2, state=1, gap_s=60, sent=3,
                              received=3, attempts=1, rtt_min_us=40, rtt_avg_us=50, rtt_max_us=61,
                              rtt_bucket=rollup.rtt_bucket(0.05), error=None)


def test_a_failed_check_has_no_rtt_and_keeps_its_reason() -> None:
    made = entry(DAY0 + 60, DAY0, result=FAILED)
    assert (made.status, made.rtt_avg_us, made.rtt_bucket, made.error) == (2, None, None, "no reply")


def test_a_new_host_has_no_gap() -> None:
    made = entry(DAY0 + 60, None, prior=Status.UNKNOWN)
    assert (made.gap_s, made.prior) == (0, 0)
    [(key, tally)] = add_entry({}, made, rollup.HOUR).items()
    assert key == (DAY0, 7)
    assert (tally.checks, tally.online_s, tally.offline_s, tally.unknown_s) == (1, 0, 0, 0)


def test_a_gap_longer_than_the_limit_counts_only_the_limit() -> None:
    made = entry(DAY0 + 7_200, DAY0 + 1_800)
    assert made.gap_s == LIMIT
    tallies = add_entry({}, made, rollup.HOUR)
    assert {key: (t.online_s, t.checks) for key, t in tallies.items()} == {(DAY0 + 3_600, 7): (LIMIT, 0),
                                                                             (DAY0 + 7_200, 7): (0, 1)}


def test_the_gap_goes_to_the_prior_state_and_is_split_at_the_hour_edge() -> None:
    made = entry(DAY0 + 3_600 + 30, DAY0 + 3_600 - 30, prior=Status.OFFLINE)
    tallies = add_entry({}, made, rollup.HOUR)
    assert {key: (t.offline_s, t.checks) for key, t in tallies.items()} == {(DAY0, 7): (30, 0),
                                                                              (DAY0 + 3_600, 7): (30, 1)}
    assert all(t.online_s == 0 and t.unknown_s == 0 for t in tallies.values())


def test_a_check_exactly_on_the_hour_edge_counts_in_the_new_hour_and_its_gap_in_the_old() -> None:
    tallies = add_entry({}, entry(DAY0 + 3_600, DAY0 + 3_540), rollup.HOUR)
    assert {key: (t.online_s, t.checks) for key, t in tallies.items()} == {(DAY0, 7): (60, 0),
                                                                             (DAY0 + 3_600, 7): (0, 1)}


def test_the_day_edge_splits_the_daily_tallies_the_same_way() -> None:
    tallies = add_entry({}, entry(DAY0 + 20, DAY0 - 40, prior=Status.UNKNOWN), rollup.DAY)
    assert {key: (t.unknown_s, t.checks) for key, t in tallies.items()} == {(DAY0 - rollup.DAY, 7): (40, 0),
                                                                              (DAY0, 7): (20, 1)}


def test_a_clock_gone_back_adds_the_check_with_no_time() -> None:
    made = entry(DAY0 + 60, DAY0 + 120)
    assert made.gap_s == 0
    [tally] = add_entry({}, made, rollup.HOUR).values()
    assert (tally.checks, tally.online_s) == (1, 0)


def test_a_run_that_spans_an_hour_edge_counts_where_it_started() -> None:
    # The job's `now` is read once, at the start: 10:59:59.8 floors to 10:59:59, whatever the sweep took.
    tallies = add_entry({}, entry(DAY0 + 3_599, DAY0 + 3_539), rollup.HOUR)
    assert list(tallies) == [(DAY0, 7)]


def test_counts_packets_and_rtts_add_up_over_checks() -> None:
    slow = replace(OK, rtt_min_ms=0.2, rtt_avg_ms=0.3, rtt_max_ms=0.4)
    entries = [entry(DAY0 + 60, DAY0), entry(DAY0 + 120, DAY0 + 60, result=FAILED),
               entry(DAY0 + 180, DAY0 + 120, result=slow)]
    [tally] = add_entries({}, entries, rollup.HOUR).values()
    assert (tally.checks, tally.ok, tally.failed, tally.sent, tally.received) == (3, 2, 1, 9, 6)
    assert (tally.rtt_samples, tally.rtt_min_us, tally.rtt_sum_us, tally.rtt_max_us) == (2, 40, 350, 400)
    assert tally.online_s == 180
    assert sum(tally.hist) == 2


def test_the_rtt_sum_is_exact_in_any_order() -> None:
    results = [replace(OK, rtt_min_ms=ms, rtt_avg_ms=ms, rtt_max_ms=ms) for ms in (0.001, 0.002, 0.004)]
    entries = [entry(DAY0 + 60 * (i + 1), None, result=result) for i, result in enumerate(results)]
    [forward] = add_entries({}, entries, rollup.HOUR).values()
    [backward] = add_entries({}, reversed(entries), rollup.HOUR).values()
    assert forward == backward and forward.rtt_sum_us == 7
    assert replied(entries[0]) and not replied(entry(DAY0, None, result=FAILED))


def test_p95_is_the_histogram_percentile_clamped_to_min_and_max() -> None:
    results = [replace(OK, rtt_min_ms=ms, rtt_avg_ms=ms, rtt_max_ms=ms) for ms in [1.0] * 19 + [50.0]]
    entries = [entry(DAY0 + 60 * (i + 1), None, result=result) for i, result in enumerate(results)]
    [tally] = add_entries({}, entries, rollup.HOUR).values()
    assert tally.rtt_p95_us == round(rollup.percentile_ms(tally.hist, 0.95, 1.0, 50.0) * 1000)
    assert 1_000 <= tally.rtt_p95_us <= 50_000
    assert Tally().rtt_p95_us is None


def test_adding_to_stored_tallies_keeps_what_they_held() -> None:
    stored = add_entry({}, entry(DAY0 + 60, DAY0), rollup.HOUR)
    changed = add_entry(stored, entry(DAY0 + 120, DAY0 + 60), rollup.HOUR)
    assert changed[(DAY0, 7)].checks == 2 and changed[(DAY0, 7)].online_s == 120
    assert stored[(DAY0, 7)].checks == 1, "the stored tallies are not changed in place"


@pytest.mark.parametrize(("previous", "closed"), [
    (DAY0 + 3_540, {(DAY0, 7)}),  # the previous check's hour is over
    (DAY0 + 3_660, set()),  # same hour: it stays open
    (None, set()),  # new host
    (DAY0 - 7_200, {(DAY0 - 7_200, 7)}),  # the job did not run for hours: that old hour closes
    (DAY0 + 7_300, set()),  # clock gone back: the later hour is not closed by an earlier one
])
def test_closing_hours(previous: int | None, closed: set[tuple[int, int]]) -> None:
    assert closing_hours([entry(DAY0 + 3_720, previous)], {7: previous}) == closed


@pytest.mark.parametrize(("at", "previous", "size", "parts"), [
    (DAY0 + 3_720, DAY0 + 3_660, rollup.HOUR, (DAY0 + 3_600, 60, [])),
    (DAY0 + 3_630, DAY0 + 3_540, rollup.HOUR, (DAY0 + 3_600, 30, [(DAY0, 60)])),
    (DAY0 + 7_200, DAY0 + 1_800, rollup.HOUR, (DAY0 + 7_200, 0, [(DAY0 + 3_600, 900)])),  # capped gap
    (DAY0 + 60, DAY0 - 60, rollup.DAY, (DAY0, 60, [(DAY0 - rollup.DAY, 60)])),
    (DAY0 + 60, None, rollup.DAY, (DAY0, 0, [])),
])
def test_gap_parts_split_the_gap_as_add_entry_does(at: int, previous: int | None, size: int,
                                                   parts: tuple[int, int, list[tuple[int, int]]]) -> None:
    made = entry(at, previous)
    assert gap_parts(made, size) == parts
    bucket, seconds, earlier = parts
    tallies = add_entry({}, made, size)
    assert {key[0]: tally.online_s for key, tally in tallies.items()} == {bucket: seconds, **dict(earlier)}
