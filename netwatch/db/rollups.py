"""`rollups_hourly` and `rollups_daily`: added to by each run, and recomputed from raw checks.

A run adds what its checks contribute (db.upsert). For the hourly rows and the daily rows of
targets checked earlier the same day (nearly every run), the server computes the contributions from
the run's rows just inserted into `checks` (`upsert.add_selected`, the histogram as CASE per bucket)
and nothing goes through the driver per host or is read back; the seconds a gap spent in an earlier
hour go in one statement. A target's first check of a day continues its month-to-date totals
(netwatch/core/mtd.py) from its previous row of the month: those rows are read and written whole,
about once a day per target. When a target's check is in a later hour than its previous one, that
hour is over: its p95 is computed from its raw checks (one grouped SELECT, one upsert, on MariaDB
with the values in its text); the hour in progress has no p95 (rtt_p95_us None). `rollups_from_raw`
computes the same rows from the `checks` table: the migration's backfill uses it, and tests compare
it with what runs wrote.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection

from netwatch.core import mtd, rollup
from netwatch.core.history import CheckEntry, Key, Tally, add_entry, closing_hours, gap_parts, p95_us, replied
from netwatch.core.mtd import HIST
from netwatch.db.tables import checks, rollups_daily, rollups_hourly
from netwatch.db.types import Pending
from netwatch.db.upsert import add_integer_rows, add_selected, upsert_integer_rows, upsert_rows

_COUNTERS = ("ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_min_us", "rtt_sum_us",
             "rtt_max_us", "online_s", "offline_s", "unknown_s")
# What a run adds to a row: the sums (min and max aside), and the time in each confirmed state.
_TIME = ("online_s", "offline_s", "unknown_s")
_ADDED = ("ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us", *_TIME)
_EXTREMES = ("rtt_min_us", "rtt_max_us")
_HOURLY_VALUES = [column.name for column in rollups_hourly.columns if column.name not in ("hour", "target_id")]
_DAILY_VALUES = [column.name for column in rollups_daily.columns if column.name not in ("day", "target_id")]
_OK, _DEGRADED, _FAILED = (rollup.CHECK_CODES[name] for name in ("ok", "degraded", "failed"))
_UNKNOWN, _ONLINE, _OFFLINE = (rollup.STATE_CODES[name] for name in ("unknown", "online", "offline"))
# Raw checks read per fetch while recomputing: memory stays bounded.
_FETCH = 10_000


@dataclass(frozen=True)
class Rollups:
    """Rollup rows by (bucket start, target id), and the hourly rows that are over (they carry a p95)."""

    hourly: dict[Key, Tally]
    daily: dict[Key, Tally]
    closed_hours: set[Key]


def update_rollups(conn: Connection, entries: Collection[CheckEntry],
                   previous_checks: Mapping[int, int | None]) -> None:
    """Adds one run's entries (already in `checks`, all at one `checked_at`) to both rollups, then
    writes the p95 of the hours that closed. `previous_checks`: each entry's target's previous check
    time (epoch seconds, None for a new host).

    A target checked earlier the same day (the usual run) adds to its hourly and daily rows without
    reading them. The others (a run's first check in a new day, a new host, a clock stepped back
    across midnight) start or continue month-to-date totals: their rows are read and written whole
    (`add_daily_tallies`). At most 8 statements (on MySQL, one more per further 10,000 rows of
    earlier-hour seconds or closing hours)."""
    if not entries:
        return
    [checked_at] = {entry.checked_at for entry in entries}
    day = rollup.bucket_start(checked_at, rollup.DAY)
    same_day = {target_id for target_id, previous in previous_checks.items()
                if previous is not None and rollup.bucket_start(previous, rollup.DAY) == day}
    targets = sorted(entry.target_id for entry in entries)
    # Only the histogram columns of the buckets this run's checks fall in: fewer CASEs, and fewer
    # columns updated per row.
    used = sorted({entry.rtt_bucket for entry in entries if replied(entry)})
    add_selected(conn, rollups_hourly, _select(_contributions(rollup.HOUR, checked_at, {}), targets, checked_at),
                 key=["hour", "target_id"], add=_ADDED, least=["rtt_min_us"], greatest=["rtt_max_us"])
    add_integer_rows(conn, rollups_hourly, ("hour", "target_id", *_TIME), _earlier_rows(entries, rollup.HOUR),
                     key=["hour", "target_id"], add=_TIME)
    plain = [target_id for target_id in targets if target_id in same_day]
    if plain:
        columns = _daily_columns(_contributions(rollup.DAY, checked_at, {index: HIST[index] for index in used}))
        add_selected(conn, rollups_daily, _select(columns, plain, checked_at), key=["day", "target_id"],
                     add=[name for name in columns if name not in ("day", "target_id", *_EXTREMES)],
                     least=["rtt_min_us"], greatest=["rtt_max_us"])
    tallies: dict[Key, Tally] = {}
    for entry in entries:
        if entry.target_id not in same_day:
            tallies.update(add_entry(tallies, entry, rollup.DAY))
    add_daily_tallies(conn, tallies)
    write_hour_p95(conn, closing_hours(entries, previous_checks))


def _contributions(size_s: int, checked_at: int, hist: Mapping[int, str]) -> dict[str, Any]:
    """What each check at `checked_at` adds to its bucket of `size_s`, computed by the server from the
    rows just inserted: the check's counters, its RTT and its count in `hist` (columns by histogram
    bucket) when it has a sample, and the part of its gap inside the bucket. Named as the hourly
    table's columns, the bucket's start as `bucket`."""
    c = checks.c
    start = rollup.bucket_start(checked_at, size_s)
    replied = and_(c.rtt_avg_us.is_not(None), c.rtt_min_us.is_not(None), c.rtt_max_us.is_not(None),
                   c.rtt_bucket.is_not(None))
    inside = case((c.gap_s < checked_at - start, c.gap_s), else_=checked_at - start)

    def count(condition: Any, value: Any = 1) -> Any:
        return case((condition, value), else_=0)

    return {
        "bucket": literal(start, Integer), "target_id": c.target_id,
        "ok": count(c.status == _OK), "degraded": count(c.status == _DEGRADED), "failed": count(c.status == _FAILED),
        "sent": c.sent, "received": c.received, "rtt_samples": count(replied),
        "rtt_min_us": case((replied, c.rtt_min_us)), "rtt_sum_us": count(replied, c.rtt_avg_us),
        "rtt_max_us": case((replied, c.rtt_max_us)), "online_s": count(c.prior == _ONLINE, inside),
        "offline_s": count(c.prior == _OFFLINE, inside), "unknown_s": count(c.prior == _UNKNOWN, inside),
        **{name: count(and_(replied, c.rtt_bucket == index)) for index, name in hist.items()},
    }


def _daily_columns(columns: Mapping[str, Any]) -> dict[str, Any]:
    """`_contributions` as the daily table's columns: the day's own time and extremes, and the rest
    added to the month-to-date totals."""
    own = {"day": columns["bucket"], "target_id": columns["target_id"],
           **{name: columns[name] for name in ("online_s", "offline_s", *_EXTREMES)}}
    return {**own, **{f"mtd_{name}": value for name, value in columns.items()
                      if name not in ("bucket", "target_id", *_EXTREMES)}}


def _select(columns: Mapping[str, Any], targets: Sequence[int], checked_at: int) -> Select[Any]:
    """`columns` (named by their keys; `bucket` as the hourly table's `hour`) of the checks of
    `targets` at `checked_at`."""
    c = checks.c
    return (select(*[value.label("hour" if name == "bucket" else name) for name, value in columns.items()])
            .where(c.checked_at == _at(checked_at), _listed(c.target_id, targets)).order_by(c.target_id))


def _listed(column: Any, ids: Sequence[int]) -> Any:
    """`column IN (ids)`, the ids (at least one) written into the statement as integers: no bound
    parameter per host and no limit on their number, joined here in one go (SQLAlchemy's literal
    rendering, value by value, cost 20 ms per 10,000 ids)."""
    if not ids:
        raise ValueError("_listed: no ids")
    return column.op("IN")(literal_column("(" + ",".join([str(operator.index(id_)) for id_ in ids]) + ")"))


def add_daily_tallies(conn: Connection, tallies: Mapping[Key, Tally]) -> None:
    """Adds per-day tallies by (day, target) to the daily rows, continuing or starting their month's
    totals: reads the targets' rows that the days change or continue (two statements) and writes
    the changed rows whole (one)."""
    if not tallies:
        return
    stored = _stored_rows(conn, tallies)
    deltas: dict[int, dict[int, Tally]] = {}
    for (day, target_id), tally in tallies.items():
        deltas.setdefault(target_id, {})[day] = tally
    rows = [row for target_id, days in deltas.items()
            for row in mtd.apply_days(stored.get(target_id, {}), days, target_id).values()]
    upsert_rows(conn, rollups_daily, [{**row, "day": _at(row["day"])} for row in sorted(rows, key=_row_key)],
                key=["day", "target_id"], update=_DAILY_VALUES)


def _stored_rows(conn: Connection, tallies: Mapping[Key, Tally]) -> dict[int, dict[int, mtd.Row]]:
    """The stored daily rows `mtd.apply_days` needs for `tallies`, by target and day: each target's
    latest row of the month before the first day, and its rows from that day to the end of the
    last day's month."""
    r = rollups_daily.c
    day = type_coerce(r.day, Integer)
    first, last = min(key[0] for key in tallies), max(key[0] for key in tallies)
    ids = bindparam("targets", sorted({key[1] for key in tallies}), expanding=True, literal_execute=True)
    before = conn.execute(select(r.target_id, func.max(day)).where(
        r.target_id.in_(ids), day >= mtd.month_start(first), day < first).group_by(r.target_id)).all()
    by_latest: dict[int, list[int]] = {}
    for target_id, latest in before:
        by_latest.setdefault(int(latest), []).append(target_id)
    # One term per distinct latest day (at most a month's days), not per target.
    wanted = or_(and_(r.target_id.in_(ids), day >= first, day < mtd.next_month(last)),
                 *[and_(day == latest, r.target_id.in_(bindparam(f"at_{latest}", sorted(group), expanding=True,
                                                                 literal_execute=True)))
                   for latest, group in sorted(by_latest.items())])
    found: dict[int, dict[int, mtd.Row]] = {}
    for row in conn.execute(select(rollups_daily).where(wanted)).mappings():
        found.setdefault(row["target_id"], {})[_epoch(row["day"])] = {**row, "day": _epoch(row["day"])}
    return found


def write_hour_p95(conn: Connection, closing: Collection[Key]) -> None:
    """Sets rtt_p95_us of the (hour, target) rows in `closing` from their raw checks: one grouped
    SELECT over those hours (a row per target, hour and RTT bucket) and one upsert."""
    if not closing:
        return
    at = type_coerce(checks.c.checked_at, Integer)
    hour = at - at % literal_column(str(rollup.HOUR))
    c = checks.c
    in_hours = or_(*[and_(c.checked_at >= _at(start), c.checked_at < _at(start + rollup.HOUR))
                     for start in sorted({start for start, _ in closing})])
    rows = conn.execute(
        select(c.target_id, hour, c.rtt_bucket, func.count(), func.min(c.rtt_min_us), func.max(c.rtt_max_us))
        .where(in_hours, c.rtt_bucket.is_not(None), c.rtt_avg_us.is_not(None), c.rtt_min_us.is_not(None),
               c.rtt_max_us.is_not(None))
        .group_by(c.target_id, hour, c.rtt_bucket))
    hists: dict[Key, list[int]] = {}
    lows: dict[Key, int] = {}
    highs: dict[Key, int] = {}
    for target_id, start, bucket, count, low, high in rows:
        key = (int(start), target_id)
        if key in closing:
            hists.setdefault(key, [0] * rollup.RTT_BUCKETS)[bucket] += count
            lows[key] = min(lows.get(key, low), low)
            highs[key] = max(highs.get(key, high), high)
    upsert_integer_rows(conn, rollups_hourly, ("hour", "target_id", "rtt_p95_us"),
                        [(*key, _pending(p95_us(hist, lows[key], highs[key]))) for key, hist in sorted(hists.items())],
                        key=["hour", "target_id"], update=["rtt_p95_us"])


def _pending(value: int | None) -> int:
    """`value` as a Pending column stores it (the rows go to the driver as they are)."""
    return Pending.ABSENT if value is None else value


def _earlier_rows(entries: Collection[CheckEntry], size_s: int) -> list[tuple[int, int, int, int, int]]:
    """(bucket, target, online_s, offline_s, unknown_s) of the earlier buckets of `size_s` the
    entries' gaps reach back into, sorted by key (a run's first check in a new hour or day)."""
    rows = []
    for entry in entries:
        # Most gaps lie inside their check's own bucket: only the others are split.
        if entry.gap_s > entry.checked_at % size_s:
            _, _, before = gap_parts(entry, size_s)
            rows.extend((start, entry.target_id, *_seconds(entry.prior, part)) for start, part in before)
    return sorted(rows, key=_key)


def _key(row: tuple[Any, ...]) -> tuple[int, int]:
    return row[0], row[1]


def _seconds(prior: int, seconds: int) -> tuple[int, int, int]:
    """(online_s, offline_s, unknown_s) of `seconds` spent in the confirmed state `prior`."""
    return (seconds if prior == _ONLINE else 0, seconds if prior == _OFFLINE else 0,
            seconds if prior == _UNKNOWN else 0)


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
    hourly = [_hourly_row(key, tally, key in rollups.closed_hours) for key, tally in sorted(rollups.hourly.items())]
    return hourly, [{**row, "day": _at(row["day"])} for row in mtd.mtd_rows(rollups.daily)]


def rollups_from_raw(conn: Connection, start: int, end: int) -> Rollups:
    """The rollup rows of the buckets in [start, end) computed from the raw checks, oldest check first.

    `start` and `end` are whole UTC days (epoch seconds). A check up to a day after `end` can credit
    its gap to the range, so those are read too. An hour is closed (it has its p95) when its
    target has a later check, as the writer sets it.
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
    closed = {key for key in hourly if key[0] < rollup.bucket_start(_epoch(latest[key[1]]), rollup.HOUR)}
    return Rollups(hourly, daily, closed)


def write_rollups(conn: Connection, rollups: Rollups, batch: int | None = None) -> None:
    """Writes recomputed rollups of buckets that have no rows yet (the migration's backfill, a day at
    a time, oldest first): the hourly rows `batch` per statement (or all at once), the daily ones
    continuing their month's totals (`add_daily_tallies`)."""
    hourly, _ = rollup_rows(rollups)
    size = batch or max(1, len(hourly))
    for at in range(0, len(hourly), size):
        upsert_rows(conn, rollups_hourly, hourly[at : at + size], key=["hour", "target_id"], update=_HOURLY_VALUES)
    add_daily_tallies(conn, rollups.daily)


def _within(tallies: dict[Key, Tally], start: int, end: int) -> dict[Key, Tally]:
    return {key: tally for key, tally in tallies.items() if start <= key[0] < end}


def _entry(row: Mapping[str, Any]) -> CheckEntry:
    return CheckEntry(
        target_id=row["target_id"], checked_at=_epoch(row["checked_at"]), status=row["status"], prior=row["prior"],
        state=row["state"], gap_s=row["gap_s"], sent=row["sent"], received=row["received"], attempts=row["attempts"],
        rtt_min_us=row["rtt_min_us"], rtt_avg_us=row["rtt_avg_us"], rtt_max_us=row["rtt_max_us"],
        rtt_bucket=row["rtt_bucket"], error=None,
    )


def _counters(key: Key, tally: Tally) -> dict[str, Any]:
    return {"target_id": key[1], **{name: getattr(tally, name) for name in _COUNTERS}}


def _hourly_row(key: Key, tally: Tally, closed: bool) -> dict[str, Any]:
    return {"hour": _at(key[0]), **_counters(key, tally), "rtt_p95_us": tally.rtt_p95_us if closed else None}


def _row_key(row: Mapping[str, Any]) -> tuple[int, int]:
    return row["day"], row["target_id"]


def _bucket_column(table: Table) -> Any:
    return table.c.hour if table is rollups_hourly else table.c.day


def _in_range(table: Table, start: int, end: int) -> Any:
    bucket = _bucket_column(table)
    return (bucket >= _at(start)) & (bucket < _at(end))


def _at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _epoch(value: datetime) -> int:
    return int(value.timestamp())

