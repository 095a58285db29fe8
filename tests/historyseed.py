"""Seeding the history tables (and what the status page reads beside them) directly, as ping-sweep's
writer leaves them (/work/notes/issue8-design.md): hosts with their targets, daily and hourly rollups,
transitions, job runs, the account cache and triggers. Times are aware UTC datetimes.

    ids = add_hosts(conn, [SeedHost("h1", "1234", "online", since)])
    add_daily(conn, [daily_row(ids["h1"], day, online_s=86_000, offline_s=400)])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inproc import Clock, InProcess
from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from netwatch.core import rollup
from netwatch.db import tables

# When seeded targets were first checked unless told.
FIRST_CHECK = datetime(2026, 1, 1, tzinfo=UTC)
HIST = {f"h{index:02d}": 0 for index in range(rollup.RTT_BUCKETS)}


@dataclass(frozen=True)
class SeedHost:
    name: str
    account: str | None
    status: str
    since: datetime | None


def add_hosts(conn: Connection, hosts: Sequence[SeedHost], created: datetime | None = None) -> dict[str, int]:
    """Host rows (current inventory and state) and their targets; returns target ids by name."""
    conn.execute(insert(tables.hosts), [
        {"name": h.name, "address": "127.0.0.1", "account": h.account, "partition_code": None, "zone_code": None,
         "status": h.status, "consecutive_failures": 0, "consecutive_successes": 0, "last_transition_at": h.since,
         "held": False, "last_check_at": h.since, "last_check_status": None, "last_run_id": None}
        for h in hosts
    ])
    conn.execute(insert(tables.targets), [{"name": h.name, "created_at": created or FIRST_CHECK} for h in hosts])
    rows = conn.execute(tables.targets.select()).mappings()
    return {row["name"]: row["id"] for row in rows}


def _counters(online_s: int, offline_s: int, rtt_avg_us: int | None) -> dict[str, Any]:
    checks = max(1, (online_s + offline_s) // 60)
    failed = offline_s // 60
    replies = checks - failed if rtt_avg_us is not None else 0
    return {
        "checks": checks, "ok": checks - failed, "degraded": 0, "failed": failed, "sent": 3 * checks,
        "received": 3 * replies, "rtt_samples": replies, "rtt_min_us": rtt_avg_us, "rtt_avg_us": rtt_avg_us,
        "rtt_max_us": rtt_avg_us, "rtt_p95_us": rtt_avg_us, "online_s": online_s, "offline_s": offline_s,
        "unknown_s": 0,
    }


def daily_row(target_id: int, day: datetime, online_s: int, offline_s: int = 0,
              rtt_avg_us: int | None = 1_500) -> dict[str, Any]:
    return {"day": day, "target_id": target_id, **_counters(online_s, offline_s, rtt_avg_us), **HIST}


def hourly_row(target_id: int, hour: datetime, rtt_avg_us: int | None, online_s: int = 3_600,
               offline_s: int = 0) -> dict[str, Any]:
    return {"hour": hour, "target_id": target_id, **_counters(online_s, offline_s, rtt_avg_us), "rtt_hist": None}


def add_daily(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    conn.execute(insert(tables.rollups_daily), list(rows))


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


def write_page(nwi: InProcess, out: Path, **status_page: Any) -> dict[str, Any]:
    """`netwatch run status-page --out OUT` at NOW with these `status_page:` settings; its status.json."""
    nwi.clock = Clock(NOW)
    nwi.write_config([], status_page=status_page)
    done = nwi.run("run", "status-page", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return json.loads((out / "status.json").read_text(encoding="utf-8"))
