"""`rollups_hourly` and `rollups_daily`: added to by each run, and recomputed from raw checks.

A run never reads its rollup rows: it adds what its checks contribute to them (db.upsert). The
server computes the contributions from the run's rows just inserted into `checks` (`INSERT ...
SELECT`, one statement per table, the histogram as CASE per bucket), so nothing goes through the
driver per host; the seconds a gap spent in an earlier hour or day (a run's first check in a new
one) go in one more executemany per table. When a target's check is in a later hour than its
previous one, that hour is over: its p95 is computed from its raw checks (one grouped SELECT, one
upsert); the hour in progress has rtt_p95_us NULL. `rollups_from_raw` computes the same rows from
the `checks` table: the migration's backfill uses it, and tests compare it with what runs wrote.
"""

from __future__ import annotations

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

from netwatch.core import rollup
from netwatch.core.history import CheckEntry, Key, Tally, add_entry, closing_hours, gap_parts, p95_us, replied
from netwatch.db.tables import checks, rollups_daily, rollups_hourly
from netwatch.db.upsert import add_rows, add_selected, upsert_rows

_HIST_COLUMNS = [f"h{index:02d}" for index in range(rollup.RTT_BUCKETS)]
_COUNTERS = ("checks", "ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_min_us", "rtt_sum_us",
             "rtt_max_us", "online_s", "offline_s", "unknown_s")
# What a run adds to a row: the sums (min and max aside), and the time in each confirmed state.
_TIME = ("online_s", "offline_s", "unknown_s")
_ADDED = ("checks", "ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us", *_TIME)
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
    """Adds one run's entries (already in `checks`, all at one `checked_at`) to both rollups without
    reading them, then writes the p95 of the hours that closed. `previous_checks`: each entry's
    target's previous check time (epoch seconds, None for a new host). At most 6 statements."""
    if not entries:
        return
    [checked_at] = {entry.checked_at for entry in entries}
    targets = sorted(entry.target_id for entry in entries)
    # Only the histogram columns of the buckets this run's checks fall in: fewer CASEs, and fewer
    # columns updated per row.
    used = sorted({entry.rtt_bucket for entry in entries if replied(entry)})
    for table, size in ((rollups_hourly, rollup.HOUR), (rollups_daily, rollup.DAY)):
        bucket = _bucket_column(table).name
        hist = {index: _HIST_COLUMNS[index] for index in used} if table is rollups_daily else {}
        add_selected(conn, table, _contributions(bucket, checked_at, size, targets, hist), key=[bucket, "target_id"],
                     add=[*_ADDED, *hist.values()], least=["rtt_min_us"], greatest=["rtt_max_us"])
        add_rows(conn, table, (bucket, "target_id", *_TIME), _earlier_rows(entries, size), key=[bucket, "target_id"],
                 add=_TIME)
    write_hour_p95(conn, closing_hours(entries, previous_checks))


def _contributions(bucket: str, checked_at: int, size_s: int, targets: Sequence[int],
                   hist: Mapping[int, str]) -> Select[Any]:
    """What the checks of `targets` at `checked_at` add to their bucket of `size_s` (its start as the
    column `bucket`), computed by the server from the rows just inserted: the check's counters, its
    RTT and its count in `hist` (columns by histogram bucket) when it has a sample, and the part of
    its gap inside the bucket."""
    c = checks.c
    start = rollup.bucket_start(checked_at, size_s)
    replied = and_(c.rtt_avg_us.is_not(None), c.rtt_min_us.is_not(None), c.rtt_max_us.is_not(None),
                   c.rtt_bucket.is_not(None))
    inside = case((c.gap_s < checked_at - start, c.gap_s), else_=checked_at - start)

    def count(condition: Any, value: Any = 1) -> Any:
        return case((condition, value), else_=0)

    columns = {
        bucket: literal(start, Integer), "target_id": c.target_id, "checks": literal(1, Integer),
        "ok": count(c.status == _OK), "degraded": count(c.status == _DEGRADED), "failed": count(c.status == _FAILED),
        "sent": c.sent, "received": c.received, "rtt_samples": count(replied),
        "rtt_min_us": case((replied, c.rtt_min_us)), "rtt_sum_us": count(replied, c.rtt_avg_us),
        "rtt_max_us": case((replied, c.rtt_max_us)), "online_s": count(c.prior == _ONLINE, inside),
        "offline_s": count(c.prior == _OFFLINE, inside), "unknown_s": count(c.prior == _UNKNOWN, inside),
        **{name: count(and_(replied, c.rtt_bucket == index)) for index, name in hist.items()},
    }
    # The ids are rendered as integers: no bound parameter per host, and no limit on their number.
    ids = bindparam("targets", list(targets), expanding=True, literal_execute=True)
    return (select(*[value.label(name) for name, value in columns.items()])
            .where(c.checked_at == _at(checked_at), c.target_id.in_(ids)).order_by(c.target_id))


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
    upsert_rows(conn, rollups_hourly,
                [{"hour": _at(key[0]), "target_id": key[1], "rtt_p95_us": p95_us(hist, lows[key], highs[key])}
                 for key, hist in sorted(hists.items())],
                key=["hour", "target_id"], update=["rtt_p95_us"])


def _earlier_rows(entries: Collection[CheckEntry], size_s: int) -> list[tuple[int, int, int, int, int]]:
    """(bucket, target, online_s, offline_s, unknown_s) of the earlier buckets of `size_s` the
    entries' gaps reach back into, sorted by key (a run's first check in a new hour or day)."""
    rows = []
    for entry in entries:
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
    daily = [_daily_row(key, tally) for key, tally in sorted(rollups.daily.items())]
    return hourly, daily


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
    """Upserts the rows (all at once, or `batch` rows per statement)."""
    hourly, daily = rollup_rows(rollups)
    for table, rows in ((rollups_hourly, hourly), (rollups_daily, daily)):
        size = batch or max(1, len(rows))
        for at in range(0, len(rows), size):
            upsert_rows(conn, table, rows[at : at + size], key=["hour" if table is rollups_hourly else "day",
                                                                "target_id"],
                        update=[column.name for column in table.columns if column.name not in ("hour", "day",
                                                                                              "target_id")])


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

