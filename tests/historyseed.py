"""Test data for the history readers, in the tables as ping-sweep's writer leaves them
(README "History" and the comments of netwatch/db/tables.py). Times are aware UTC datetimes. Two ways in:

- Check sequences, with everything derived from them (targets, check_errors, checks, transitions,
  both rollups, the hosts row and a ping-sweep `job_runs` row per distinct check time, as a check's
  time is its run's start):

      write_history(engine, [HostHistory("lo-1", "1234", [Seen(at, "ok", 1.5), Seen(at2, "failed")])])

  `prior` is the confirmed state before a check, `gap_s = counted_gap(previous check, now, gap
  limit)` credited to `prior` and split at bucket edges, RTT in microseconds, the histogram from
  `rtt_bucket`, an hour's p95 once a later check of its host exists. The confirmed state after a
  check is `state` when given, else what its status says (thresholds of 1); a change writes a
  transition (with `event_key` when given).
- Rows made directly (what the status page reads): hosts with their targets, daily and hourly
  rollups, transitions, job runs, the account cache and triggers.

      ids = add_hosts(conn, [SeedHost("h1", "1234", "online", since)])   # kind="http", client=... for a check
      add_daily(conn, [daily_row(ids["h1"], day, online_s=86_000, offline_s=400)])
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inproc import Clock, InProcess
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from netwatch.core import rollup
from netwatch.db import tables

GAP_LIMIT_S = 900
SENT = 2
# When seeded targets were first checked unless told.
FIRST_CHECK = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Seen:
    """One check: its time, status, average RTT (ms, None without replies), failure reason, state after."""

    at: datetime
    status: str
    rtt_ms: float | None = None
    error: str | None = None
    state: str | None = None
    event_key: str | None = None


@dataclass(frozen=True)
class HostHistory:
    name: str
    account: str | None
    seen: Sequence[Seen] = field(default_factory=list)
    in_inventory: bool = True


def _received(status: str) -> int:
    return {"ok": SENT, "degraded": 1, "failed": 0}[status]


# An RTT sample of a check: (min, avg, max) in microseconds and its histogram bucket.
Rtt = tuple[int, int, int, int]


def rollup_row(table: str, bucket: datetime, target_id: int, counts: Mapping[str, int], rtts: Sequence[Rtt],
               closed: bool = True) -> dict[str, Any]:
    """A row of rollups_hourly (`table` "hour") or rollups_daily ("day") from its check counters, time
    counters and RTT samples; an hourly row has its p95 when `closed` (a later check of its host exists)."""
    hist = [0] * rollup.RTT_BUCKETS
    for *_, index in rtts:
        hist[index] += 1
    low = min((r[0] for r in rtts), default=None)
    high = max((r[2] for r in rtts), default=None)
    # No column holds the number of checks (it is ok + degraded + failed).
    counters = {name: value for name, value in counts.items() if name != "checks"}
    row = {table: bucket, "target_id": target_id, "ok": 0, "degraded": 0, "failed": 0, "sent": 0,
           "received": 0, "online_s": 0, "offline_s": 0, "unknown_s": 0, **counters, "rtt_samples": len(rtts),
           "rtt_min_us": low, "rtt_sum_us": sum(r[1] for r in rtts), "rtt_max_us": high}
    if table == "day":
        return {**row, **{f"h{k:02d}": count for k, count in enumerate(hist)}}
    p95 = rollup.percentile_ms(hist, 0.95, low / 1000, high / 1000) if closed and rtts else None  # type: ignore[operator]
    return {**row, "rtt_p95_us": None if p95 is None else round(p95 * 1000)}


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def write_history(engine: Engine, histories: Sequence[HostHistory], created: datetime | None = None) -> None:
    """Writes every host's checks and everything derived from them, in one transaction."""
    created = created or datetime(2026, 1, 1, tzinfo=UTC)
    errors = sorted({seen.error for h in histories for seen in h.seen if seen.error})
    with engine.begin() as conn:
        conn.execute(tables.targets.insert(), [{"name": h.name, "created_at": created} for h in histories])
        if errors:
            conn.execute(tables.check_errors.insert(), [{"text": text} for text in errors])
        ids = dict(conn.execute(select(tables.targets.c.name, tables.targets.c.id)).all())
        error_ids = dict(conn.execute(select(tables.check_errors.c.text, tables.check_errors.c.id)).all())
        check_rows, change_rows, host_rows = [], [], []
        buckets: dict[str, dict[tuple[int, int], _Bucket]] = {"hour": {}, "day": {}}
        for history in histories:
            target_id = ids[history.name]
            state, previous, streak = "unknown", None, 0
            last_change, last_status = None, None
            failures = successes = 0
            for seen in sorted(history.seen, key=lambda s: s.at):
                now_s = _epoch(seen.at)
                gap = rollup.counted_gap(previous, now_s, GAP_LIMIT_S)
                after = seen.state or ("offline" if seen.status == "failed" else "online")
                failures, successes = (failures + 1, 0) if seen.status == "failed" else (0, successes + 1)
                streak = failures or successes
                avg_us = None if seen.rtt_ms is None else round(seen.rtt_ms * 1000)
                rtt = None if seen.rtt_ms is None else (avg_us - 100, avg_us, avg_us + 100,  # type: ignore[operator]
                                                        rollup.rtt_bucket(seen.rtt_ms))
                check_rows.append({
                    "checked_at": seen.at, "target_id": target_id, "status": rollup.CHECK_CODES[seen.status],
                    "prior": rollup.STATE_CODES[state], "state": rollup.STATE_CODES[after], "gap_s": gap,
                    "sent": SENT, "received": _received(seen.status), "attempts": 1,
                    "rtt_min_us": rtt and rtt[0], "rtt_avg_us": avg_us, "rtt_max_us": rtt and rtt[2],
                    "rtt_bucket": None if seen.rtt_ms is None else rollup.rtt_bucket(seen.rtt_ms),
                    "error_id": error_ids.get(seen.error) if seen.error else None,
                })
                for key, size in (("hour", rollup.HOUR), ("day", rollup.DAY)):
                    table = buckets[key]
                    row = table.setdefault((rollup.bucket_start(now_s, size), target_id), _Bucket())
                    for name, value in ((seen.status, 1), ("sent", SENT),
                                        ("received", _received(seen.status))):
                        row.counts[name] += value
                    if rtt is not None:
                        row.rtts.append(rtt)
                    for part, seconds in rollup.split_interval(now_s - gap, now_s, size):
                        table.setdefault((part, target_id), _Bucket()).counts[f"{state}_s"] += seconds
                if after != state:
                    change_rows.append({"target_id": target_id, "at": seen.at, "from_state": rollup.STATE_CODES[state],
                                        "to_state": rollup.STATE_CODES[after], "streak": streak, "held_s": 0,
                                        "run_id": None, "event_key": seen.event_key})
                    last_change = seen.at
                state, previous, last_status = after, now_s, seen.status
            if history.in_inventory:
                host_rows.append({
                    "name": history.name, "address": "127.0.0.1", "account": history.account,
                    "partition_code": None, "zone_code": None, "status": state, "consecutive_failures": failures,
                    "consecutive_successes": successes, "last_transition_at": last_change, "held": False,
                    "last_check_at": history.seen[-1].at if history.seen else None, "last_check_status": last_status,
                    "last_run_id": None, "held_since": None})
        if check_rows:
            conn.execute(tables.checks.insert(), check_rows)
            # history HOST finds a host's checks through the ping-sweep runs they belong to.
            conn.execute(tables.job_runs.insert(), [
                {"job": "ping-sweep", "shard": "0/1", "holder": "seed", "started_at": at, "finished_at": at,
                 "outcome": "ok", "exit_code": 0}
                for at in sorted({row["checked_at"] for row in check_rows})])
        if change_rows:
            conn.execute(tables.transitions.insert(), change_rows)
        if host_rows:
            conn.execute(tables.hosts.insert(), host_rows)
        _write_rollups(conn, buckets)


