"""`rollups_hourly` and `rollups_daily`: kept up to date by each run, and recomputed from raw checks.

A run reads the buckets its checks touch (one SELECT per table), adds its entries to them
(core.history) and writes them back (one upsert per table). An hourly row keeps its RTT histogram
(`rtt_hist`) while it is its target's latest hour, so its p95 stays exact as checks arrive; it is
cleared when a later hour of the target is written. `rollups_from_raw` computes the same rows from
the `checks` table: the migration's backfill uses it, and tests compare it with what runs wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from netwatch.core import rollup
from netwatch.core.history import CheckEntry, Key, Tally, add_entry, hours_to_close
from netwatch.db.tables import checks, rollups_daily, rollups_hourly
from netwatch.db.upsert import upsert_rows

_EMPTY_HIST = Tally().hist
_HIST_COLUMNS = [f"h{index:02d}" for index in range(rollup.RTT_BUCKETS)]
_COUNTERS = ("checks", "ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_min_us", "rtt_avg_us",
             "rtt_max_us", "online_s", "offline_s", "unknown_s")
# Raw checks read per fetch while recomputing: memory stays bounded.
_FETCH = 10_000
# Rollup rows per upsert while writing recomputed rows: bind parameters stay bounded.
WRITE_BATCH = 500


@dataclass(frozen=True)
class Rollups:
    """Rollup rows by (bucket start, target id), and the hourly rows that keep their (non-empty) histogram."""

    hourly: dict[Key, Tally]
    daily: dict[Key, Tally]
    open_hours: set[Key]


def update_rollups(conn: Connection, entries: Collection[CheckEntry],
                   previous_checks: Mapping[int, int | None]) -> None:
    """Adds one run's entries to both rollups: one SELECT and one upsert per table.

    `previous_checks`: each entry's target's previous check time (epoch seconds, None for a new host),
    whose hour's histogram is cleared once a later hour is written.
    """
    if not entries:
        return
    hourly, closed = {}, set()
    stored_hours = read_tallies(conn, rollups_hourly, _hours_of(entries, previous_checks))
    for entry in entries:
        touched = add_entry(stored_hours, entry, rollup.HOUR)
        hourly.update(touched)
        closed |= hours_to_close(entry, previous_checks.get(entry.target_id), touched)
    for key in closed - hourly.keys():
        if key in stored_hours:
            hourly[key] = stored_hours[key]
    stored_days = read_tallies(conn, rollups_daily, {rollup.bucket_start(entry.checked_at - entry.gap_s, rollup.DAY)
                                                      for entry in entries}
                                                   | {rollup.bucket_start(entry.checked_at, rollup.DAY)
                                                      for entry in entries})
    daily = {}
    for entry in entries:
        daily.update(add_entry(stored_days, entry, rollup.DAY))
    write_rollups(conn, Rollups(hourly, daily, set(hourly) - closed))


def read_tallies(conn: Connection, table: Table, buckets: Collection[int]) -> dict[Key, Tally]:
    """Every stored row of `buckets` (bucket starts) in `table`, by (bucket, target id)."""
    if not buckets:
        return {}
    bucket = _bucket_column(table)
    rows = conn.execute(select(table).where(bucket.in_([_at(start) for start in sorted(buckets)]))).mappings()
    return {(_epoch(row[bucket.name]), row["target_id"]): _tally(table, row) for row in rows}


def read_rollup_rows(conn: Connection, start: int, end: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The stored hourly and daily rows of the buckets in [start, end) (epoch seconds), as `rollup_rows` gives."""
    found = []
    for table in (rollups_hourly, rollups_daily):
        bucket = _bucket_column(table)
        found.append([dict(row) for row in conn.execute(select(table).where(_in_range(table, start, end))
                                                         .order_by(bucket, table.c.target_id)).mappings()])
    return found[0], found[1]


