"""`rollups_hourly` and `rollups_daily`: added to by each run, and recomputed from raw checks.

A run never reads its rollup rows: it adds what its checks contribute to them (db.upsert.add_rows),
with narrow value lists. Hourly: one statement for every (hour, target) the run adds to. Daily: one
statement per RTT histogram bucket the run's checks fall in (each names only its own h column) and
one for the rows without a sample: at most RTT_BUCKETS + 1, whatever the number of hosts. When a
target's check is in a later hour than its previous one, that hour is over: its p95 is computed from
its raw checks (one grouped SELECT, one upsert); the hour in progress has rtt_p95_us NULL.
`rollups_from_raw` computes the same rows from the `checks` table: the migration's backfill uses
it, and tests compare it with what runs wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Table, and_, func, literal_column, or_, select, type_coerce
from sqlalchemy.engine import Connection

from netwatch.core import rollup
from netwatch.core.history import CheckEntry, Key, Tally, add_entry, closing_hours, gap_parts, p95_us, replied
from netwatch.db.tables import checks, rollups_daily, rollups_hourly
from netwatch.db.upsert import add_rows, upsert_rows

_HIST_COLUMNS = [f"h{index:02d}" for index in range(rollup.RTT_BUCKETS)]
_COUNTERS = ("checks", "ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_min_us", "rtt_sum_us",
             "rtt_max_us", "online_s", "offline_s", "unknown_s")
# The columns of a run's rows (in the tables' order): a check with its RTT, and (daily) one without.
_HOURLY = ("hour", "target_id", "checks", "ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_min_us",
           "rtt_sum_us", "rtt_max_us", "online_s", "offline_s", "unknown_s")
_ADDED = ("checks", "ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us", "online_s",
          "offline_s", "unknown_s")
_DAILY_TIME = ("day", "target_id", "checks", "ok", "degraded", "failed", "sent", "received", "online_s", "offline_s",
               "unknown_s")
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
    """Adds one run's entries to both rollups without reading them, then writes the p95 of the hours
    that closed. `previous_checks`: each entry's target's previous check time (epoch seconds, None for
    a new host). At most RTT_BUCKETS + 4 statements, whatever the number of entries."""
    if not entries:
        return
    ordered = sorted(entries, key=lambda entry: entry.target_id)
    add_rows(conn, rollups_hourly, _HOURLY, _hourly_rows(ordered), key=["hour", "target_id"], add=_ADDED,
             least=["rtt_min_us"], greatest=["rtt_max_us"])
    by_bucket = _daily_rows(ordered)
    for bucket in sorted(by_bucket, key=lambda b: (b is None, b)):
        if bucket is None:
            add_rows(conn, rollups_daily, _DAILY_TIME, by_bucket[bucket], key=["day", "target_id"],
                     add=_DAILY_TIME[2:])
        else:
            hist = _HIST_COLUMNS[bucket]
            add_rows(conn, rollups_daily, ("day", *_HOURLY[1:], hist), by_bucket[bucket], key=["day", "target_id"],
                     add=[*_ADDED, hist], least=["rtt_min_us"], greatest=["rtt_max_us"])
    write_hour_p95(conn, closing_hours(ordered, previous_checks))


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


def _hourly_rows(entries: Sequence[CheckEntry]) -> list[tuple[Any, ...]]:
    """A row (`_HOURLY`) per (hour, target) the entries add to, sorted by key: each check's own hour,
    and the earlier hours its gap reaches back into (seconds only)."""
    current, earlier = [], []
    for entry in entries:
        hour, seconds, before = gap_parts(entry, rollup.HOUR)
        target, prior = entry.target_id, entry.prior
        for start, part in before:
            earlier.append((start, target, 0, 0, 0, 0, 0, 0, 0, None, 0, None, *_seconds(prior, part)))
        status = entry.status
        checked = (int(status == _OK), int(status == _DEGRADED), int(status == _FAILED), entry.sent, entry.received)
        if replied(entry):
            rtt = (1, entry.rtt_min_us, entry.rtt_avg_us, entry.rtt_max_us)
        else:
            rtt = (0, None, 0, None)
        current.append((hour, target, 1, *checked, *rtt, *_seconds(prior, seconds)))
    earlier.sort(key=_key)
    return earlier + current


def _daily_rows(entries: Sequence[CheckEntry]) -> dict[int | None, list[tuple[Any, ...]]]:
    """The daily rows the entries add to, by the histogram bucket they add a check to (`_HOURLY`'s
    columns and that bucket's h column, all 1), or None (`_DAILY_TIME`: no sample, and the earlier
    days a gap reaches back into), each list sorted by key."""
    by_bucket: dict[int | None, list[tuple[Any, ...]]] = {}
    earlier = []
    for entry in entries:
        day, seconds, before = gap_parts(entry, rollup.DAY)
        target, prior = entry.target_id, entry.prior
        for start, part in before:
            earlier.append((start, target, 0, 0, 0, 0, 0, 0, *_seconds(prior, part)))
        status = entry.status
        checked = (int(status == _OK), int(status == _DEGRADED), int(status == _FAILED), entry.sent, entry.received)
        if replied(entry):
            by_bucket.setdefault(entry.rtt_bucket, []).append(
                (day, target, 1, *checked, 1, entry.rtt_min_us, entry.rtt_avg_us, entry.rtt_max_us,
                 *_seconds(prior, seconds), 1))
        else:
            by_bucket.setdefault(None, []).append((day, target, 1, *checked, *_seconds(prior, seconds)))
    if earlier:
        earlier.sort(key=_key)
        by_bucket[None] = earlier + by_bucket.get(None, [])
    return by_bucket


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

