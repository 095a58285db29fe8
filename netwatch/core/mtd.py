"""Month-to-date running totals of the daily rollups: pure code, no I/O.

A daily row holds the day's own confirmed-state time and RTT extremes, and the running totals
(`mtd_*`) of its host's days of the same UTC month up to and including it (netwatch/db/tables.py).
`apply_days` adds a run's per-day contributions to a host's stored rows; `mtd_rows` builds the rows
from per-day tallies (the rows recomputed from raw checks); `windows` says which rows a range of
days is the difference of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from netwatch.core import rollup
from netwatch.core.history import Key, Tally

HIST = tuple(f"h{index:02d}" for index in range(rollup.RTT_BUCKETS))
# Tally fields summed into the running totals, in tables.MTD_COUNTERS order (the histogram last).
SUMMED = ("ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us", "online_s",
          "offline_s", "unknown_s")
MTD_COLUMNS = tuple(f"mtd_{name}" for name in (*SUMMED, *HIST))
DAY_COLUMNS = ("online_s", "offline_s", "rtt_min_us", "rtt_max_us")

Row = dict[str, Any]


def month_start(epoch_s: int) -> int:
    """The start (epoch seconds) of the UTC month holding `epoch_s`."""
    at = datetime.fromtimestamp(epoch_s, UTC)
    return int(datetime(at.year, at.month, 1, tzinfo=UTC).timestamp())


def next_month(epoch_s: int) -> int:
    """The start of the UTC month after the one holding `epoch_s`."""
    at = datetime.fromtimestamp(month_start(epoch_s), UTC)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def _amounts(tally: Tally) -> tuple[int, ...]:
    return (*(getattr(tally, name) for name in SUMMED), *tally.hist)


def _lowest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def new_row(day_s: int, target_id: int, base: Row | None) -> Row:
    """An empty day row whose totals continue `base` (the host's previous row of the month, or None)."""
    totals = {name: (base[name] if base else 0) for name in MTD_COLUMNS}
    return {"day": day_s, "target_id": target_id, "online_s": 0, "offline_s": 0, "rtt_min_us": None,
            "rtt_max_us": None, **totals}


def apply_days(stored: Mapping[int, Row], deltas: Mapping[int, Tally], target_id: int) -> dict[int, Row]:
    """One host's rows changed by adding `deltas` (per-day tallies by day start): each day's own
    columns and totals, and the totals of the host's later rows in the same month (a clock stepped
    back). `stored`: the host's rows by day, at least the latest one before each delta's day in its
    month and every later one of that month. Returns the changed rows (new or updated) by day."""
    rows = {day: dict(row) for day, row in stored.items()}
    changed: dict[int, Row] = {}
    for day in sorted(deltas):
        tally, month = deltas[day], month_start(day)
        if day not in rows:
            earlier = [d for d in rows if month <= d < day]
            rows[day] = new_row(day, target_id, rows[max(earlier)] if earlier else None)
        row = rows[day]
        row["online_s"] += tally.online_s
        row["offline_s"] += tally.offline_s
        row["rtt_min_us"] = _lowest(row["rtt_min_us"], tally.rtt_min_us)
        row["rtt_max_us"] = _highest(row["rtt_max_us"], tally.rtt_max_us)
        amounts = _amounts(tally)
        for later in [d for d in rows if d >= day and month_start(d) == month]:
            target = rows[later]
            for name, amount in zip(MTD_COLUMNS, amounts, strict=True):
                target[name] += amount
            changed[later] = target
    return changed


def mtd_rows(daily: Mapping[Key, Tally]) -> list[Row]:
    """The stored rows of per-day tallies by (day, target): running totals within each UTC month,
    ordered by day then target."""
    rows: list[Row] = []
    previous: Row | None = None
    for day, target_id in sorted(daily, key=lambda key: (key[1], key[0])):
        same_month = previous is not None and previous["target_id"] == target_id and (
            month_start(previous["day"]) == month_start(day))
        [row] = apply_days({previous["day"]: previous} if same_month and previous else {},
                           {day: daily[(day, target_id)]}, target_id).values()
        rows.append(row)
        previous = row
    return sorted(rows, key=lambda row: (row["day"], row["target_id"]))


@dataclass(frozen=True)
class Window:
    """Days [first_s, last_s] (day starts, both included): the host's latest row in it is counted `sign` times."""

    first_s: int
    last_s: int
    sign: int


def windows(start_s: int, end_s: int) -> list[Window]:
    """The rows whose totals add up to the days [start_s, end_s) (whole UTC days): for each month
    touched, plus the host's last row in it up to the range's end; in the first month, minus its last
    row before the range (when the range starts after the month's first day)."""
    last_day = end_s - rollup.DAY
    found = []
    month = month_start(start_s)
    while month <= last_day:
        following = next_month(month)
        found.append(Window(month, min(last_day, following - rollup.DAY), 1))
        month = following
    if start_s > month_start(start_s):
        found.append(Window(month_start(start_s), start_s - rollup.DAY, -1))
    return found


def pieces(spans: list[Window], start_s: int) -> list[tuple[int, int]]:
    """The days of `spans` (windows of a range starting at `start_s`) cut into pieces [first_s, last_s]
    (day starts, both included), in order: each lies in one window of sign 1 and is either wholly
    before the range (in the window of sign -1) or wholly inside it. A host's latest row in a window
    is then its latest in that window's pieces, each found by a plain range scan."""
    edges = sorted({w.first_s for w in spans} | {w.last_s + rollup.DAY for w in spans} | {start_s})
    return [(first, following - rollup.DAY) for first, following in pairwise(edges)]
