"""Test data for the history readers: per-host check sequences written as ping-sweep would write them.

    write_history(engine, [HostHistory("lo-1", "1234", [Seen(at, "ok", 1.5), Seen(at2, "failed")])])

writes `targets`, `check_errors`, `checks`, `transitions`, `rollups_hourly`, `rollups_daily` and the
`hosts` row, and a ping-sweep `job_runs` row per distinct check time (a check's time is its run's start),
following the semantics of /work/notes/issue8-design.md: `prior` is the confirmed state
before the check, `gap_s = counted_gap(previous check, now, gap limit)` credited to `prior` and split
at bucket edges, RTT in microseconds, the histogram from `rtt_bucket`. The confirmed state after a
check is `state` when given, else what its status says (thresholds of 1); a change writes a
transition (with `event_key` when given).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from netwatch.core import rollup
from netwatch.db import tables

GAP_LIMIT_S = 900
SENT = 2


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


def _empty(bucket: int, target_id: int, key: str) -> dict[str, Any]:
    return {key: bucket, "target_id": target_id, "checks": 0, "ok": 0, "degraded": 0, "failed": 0, "sent": 0,
            "received": 0, "rtt_samples": 0, "online_s": 0, "offline_s": 0, "unknown_s": 0, "_rtts": [],
            "_hist": [0] * rollup.RTT_BUCKETS}


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    rtts, hist = row.pop("_rtts"), row.pop("_hist")
    row["rtt_min_us"] = min((low for low, _, _ in rtts), default=None)
    row["rtt_max_us"] = max((high for _, _, high in rtts), default=None)
    row["rtt_avg_us"] = round(sum(avg for _, avg, _ in rtts) / len(rtts)) if rtts else None
    p95 = rollup.percentile_ms(hist, 0.95, row["rtt_min_us"] / 1000, row["rtt_max_us"] / 1000) if rtts else None
    row["rtt_p95_us"] = None if p95 is None else round(p95 * 1000)
    row["_hist"] = hist
    return row


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
        buckets: dict[str, dict[tuple[int, int], dict[str, Any]]] = {"hour": {}, "day": {}}
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
                rtt = None if avg_us is None else (avg_us - 100, avg_us, avg_us + 100)
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
                    bucket = rollup.bucket_start(now_s, size)
                    row = table.setdefault((bucket, target_id), _empty(bucket, target_id, key))
                    row["checks"] += 1
                    row[seen.status] += 1
                    row["sent"] += SENT
                    row["received"] += _received(seen.status)
                    if rtt is not None:
                        row["rtt_samples"] += 1
                        row["_rtts"].append(rtt)
                        row["_hist"][rollup.rtt_bucket(seen.rtt_ms or 0)] += 1
                    for part, seconds in rollup.split_interval(now_s - gap, now_s, size):
                        credited = table.setdefault((part, target_id), _empty(part, target_id, key))
                        credited[f"{state}_s"] += seconds
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
            conn.execute(tables.job_runs.insert(), [
                {"job": "ping-sweep", "shard": "0/1", "holder": "seed", "started_at": at, "finished_at": at,
                 "outcome": "ok", "exit_code": 0}
                for at in sorted({row["checked_at"] for row in check_rows})])
        if change_rows:
            conn.execute(tables.transitions.insert(), change_rows)
        if host_rows:
            conn.execute(tables.hosts.insert(), host_rows)
        _write_rollups(conn, buckets)


def _write_rollups(conn: Any, buckets: dict[str, dict[tuple[int, int], dict[str, Any]]]) -> None:
    latest_hour: dict[int, int] = defaultdict(int)
    for hour, target_id in buckets["hour"]:
        latest_hour[target_id] = max(latest_hour[target_id], hour)
    hourly, daily = [], []
    for (hour, target_id), row in buckets["hour"].items():
        done = _finish(dict(row, _rtts=list(row["_rtts"]), _hist=list(row["_hist"])))
        hist = done.pop("_hist")
        # The histogram stays only on the hour in progress (the host's latest).
        done["rtt_hist"] = rollup.encode_hist(hist) if hour == latest_hour[target_id] else None
        done["hour"] = datetime.fromtimestamp(hour, UTC)
        hourly.append(done)
    for (day, _), row in buckets["day"].items():
        done = _finish(dict(row, _rtts=list(row["_rtts"]), _hist=list(row["_hist"])))
        hist = done.pop("_hist")
        done.update({f"h{k:02d}": count for k, count in enumerate(hist)})
        done["day"] = datetime.fromtimestamp(day, UTC)
        daily.append(done)
    if hourly:
        conn.execute(tables.rollups_hourly.insert(), hourly)
    if daily:
        conn.execute(tables.rollups_daily.insert(), daily)


def minute_checks(start: datetime, count: int, status: str = "ok", rtt_ms: float | None = 1.0,
                  step_s: int = 60, **extra: Any) -> list[Seen]:
    """`count` checks every `step_s` seconds from `start`, all alike."""
    return [Seen(datetime.fromtimestamp(_epoch(start) + i * step_s, UTC), status,
                 rtt_ms if status != "failed" else None, **extra) for i in range(count)]