def rollup_rows(rollups: Rollups) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The hourly and daily rows `rollups` is stored as, ordered by bucket and target."""
    hourly = [_hourly_row(key, tally, key in rollups.open_hours) for key, tally in sorted(rollups.hourly.items())]
    daily = [_daily_row(key, tally) for key, tally in sorted(rollups.daily.items())]
    return hourly, daily


def rollups_from_raw(conn: Connection, start: int, end: int) -> Rollups:
    """The rollup rows of the buckets in [start, end) computed from the raw checks, oldest check first.

    `start` and `end` are whole UTC days (epoch seconds). A check up to a day after `end` can credit
    its gap to the range, so those are read too; an hour keeps its histogram when it holds its
    target's latest check.
    """
    if start % rollup.DAY or end % rollup.DAY:
        raise ValueError(f"rollups_from_raw: start and end must be whole UTC days, got {start} and {end}")
    hourly: dict[Key, Tally] = {}
    daily: dict[Key, Tally] = {}
    query = (select(checks).where(checks.c.checked_at >= _at(start), checks.c.checked_at < _at(end + rollup.DAY))
             .order_by(checks.c.checked_at, checks.c.target_id))
    result = conn.execute(query).mappings()
    while rows := result.fetchmany(_FETCH):
        for row in rows:
            entry = _entry(row)
            hourly.update(_within(add_entry(hourly, entry, rollup.HOUR), start, end))
            daily.update(_within(add_entry(daily, entry, rollup.DAY), start, end))
    latest = dict(conn.execute(select(checks.c.target_id, func.max(checks.c.checked_at))
                               .group_by(checks.c.target_id)).all())
    # An hour without replies has no histogram to keep.
    open_hours = {key for key, tally in hourly.items() if any(tally.hist) and key[1] in latest
                  and rollup.bucket_start(_epoch(latest[key[1]]), rollup.HOUR) == key[0]}
    return Rollups(hourly, daily, open_hours)


def write_rollups(conn: Connection, rollups: Rollups, batch: int | None = None) -> None:
    """Upserts the rows (all at once, or `batch` rows per statement)."""
    hourly, daily = rollup_rows(rollups)
    for table, rows in ((rollups_hourly, hourly), (rollups_daily, daily)):
        size = batch or max(1, len(rows))
        for at in range(0, len(rows), size):
            upsert_rows(conn, table, rows[at : at + size], key=["hour" if table is rollups_hourly else "day",
                                                                "target_id"],
                        update=[column.name for column in table.columns if column.name not in ("hour", "day",
                                                                                              "target_id")])


def _hours_of(entries: Iterable[CheckEntry], previous_checks: Mapping[int, int | None]) -> set[int]:
    hours = set()
    for entry in entries:
        hours.update(bucket for bucket, _ in rollup.split_interval(entry.checked_at - entry.gap_s, entry.checked_at,
                                                                   rollup.HOUR))
        hours.add(rollup.bucket_start(entry.checked_at, rollup.HOUR))
        previous = previous_checks.get(entry.target_id)
        if previous is not None:
            hours.add(rollup.bucket_start(previous, rollup.HOUR))
    return hours


def _within(tallies: dict[Key, Tally], start: int, end: int) -> dict[Key, Tally]:
    return {key: tally for key, tally in tallies.items() if start <= key[0] < end}


def _entry(row: Mapping[str, Any]) -> CheckEntry:
    return CheckEntry(
        target_id=row["target_id"], checked_at=_epoch(row["checked_at"]), status=row["status"], prior=row["prior"],
        state=row["state"], gap_s=row["gap_s"], sent=row["sent"], received=row["received"], attempts=row["attempts"],
        rtt_min_us=row["rtt_min_us"], rtt_avg_us=row["rtt_avg_us"], rtt_max_us=row["rtt_max_us"],
        rtt_bucket=row["rtt_bucket"], error=None,
    )


def _tally(table: Table, row: Mapping[str, Any]) -> Tally:
    if table is rollups_daily:
        hist = tuple(row[column] for column in _HIST_COLUMNS)
    else:
        hist = tuple(rollup.decode_hist(row["rtt_hist"])) if row["rtt_hist"] else _EMPTY_HIST
    return Tally(*[row[name] for name in _COUNTERS], hist)


def _counters(key: Key, tally: Tally) -> dict[str, Any]:
    return {"target_id": key[1], **{name: getattr(tally, name) for name in _COUNTERS}, "rtt_p95_us": tally.rtt_p95_us}


def _hourly_row(key: Key, tally: Tally, keep_hist: bool) -> dict[str, Any]:
    hist = rollup.encode_hist(tally.hist) if keep_hist else b""
    return {"hour": _at(key[0]), **_counters(key, tally), "rtt_hist": hist or None}


def _daily_row(key: Key, tally: Tally) -> dict[str, Any]:
    return {"day": _at(key[0]), **_counters(key, tally), **dict(zip(_HIST_COLUMNS, tally.hist, strict=True))}


def _bucket_column(table: Table) -> Any:
    return table.c.hour if table is rollups_hourly else table.c.day


def _in_range(table: Table, start: int, end: int) -> Any:
    bucket = _bucket_column(table)
    return (bucket >= _at(start)) & (bucket < _at(end))


def _at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _epoch(value: datetime) -> int:
    return int(value.timestamp())