@dataclass
class _Bucket:
    counts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    rtts: list[Rtt] = field(default_factory=list)


def _write_rollups(conn: Any, buckets: dict[str, dict[tuple[int, int], _Bucket]]) -> None:
    latest_hour: dict[int, int] = defaultdict(int)
    for hour, target_id in buckets["hour"]:
        latest_hour[target_id] = max(latest_hour[target_id], hour)
    for key, table in (("hour", tables.rollups_hourly), ("day", tables.rollups_daily)):
        rows = [rollup_row(key, datetime.fromtimestamp(start, UTC), target_id, got.counts, got.rtts,
                           closed=start < latest_hour[target_id])
                for (start, target_id), got in buckets[key].items()]
        if rows:
            conn.execute(table.insert(), month_totals(rows) if key == "day" else rows)


def month_totals(days: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stored daily rows from per-day sums (`rollup_row("day", ...)`, every day of a host's month
    given together): the day's own time and RTT extremes, and month-to-date totals of the rest."""
    rows: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    previous: tuple[int, int, int] | None = None
    for day in sorted(days, key=lambda d: (d["target_id"], d["day"])):
        month = (day["target_id"], day["day"].year, day["day"].month)
        if month != previous:
            totals = dict.fromkeys(tables.MTD_COUNTERS, 0)
        previous = month
        for name in tables.MTD_COUNTERS:
            totals[name] += day[name]
        rows.append({"day": day["day"], "target_id": day["target_id"],
                     **{name: day[name] for name in ("online_s", "offline_s", "rtt_min_us", "rtt_max_us")},
                     **{f"mtd_{name}": value for name, value in totals.items()}})
    return rows


def minute_checks(start: datetime, count: int, status: str = "ok", rtt_ms: float | None = 1.0,
                  step_s: int = 60, **extra: Any) -> list[Seen]:
    """`count` checks every `step_s` seconds from `start`, all alike."""
    return [Seen(datetime.fromtimestamp(_epoch(start) + i * step_s, UTC), status,
                 rtt_ms if status != "failed" else None, **extra) for i in range(count)]


@dataclass(frozen=True)
class SeedHost:
    name: str
    account: str | None
    status: str
    since: datetime | None
    kind: str = "host"
    client: str | None = None
    address: str = "127.0.0.1"


def add_hosts(conn: Connection, hosts: Sequence[SeedHost], created: datetime | None = None) -> dict[str, int]:
    """Host (or check) rows (current inventory and state) and their targets; returns target ids by name."""
    conn.execute(insert(tables.hosts), [
        {"name": h.name, "address": h.address, "account": h.account, "partition_code": None, "zone_code": None,
         "status": h.status, "consecutive_failures": 0, "consecutive_successes": 0, "last_transition_at": h.since,
         "held": False, "last_check_at": h.since, "last_check_status": None, "last_run_id": None,
         "kind": h.kind, "client": h.client}
        for h in hosts
    ])
    conn.execute(insert(tables.targets), [{"name": h.name, "created_at": created or FIRST_CHECK} for h in hosts])
    rows = conn.execute(tables.targets.select()).mappings()
    return {row["name"]: row["id"] for row in rows}


def _counters(online_s: int, offline_s: int) -> dict[str, int]:
    checks = max(1, (online_s + offline_s) // 60)
    failed = offline_s // 60
    return {"checks": checks, "ok": checks - failed, "failed": failed, "sent": 3 * checks,
            "received": 3 * (checks - failed), "online_s": online_s, "offline_s": offline_s}


def _rtts(counts: Mapping[str, int], rtt_avg_us: int | None) -> list[Rtt]:
    """A sample of `rtt_avg_us` for every check with replies."""
    if rtt_avg_us is None:
        return []
    return [(rtt_avg_us, rtt_avg_us, rtt_avg_us, rollup.rtt_bucket(rtt_avg_us / 1000))] * (counts["checks"]
                                                                                            - counts["failed"])


def daily_row(target_id: int, day: datetime, online_s: int, offline_s: int = 0,
              rtt_avg_us: int | None = 1_500) -> dict[str, Any]:
    counts = _counters(online_s, offline_s)
    return rollup_row("day", day, target_id, counts, _rtts(counts, rtt_avg_us))


def hourly_row(target_id: int, hour: datetime, rtt_avg_us: int | None, online_s: int = 3_600,
               offline_s: int = 0) -> dict[str, Any]:
    counts = _counters(online_s, offline_s)
    return rollup_row("hour", hour, target_id, counts, _rtts(counts, rtt_avg_us))


def add_daily(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Daily rows from `daily_row`s (per-day sums; all of a host's days of a month in one call)."""
    conn.execute(insert(tables.rollups_daily), month_totals(rows))


def add_hourly(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    conn.execute(insert(tables.rollups_hourly), list(rows))


def add_transition(conn: Connection, target_id: int, at: datetime, from_state: str, to_state: str) -> None:
    conn.execute(insert(tables.transitions).values(
        target_id=target_id, at=at, from_state=rollup.STATE_CODES[from_state], to_state=rollup.STATE_CODES[to_state],
        streak=3, held_s=0, run_id=None, event_key=None))


def add_run(conn: Connection, job: str, started_at: datetime, outcome: str = "ok", shard: str = "0/1") -> None:
    conn.execute(insert(tables.job_runs).values(
        job=job, shard=shard, holder="seed", started_at=started_at, finished_at=started_at, outcome=outcome,
        exit_code=0 if outcome == "ok" else 1))


def add_account(conn: Connection, account: str, name: str, fetched_at: datetime) -> None:
    payload = {"account": account, "name": name, "company_id": 9, "company_name": "Acme", "client_group": "Sul",
               "partitions": [], "zones": []}
    conn.execute(insert(tables.account_cache).values(account=account, found=True, payload=json.dumps(payload),
                                                     fetched_at=fetched_at))


def add_trigger(conn: Connection, account: str, cuc: str, code: str, at: datetime, status: str = "active",
                count: int = 80, threshold: int = 50, account_name: str | None = None) -> None:
    conn.execute(insert(tables.triggers).values(
        account=account, cuc=cuc, code=code, status=status, generation=1, count=count, peak=count,
        threshold=threshold, first_seen=at, last_seen=at, raised_at=at, cleared_at=None, clear_reason=None,
        account_name=account_name, company=None, client_group=None, updated_at=at))


# The status page tests' fleet, seen at NOW.
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TODAY = datetime(2026, 11, 22, tzinfo=UTC)
PAYLOAD = "<script>alert(1)</script>"


def seed_fleet(engine: Engine, last_sweep: datetime = NOW - timedelta(minutes=2),
               last_cleanup: datetime = NOW - timedelta(minutes=57)) -> dict[str, int]:
    """Three accounts: 1234 (named, two hosts, one offline since 08:00 today), 99 (unnamed), none."""
    with engine.begin() as conn:
        ids = add_hosts(conn, [
            SeedHost("web-1", "1234", "online", NOW - timedelta(days=3)),
            SeedHost(PAYLOAD, "1234", "offline", TODAY + timedelta(hours=8)),
            SeedHost("db-1", "99", "online", NOW - timedelta(days=40)),
            SeedHost("lonely", None, "unknown", None),
        ])
        # web-1: 10 days of history, 600 s offline two days ago; db-1: 90 full days, one from before.
        add_daily(conn, [daily_row(ids["web-1"], TODAY - timedelta(days=d), 86_400 - (600 if d == 2 else 0),
                                   600 if d == 2 else 0) for d in range(10)])
        add_daily(conn, [daily_row(ids["db-1"], TODAY - timedelta(days=d), 86_400) for d in range(91)])
        add_daily(conn, [daily_row(ids[PAYLOAD], TODAY, 8 * 3600, 2 * 3600)])
        add_hourly(conn, [hourly_row(ids["web-1"], TODAY + timedelta(hours=h), 1_000 * (h + 1)) for h in range(11)])
        add_transition(conn, ids["web-1"], TODAY - timedelta(days=2, hours=-5), "online", "offline")
        add_transition(conn, ids["web-1"], TODAY - timedelta(days=2, hours=-5, minutes=-10), "offline", "online")
        add_transition(conn, ids[PAYLOAD], TODAY + timedelta(hours=8), "online", "offline")
        add_run(conn, "ping-sweep", last_sweep)
        add_run(conn, "event-scan", NOW - timedelta(minutes=5))
        add_run(conn, "alert-clear", NOW - timedelta(minutes=10))
        add_run(conn, "cleanup", last_cleanup)
        add_account(conn, "1234", "Loja Centro", NOW - timedelta(days=30))
        add_trigger(conn, "1234", "c1", "E130", NOW - timedelta(minutes=30), account_name="Loja Centro")
        add_trigger(conn, "99", "c2", "E131", NOW - timedelta(hours=3), status="cleared")
    return ids


# A check's target, which the page never shows (a URL may say more than a public page should).
CHECK_URL = "https://shop.example.invalid/health"


def seed_checks(engine: Engine, last_check: datetime = NOW - timedelta(minutes=1)) -> dict[str, int]:
    """HTTP and TCP checks beside the fleet: client Zeta (zeta-shop, HTTP, offline since 09:00 today;
    zeta-db, TCP, online, 5 days of history and 11 hours of response times; both of account 1234, as
    web-1), client Acme (acme-api, online) and a check without a client (stray, unknown)."""
    with engine.begin() as conn:
        ids = add_hosts(conn, [
            SeedHost("zeta-shop", "1234", "offline", TODAY + timedelta(hours=9), "http", "Zeta", CHECK_URL),
            SeedHost("zeta-db", "1234", "online", NOW - timedelta(days=5), "tcp", "Zeta", "db.example.invalid:5432"),
            SeedHost("acme-api", None, "online", NOW - timedelta(days=20), "http", "Acme", CHECK_URL),
            SeedHost("stray", None, "unknown", None, "tcp", None, "stray.example.invalid:22"),
        ])
        add_daily(conn, [daily_row(ids["zeta-shop"], TODAY, 9 * 3600, 3600, rtt_avg_us=80_000)])
        add_daily(conn, [daily_row(ids["zeta-db"], TODAY - timedelta(days=d), 86_400) for d in range(5)])
        add_hourly(conn, [hourly_row(ids["zeta-db"], TODAY + timedelta(hours=h), 2_000 * (h + 1)) for h in range(11)])
        add_transition(conn, ids["zeta-shop"], TODAY + timedelta(hours=9), "online", "offline")
        add_run(conn, "http-check", last_check)
    return ids


def write_page(nwi: InProcess, out: Path, tcp_checks: Sequence[Mapping[str, Any]] = (),
               **status_page: Any) -> dict[str, Any]:
    """`netwatch run status-page --out OUT` at NOW with these `status_page:` settings (and `tcp_checks:`
    in the config, when given); its status.json."""
    nwi.clock = Clock(NOW)
    nwi.write_config([], status_page=status_page, **({"tcp_checks": list(tcp_checks)} if tcp_checks else {}))
    done = nwi.run("run", "status-page", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return json.loads((out / "status.json").read_text(encoding="utf-8"))
