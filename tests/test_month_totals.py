"""Month-to-date totals of the daily rollups (netwatch/core/mtd.py): pure code, plain values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from netwatch.core import rollup
from netwatch.core.history import Tally
from netwatch.core.mtd import Window, apply_days, month_start, mtd_rows, next_month, pieces, windows


def day(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def tally(checks: int, online_s: int = 0, rtt: int | None = None) -> Tally:
    hist = [0] * rollup.RTT_BUCKETS
    if rtt is not None:
        hist[3] = checks
    return Tally(ok=checks, sent=3 * checks, received=3 * checks,
                 rtt_samples=checks if rtt is not None else 0, rtt_min_us=rtt, rtt_sum_us=(rtt or 0) * checks,
                 rtt_max_us=rtt, online_s=online_s, hist=tuple(hist))


@pytest.mark.parametrize(("at", "start", "following"), [
    ("2026-11-22T10:00:00", "2026-11-01", "2026-12-01"),
    ("2026-11-01T00:00:00", "2026-11-01", "2026-12-01"),
    ("2026-11-30T23:59:59", "2026-11-01", "2026-12-01"),
    ("2026-12-31T12:00:00", "2026-12-01", "2027-01-01"),   # the year's last month
    ("2028-02-29T00:00:00", "2028-02-01", "2028-03-01"),   # a leap day
])
def test_month_edges_are_utc(at: str, start: str, following: str) -> None:
    assert month_start(day(at)) == day(start)
    assert next_month(day(at)) == day(following)


def _days(first: str, last: str) -> list[int]:
    begin, end = date.fromisoformat(first), date.fromisoformat(last)
    return [day((begin + timedelta(days=n)).isoformat()) for n in range((end - begin).days + 1)]


@pytest.mark.parametrize(("first", "last"), [
    ("2026-11-22", "2026-11-22"),   # one day
    ("2026-11-01", "2026-11-30"),   # a whole month
    ("2026-11-01", "2026-11-01"),   # a month's first day
    ("2026-11-30", "2026-12-01"),   # across a month edge
    ("2026-11-10", "2026-11-20"),   # inside a month
    ("2026-09-04", "2026-12-02"),   # 90 days: four months
    ("2025-12-15", "2027-01-15"),   # across two year ends
])
def test_windows_add_up_to_every_day_of_the_range_once(first: str, last: str) -> None:
    """Each day's own count in a host's totals, summed over the windows' latest rows, is the range's."""
    inside = set(_days(first, last))
    everything = _days("2025-11-01", "2027-02-28")
    # A host with a row every day, each day's own amount 1: its month-to-date total is the day of the month.
    totals = {d: datetime.fromtimestamp(d, UTC).day for d in everything}
    spans = windows(day(first), day(last) + rollup.DAY)
    counted = sum(w.sign * totals[max(d for d in everything if w.first_s <= d <= w.last_s)] for w in spans)
    assert counted == len(inside)
    assert all(w.first_s == month_start(w.first_s) and w.first_s <= w.last_s for w in spans)


@pytest.mark.parametrize(("first", "last"), [
    ("2026-11-22", "2026-11-22"), ("2026-11-01", "2026-11-30"), ("2026-11-01", "2026-11-01"),
    ("2026-11-30", "2026-12-01"), ("2026-11-10", "2026-11-20"), ("2026-09-04", "2026-12-02"),
    ("2025-12-15", "2027-01-15"),
])
def test_pieces_cut_the_windows_days_each_once_inside_one_window_and_one_side_of_the_start(first: str,
                                                                                          last: str) -> None:
    start, end = day(first), day(last) + rollup.DAY
    spans = windows(start, end)
    cut = pieces(spans, start)
    covered = [d for a, b in cut for d in range(a, b + rollup.DAY, rollup.DAY)]
    assert covered == list(range(month_start(start), end, rollup.DAY)), "every day once, in order"
    for a, b in cut:
        assert a <= b
        assert len([w for w in spans if w.sign == 1 and w.first_s <= a and b <= w.last_s]) == 1
        assert b < start or a >= start
        assert any(w.first_s <= a and b <= w.last_s for w in spans if w.sign == -1) == (b < start)


def test_windows_of_a_range_inside_one_month() -> None:
    assert windows(day("2026-11-10"), day("2026-11-21")) == [
        Window(day("2026-11-01"), day("2026-11-20"), 1), Window(day("2026-11-01"), day("2026-11-09"), -1)]
    assert windows(day("2026-11-01"), day("2026-11-02")) == [Window(day("2026-11-01"), day("2026-11-01"), 1)]


def test_a_new_row_continues_the_months_previous_row_not_an_earlier_months() -> None:
    stored = {day("2026-10-31"): apply_days({}, {day("2026-10-31"): tally(5)}, 7)[day("2026-10-31")]}
    first = apply_days(stored, {day("2026-11-01"): tally(2, online_s=60, rtt=900)}, 7)
    [(key, row)] = first.items()
    assert key == day("2026-11-01") and row["mtd_ok"] == 2, "a new month starts over"
    stored[key] = row
    # Days without checks in between: the next row continues from the latest one of the month.
    later = apply_days(stored, {day("2026-11-05"): tally(3, online_s=30, rtt=400)}, 7)[day("2026-11-05")]
    assert (later["mtd_ok"], later["mtd_online_s"], later["mtd_rtt_sum_us"], later["mtd_h03"]) == (
        5, 90, 2 * 900 + 3 * 400, 5)
    # The day's own columns are its own, not running.
    assert (later["online_s"], later["rtt_min_us"], later["rtt_max_us"]) == (30, 400, 400)


def test_an_addition_to_an_earlier_day_reaches_the_later_rows_of_its_month_only() -> None:
    rows: dict[int, dict[str, object]] = {}
    for text, checks in (("2026-11-29", 1), ("2026-11-30", 1), ("2026-12-01", 1)):
        rows.update(apply_days(rows, {day(text): tally(checks)}, 7))
    # A clock stepped back: one more check on the 29th.
    changed = apply_days(rows, {day("2026-11-29"): tally(1, rtt=250)}, 7)
    assert sorted(changed) == [day("2026-11-29"), day("2026-11-30")]
    assert [changed[d]["mtd_ok"] for d in sorted(changed)] == [2, 3]
    assert changed[day("2026-11-29")]["rtt_min_us"] == 250 and changed[day("2026-11-30")]["rtt_min_us"] is None


def test_rows_from_tallies_run_within_each_month_per_host() -> None:
    daily = {(day("2026-11-29"), 1): tally(1), (day("2026-11-30"), 1): tally(2), (day("2026-12-01"), 1): tally(4),
             (day("2026-11-30"), 2): tally(8)}
    rows = mtd_rows(daily)
    assert [(r["day"], r["target_id"], r["mtd_ok"]) for r in rows] == [
        (day("2026-11-29"), 1, 1), (day("2026-11-30"), 1, 3), (day("2026-11-30"), 2, 8), (day("2026-12-01"), 1, 4)]
