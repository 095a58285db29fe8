"""Benchmark of the history tables: bytes on disk, and `netwatch run cleanup` of one day of raw checks.

For each backend (SQLite, MariaDB) a throwaway database (MariaDB: nw_bench_history_<pid>_mysql,
dropped at the end) gets the schema, then `generate_history`: for N hosts (default 10,000) 90 days
of rollups_hourly and rollups_daily and the transitions of those days, and one day of raw checks
(N x 1,440, one ping-sweep a minute), all by INSERT ... SELECT over generated numbers (MariaDB's
sequence engine, SQLite's recursive CTE), never row by row from Python. Values follow the design's
semantics: checks of a minute share the run's `checked_at`, a few hosts fail now and then (an
incident: failed checks, offline time, two transitions with an event key), RTTs in microseconds
with their histogram bucket, past hours with their p95 (summed RTTs, no stored histogram; an hour
without replies has none, stored as -1).

Printed: rows and bytes per table (MariaDB: data_length + index_length after ANALYZE TABLE;
SQLite: the pages of each table and its indexes in dbstat), bytes per raw check row, bytes per host
per day of rollups and transitions (target: at most 2 KB on MariaDB). Then the real `netwatch run
cleanup` (in this process, through the CLI) with `retention.raw_days: 1` and every other kind kept,
so the raw day (the day before yesterday) is past retention: the time of every statement it sends
(max, median), the batches and the total time (target: every statement under 1 s). Before it, the
readers of raw checks, which find a host's checks by its ping-sweep runs' starts (`job_runs`, one
run a minute, each with its `hosts` row): `history HOST` over the raw day and `status`'s last checks,
`report uptime --since 90d` (target: under 2 s), and the hour-closing part of an hour's first
ping-sweep run at full density: every host's p95 of an hour of the raw day from its raw checks
(`write_hour_p95`, rolled back), and the daily part of a day's first run: every host's month-to-date
totals continued into the next day (`add_daily_tallies`, rolled back), and what every other run writes:
a minute's checks of every host added to their hourly and daily rows (`update_rollups`, rolled back;
the median of a few).

Other sections (reports, status page) can reuse `generate_history` on a database of their own.
`--skip` leaves out the readers, the writes, the status page and / or cleanup (the bytes on disk
alone: `--skip readers,writes,status-page,cleanup`).

`--database URL` instead seeds that database (when it has no targets yet) and keeps it: a later
round on it skips the seeding and measures only the readers (the status page and cleanup, which
deletes the raw day, are left out), e.g. while working on a report.

    .venv/bin/python bench/history.py --hosts 10000 --backends sqlite,mysql
    .venv/bin/python bench/history.py --database sqlite:////tmp/history.db
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from _databases import last_run_counts, mysql_available, throwaway_database
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection, Engine

from netwatch.cli import run_cli
from netwatch.config import Config
from netwatch.core.history import CheckEntry, Tally
from netwatch.core.mtd import month_start
from netwatch.core.periods import days_period
from netwatch.core.rollup import DAY, HOUR, RTT_BUCKETS, RTT_EDGES_MS
from netwatch.db import migrate, rollups, tables
from netwatch.db.engine import build_engine, count_statements
from netwatch.db.types import Pending
from netwatch.deps import Deps, build_deps
from netwatch.history import timeline, uptime
from netwatch.history.incidents import Scope
from netwatch.logs import Redactor
from netwatch.running.stopflag import StopFlag

HISTORY_TABLES = ("rollups_hourly", "rollups_daily", "transitions")
MINUTES = 1_440
STATEMENT_TARGET_S = 1.0
SECTIONS = ("readers", "writes", "status-page", "cleanup")
# Times a run's rollup writes are measured: the median is printed.
RUN_WRITES = 5
BYTES_PER_HOST_DAY_TARGET = 2_048
# Raw checks per INSERT. MariaDB stores a table in primary-key order (checked_at, target_id) whatever
# the order of the inserts: 500 hosts x 1,440 minutes in host order append to the (target_id,
# checked_at) index and give the primary key 1,440 insertion points, which its buffer pool holds.
# SQLite stores rows in insertion order: an hour of runs at a time, each run's rows together, as
# ping-sweep writes them (so cleanup deletes neighbouring rows, as it would in production).
CHECK_CHUNK_HOSTS = 500
CHECK_CHUNK_MINUTES = 60


@dataclass(frozen=True)
class History:
    """What `generate_history` wrote: `first_day` .. `raw_day` (epoch seconds of UTC midnights)."""

    hosts: int
    days: int
    first_day: int
    raw_day: int
    rows: Mapping[str, int] = field(default_factory=dict)


def numbers(conn: Connection, count: int) -> str:
    """A FROM item of `count` rows numbered 0 .. count - 1 in a column `seq`."""
    if conn.dialect.name in ("mysql", "mariadb"):
        return f"seq_0_to_{count - 1}"
    return (f"(WITH RECURSIVE s(seq) AS (SELECT 0 UNION ALL SELECT seq + 1 FROM s WHERE seq < {count - 1}) "
            "SELECT seq FROM s)")


def _bucket_sql(avg_us: str) -> str:
    """netwatch.core.rollup.rtt_bucket of an average RTT in microseconds, as SQL."""
    edges = " ".join(f"WHEN {avg_us} < {edge * 1000:.3f} THEN {k}" for k, edge in enumerate(RTT_EDGES_MS))
    return f"CASE {edges} ELSE {RTT_BUCKETS - 1} END"


def _event_key(conn: Connection, host: str, day: str, change: str) -> str:
    """An outbox idempotency key: 'nw-' and 40 hex digits, as ping-sweep makes them."""
    if conn.dialect.name in ("mysql", "mariadb"):
        return f"CONCAT('nw-', SHA1(CONCAT({host}, '-', {day}, '-', {change})))"
    return (f"('nw-' || printf('%020x%020x', {host} * 2654435761 + {day} * 2 + {change}, "
            f"{day} * 40503 + {host} * 2 + {change}))")


def generate_history(engine: Engine, hosts: int, days: int, raw_day: datetime) -> History:
    """N hosts' history: `days` days of hourly and daily rollups and transitions ending with `raw_day`
    (a UTC midnight), and that day's raw checks (one a minute per host). The database has the schema.

    Host h is offline (an incident) for the hour `(h * 7 + day * 13) % 24` of every fourth day, a
    quarter of the hosts; 1 check in 50 is degraded. Statements: a few per day and per 500 hosts.
    """
    raw = int(raw_day.timestamp())
    first = raw - (days - 1) * DAY
    with engine.begin() as conn:
        name = _concat(conn, "'host-'", "seq")
        conn.execute(text(f"INSERT INTO targets (id, name, created_at) SELECT seq + 1, {name}, {first} "
                          f"FROM {numbers(conn, hosts)} AS h"))
        conn.execute(text("INSERT INTO check_errors (id, text) VALUES (1, 'no reply')"))
    for day in range(days):
        with engine.begin() as conn:
            _cache(conn)
            _hourly(conn, hosts, first + day * DAY)
            _daily(conn, hosts, first + day * DAY)
            _transitions(conn, hosts, first + day * DAY)
    if engine.dialect.name == "sqlite":
        chunks = [((0, hosts), (m, min(MINUTES, m + CHECK_CHUNK_MINUTES)))
                  for m in range(0, MINUTES, CHECK_CHUNK_MINUTES)]
    else:
        chunks = [((h, min(hosts, h + CHECK_CHUNK_HOSTS)), (0, MINUTES)) for h in range(0, hosts, CHECK_CHUNK_HOSTS)]
    for host_range, minute_range in chunks:
        with engine.begin() as conn:
            _cache(conn)
            _checks(conn, host_range, minute_range, raw)
    with engine.begin() as conn:
        _runs_and_hosts(conn, hosts, raw)
    with engine.begin() as conn:
        rows = {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("checks", *HISTORY_TABLES)}
    return History(hosts=hosts, days=days, first_day=first, raw_day=raw, rows=rows)


def _cache(conn: Connection) -> None:
    """SQLite: a page cache that holds the indexes being filled (the default holds 2 MB)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size = -1000000")


def _concat(conn: Connection, *parts: str) -> str:
    if conn.dialect.name in ("mysql", "mariadb"):
        return f"CONCAT({', '.join(parts)})"
    return " || ".join(parts)


def _incident_hour(day_s: int) -> str:
    """SQL: the hour of day host `h.seq` is offline on day `day_s`, or -1 (three days in four)."""
    day = day_s // DAY
    return f"(CASE WHEN (h.seq + {day}) % 4 = 0 THEN (h.seq * 7 + {day} * 13) % 24 ELSE -1 END)"


def _hourly(conn: Connection, hosts: int, day_s: int) -> None:
    down = f"(x.seq = {_incident_hour(day_s)})"
    avg = "(4000 + (h.seq * 37 + x.seq * 11) % 20000)"
    conn.execute(text(f"""
        INSERT INTO rollups_hourly (hour, target_id, ok, degraded, failed, sent, received, rtt_samples,
            rtt_min_us, rtt_sum_us, rtt_max_us, rtt_p95_us, online_s, offline_s, unknown_s)
        SELECT {day_s} + x.seq * {HOUR}, h.seq + 1,
            CASE WHEN {down} THEN 0 ELSE 59 END, CASE WHEN {down} THEN 0 ELSE 1 END,
            CASE WHEN {down} THEN 60 ELSE 0 END, 180, CASE WHEN {down} THEN 0 ELSE 178 END,
            CASE WHEN {down} THEN 0 ELSE 60 END,
            CASE WHEN {down} THEN NULL ELSE {avg} - 900 END, CASE WHEN {down} THEN 0 ELSE 60 * {avg} END,
            CASE WHEN {down} THEN NULL ELSE {avg} + 9000 END,
            CASE WHEN {down} THEN {Pending.ABSENT} ELSE {avg} + 4000 END,
            CASE WHEN {down} THEN 0 ELSE 3600 END, CASE WHEN {down} THEN 3600 ELSE 0 END, 0
        FROM {numbers(conn, 24)} AS x CROSS JOIN {numbers(conn, hosts)} AS h
        ORDER BY x.seq, h.seq"""))


def _daily(conn: Connection, hosts: int, day_s: int) -> None:
    """The day's rows: its own online / offline time and RTT extremes, and month-to-date totals that
    continue the host's row of the day before when it is in the same month."""
    down = f"({_incident_hour(day_s)} >= 0)"
    avg = "(4000 + (h.seq * 37) % 20000)"
    bucket = _bucket_sql(avg)
    # The checks with a reply spread over the average's bucket and its neighbours.
    own = {
        "ok": f"CASE WHEN {down} THEN 1354 ELSE 1414 END", "degraded": "26",
        "failed": f"CASE WHEN {down} THEN 60 ELSE 0 END", "sent": "4320",
        "received": f"CASE WHEN {down} THEN 4092 ELSE 4272 END",
        "rtt_samples": f"CASE WHEN {down} THEN 1300 ELSE 1350 END",
        "rtt_sum_us": f"CASE WHEN {down} THEN 1300 ELSE 1350 END * {avg}",
        "online_s": f"CASE WHEN {down} THEN 82800 ELSE 86400 END",
        "offline_s": f"CASE WHEN {down} THEN 3600 ELSE 0 END", "unknown_s": "0",
        **{f"h{k:02d}": f"CASE WHEN {bucket} = {k} THEN CASE WHEN {down} THEN 1000 ELSE 1050 END "
                        f"WHEN {bucket} - 1 = {k} OR {bucket} + 1 = {k} THEN 150 ELSE 0 END"
           for k in range(RTT_BUCKETS)},
    }
    continued = month_start(day_s) < day_s
    totals = ", ".join(f"{'COALESCE(p.mtd_' + name + ', 0) + ' if continued else ''}{value}"
                       for name, value in own.items())
    previous = (f"LEFT JOIN rollups_daily AS p ON p.day = {day_s - DAY} AND p.target_id = h.seq + 1"
                if continued else "")
    conn.execute(text(f"""
        INSERT INTO rollups_daily (day, target_id, online_s, offline_s, rtt_min_us, rtt_max_us,
            {", ".join(f"mtd_{name}" for name in own)})
        SELECT {day_s}, h.seq + 1, {own["online_s"]}, {own["offline_s"]}, {avg} - 900, {avg} + 9000, {totals}
        FROM {numbers(conn, hosts)} AS h {previous} ORDER BY h.seq"""))


def _transitions(conn: Connection, hosts: int, day_s: int) -> None:
    """Two per incident: online -> offline at its hour's start (3 failed checks), back an hour later."""
    hour = _incident_hour(day_s)
    day = str(day_s // DAY)
    conn.execute(text(f"""
        INSERT INTO transitions (target_id, at, from_state, to_state, streak, held_s, run_id, event_key)
        SELECT h.seq + 1, {day_s} + {hour} * {HOUR} + e.seq * {HOUR}, 1 + e.seq, 2 - e.seq, 3 - e.seq, 0,
            {day} * {MINUTES} + {hour} * 60 + e.seq * 60,
            {_event_key(conn, "h.seq", day, "e.seq")}
        FROM {numbers(conn, hosts)} AS h CROSS JOIN {numbers(conn, 2)} AS e
        WHERE {hour} >= 0 ORDER BY 2, 1"""))


def _checks(conn: Connection, host_range: tuple[int, int], minute_range: tuple[int, int], day_s: int) -> None:
    """Raw checks of the hosts and minutes of the day in the ranges [first, last): one per minute, at
    the run's second 5; in host order on MariaDB, in time order on SQLite (see CHECK_CHUNK_HOSTS)."""
    down = f"(m.seq / 60 = {_incident_hour(day_s)})"
    degraded = "((h.seq * 7 + m.seq) % 50 = 0)"
    avg = "(4000 + (h.seq * 37 + m.seq * 11) % 20000)"
    state = f"CASE WHEN {down} THEN 2 ELSE 1 END"
    conn.execute(text(f"""
        INSERT INTO checks (checked_at, target_id, status, prior, state, gap_s, sent, received, attempts,
            rtt_min_us, rtt_avg_us, rtt_max_us, rtt_bucket, error_id)
        SELECT {day_s} + m.seq * 60 + 5, h.seq + 1,
            CASE WHEN {down} THEN 2 WHEN {degraded} THEN 1 ELSE 0 END, {state}, {state}, 60,
            3, CASE WHEN {down} THEN 0 WHEN {degraded} THEN 2 ELSE 3 END, CASE WHEN {down} THEN 2 ELSE 1 END,
            CASE WHEN {down} THEN NULL ELSE {avg} - 300 END, CASE WHEN {down} THEN NULL ELSE {avg} END,
            CASE WHEN {down} THEN NULL ELSE {avg} + 700 END,
            CASE WHEN {down} THEN NULL ELSE {_bucket_sql(avg)} END, CASE WHEN {down} THEN 1 ELSE NULL END
        FROM {_range(conn, host_range)} AS h CROSS JOIN {_range(conn, minute_range)} AS m
        ORDER BY {"m.seq, h.seq" if conn.dialect.name == "sqlite" else "h.seq, m.seq"}"""))


def _runs_and_hosts(conn: Connection, hosts: int, day_s: int) -> None:
    """The ping-sweep run of each minute of the raw day (started a quarter second into the second its
    checks are stamped with) and the inventory, each host last checked by the day's last run."""
    starts = [datetime.fromtimestamp(day_s + m * 60 + 5.25, UTC) for m in range(MINUTES)]
    conn.execute(insert(tables.job_runs), [
        {"job": "ping-sweep", "shard": "0/1", "holder": "bench", "started_at": at,
         "finished_at": at + timedelta(seconds=2), "outcome": "ok", "exit_code": 0} for at in starts])
    conn.execute(insert(tables.hosts), [
        {"name": f"host-{n}", "address": "127.0.0.1", "account": None, "partition_code": None, "zone_code": None,
         "status": "online", "consecutive_failures": 0, "consecutive_successes": 1, "last_transition_at": None,
         "held": False, "last_check_at": starts[-1], "last_check_status": "ok", "last_run_id": None}
        for n in range(hosts)])


def measure_readers(engine: Engine, history: History) -> dict[str, Any]:
    """`history HOST` (a host in the middle, the whole raw day) and `status`'s last checks: time, statements, rows."""
    result: dict[str, Any] = {}
    since = datetime.fromtimestamp(history.raw_day, UTC)
    now = datetime.now(UTC)
    readers = {"history_host": lambda conn: timeline.timeline_rows(conn, history.hosts // 2 + 1, since),
               "status_last_checks": timeline.last_checks,
               # `report uptime --since 90d` for every host, and by account (target: under 2 s).
               "report_uptime_90d": lambda conn: uptime.uptime_rows(conn, days_period("90d", now), Scope()),
               "report_uptime_90d_by_account": lambda conn: uptime.uptime_rows(
                   conn, days_period("90d", now), Scope(by="account"))}
    for name, read in readers.items():
        with engine.connect() as conn, count_statements(engine) as counted:
            started = time.perf_counter()
            rows = len(read(conn))
            result[name] = {"seconds": round(time.perf_counter() - started, 3), "statements": counted.value,
                            "rows": rows}
        print(f"  {name}: {rows} rows in {result[name]['seconds']} s, {counted.value} statements", flush=True)
    return result


def measure_writes(engine: Engine, history: History) -> dict[str, Any]:
    """The rollup writes of ping-sweep runs over the generated history, each rolled back."""
    result: dict[str, Any] = {}
    # The hour-closing part of the first ping-sweep run of an hour at full density: every host's p95 of
    # the hour before from its 60 raw checks (600,000 rows at 10,000 hosts), rolled back afterwards.
    hour = history.raw_day + 12 * HOUR
    closing = {(hour, target_id) for target_id in range(1, history.hosts + 1)}
    result["hour_close_p95"] = _rolled_back(engine, lambda conn: rollups.write_hour_p95(conn, closing),
                                            f"hour close (p95 of {len(closing)} hosts from their raw checks)")
    # The daily part of the first run of a day: every host's first check of the day after the raw day
    # continues its month-to-date totals (read and written whole), rolled back afterwards.
    next_day = history.raw_day + DAY
    first_checks = {(next_day, target_id): Tally(ok=1, sent=3, received=3, rtt_samples=1, rtt_min_us=900,
                                                 rtt_sum_us=1_000, rtt_max_us=1_100, online_s=60,
                                                 hist=tuple(int(k == 10) for k in range(RTT_BUCKETS)))
                    for target_id in range(1, history.hosts + 1)}
    result["day_start_totals"] = _rolled_back(
        engine, lambda conn: rollups.add_daily_tallies(conn, first_checks),
        f"day start (month-to-date totals of {len(first_checks)} hosts continued)")
    # Any other run: its checks (those of 12:30 on the raw day, a minute after the previous run's) added
    # to every host's hourly and daily rows, which exist.
    at = history.raw_day + 12 * HOUR + 30 * 60 + 5
    with engine.connect() as conn:
        entries = [CheckEntry(error=None, **row) for row in conn.execute(
            text("SELECT target_id, checked_at, status, prior, state, gap_s, sent, received, attempts, rtt_min_us, "
                 "rtt_avg_us, rtt_max_us, rtt_bucket FROM checks WHERE checked_at = :at"), {"at": at}).mappings()]
    previous = {entry.target_id: at - 60 for entry in entries}
    runs = [_rolled_back(engine, lambda conn: rollups.update_rollups(conn, entries, previous),
                         f"run's rollups ({len(entries)} hosts' hourly and daily rows added to, {k + 1}/{RUN_WRITES})")
            for k in range(RUN_WRITES)]
    result["run_rollups"] = {"median_s": statistics.median(run["seconds"] for run in runs),
                             "statements": runs[0]["statements"], "hosts": len(entries)}
    print(f"  run's rollups: median {result['run_rollups']['median_s']} s over {RUN_WRITES}", flush=True)
    return result


def _rolled_back(engine: Engine, write: Callable[[Connection], None], what: str) -> dict[str, Any]:
    """Times `write` in a transaction rolled back afterwards, with the statements it sent."""
    with engine.connect() as conn, count_statements(engine) as counted:
        started = time.perf_counter()
        with conn.begin() as transaction:
            write(conn)
            transaction.rollback()
        seconds = round(time.perf_counter() - started, 3)
    print(f"  {what}: {seconds} s, {counted.value} statements", flush=True)
    return {"seconds": seconds, "statements": counted.value}


def _range(conn: Connection, bounds: tuple[int, int]) -> str:
    first, last = bounds
    return f"(SELECT seq FROM {numbers(conn, last)} AS n WHERE seq >= {first})"


def table_bytes(engine: Engine) -> dict[str, int]:
    """Bytes on disk per table, its indexes included."""
    with engine.begin() as conn:
        if conn.dialect.name in ("mysql", "mariadb"):
            for table in ("checks", *HISTORY_TABLES):
                conn.execute(text(f"ANALYZE TABLE {table}")).all()
            rows = conn.execute(text("SELECT table_name, data_length + index_length FROM information_schema.tables "
                                     "WHERE table_schema = DATABASE()"))
        else:
            rows = conn.execute(text("SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat AS d "
                                     "JOIN sqlite_master AS m ON m.name = d.name GROUP BY m.tbl_name"))
        return {str(name): int(size) for name, size in rows}


@dataclass
class StatementClock:
    """The wall time of every statement sent through an engine, with its first words."""

    times: list[tuple[float, str]] = field(default_factory=list)
    # By cursor: the lease is renewed on a thread of its own, on the same engine.
    _started: dict[int, float] = field(default_factory=dict)

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        seconds = time.perf_counter() - self._started.pop(id(cursor))
        self.times.append((seconds, " ".join(statement.split()[:3])))


def run_status_page(url: str, directory: Path) -> dict[str, Any]:
    """`netwatch run status-page` in this process over the generated history: time and sizes (target: < 5 s, < 5 MB)."""
    config = directory / "status-page.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": url}, "hosts": [], "run": {"lease_seconds": 60}}))
    out = directory / "status-page"
    started = time.perf_counter()
    code = run_cli(["run", "status-page", "--config", str(config), "--out", str(out)], StopFlag(), build_deps)
    seconds = time.perf_counter() - started
    pages = [path for path in out.resolve().rglob("*") if path.is_file()]
    html = [path.stat().st_size for path in pages if path.suffix == ".html"]
    result = {"exit_code": code, "seconds": round(seconds, 2), "files": len(pages),
              "index_html_bytes": (out / "index.html").stat().st_size if code == 0 else 0,
              "largest_html_bytes": max(html, default=0), "total_bytes": sum(p.stat().st_size for p in pages)}
    print(f"  status-page: exit {code} in {result['seconds']} s, index.html {result['index_html_bytes']} bytes, "
          f"largest page {result['largest_html_bytes']} bytes, {result['files']} files", flush=True)
    return result


def run_cleanup(url: str, directory: Path, clock: StatementClock, batch_rows: int) -> tuple[int, float]:
    """`netwatch run cleanup` in this process, keeping only one day of raw checks; exit code and seconds."""
    keep = {"hourly_days": 36_500, "daily_days": 36_500, "transitions_days": 36_500, "runs_days": 36_500,
            "outbox_days": 36_500, "register_days": 36_500, "scan_counts_days": 36_500}
    config = directory / "cleanup.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": url}, "hosts": [], "run": {"lease_seconds": 60},
                                      "retention": {"raw_days": 1, "batch_rows": batch_rows, **keep}}))

    def deps(cfg: Config, env: Mapping[str, str], stop: StopFlag, redactor: Redactor) -> Deps:
        built = build_deps(cfg, env, stop, redactor)
        clock.attach(built.engine)
        return built

    started = time.perf_counter()
    code = run_cli(["run", "cleanup", "--config", str(config)], StopFlag(), deps)
    return code, time.perf_counter() - started


@contextmanager
def _timed(what: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    print(f"  {what}: {time.perf_counter() - started:.1f} s", flush=True)


def stored_history(engine: Engine) -> History | None:
    """What `generate_history` wrote to this database earlier, or None when it has no targets."""
    with engine.begin() as conn:
        hosts = conn.execute(text("SELECT COUNT(*) FROM targets")).scalar_one()
        if not hosts:
            return None
        first = conn.execute(text("SELECT MIN(day) FROM rollups_daily")).scalar_one()
        raw = conn.execute(text("SELECT MIN(checked_at) FROM checks")).scalar_one() // DAY * DAY
        rows = {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("checks", *HISTORY_TABLES)}
    return History(hosts=hosts, days=(raw - first) // DAY + 1, first_day=first, raw_day=raw, rows=rows)


def bench_readers(url: str, hosts: int, days: int) -> dict[str, Any]:
    """The readers on a kept database, seeded first when it is empty (`--database`)."""
    engine = build_engine(url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, datetime.now(UTC))
        history = stored_history(engine)
        if history is None:
            raw_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
            print(f"{engine.dialect.name}: seeding {hosts} hosts, {days} days of rollups, raw checks of "
                  f"{raw_day.date()}", flush=True)
            with _timed("generate"):
                history = generate_history(engine, hosts, days, raw_day)
        else:
            print(f"{engine.dialect.name}: reusing {history.hosts} hosts, {history.days} days of rollups, raw checks "
                  f"of {datetime.fromtimestamp(history.raw_day, UTC).date()}", flush=True)
        return {"backend": engine.dialect.name, "hosts": history.hosts, "days": history.days,
                "readers": measure_readers(engine, history)}
    finally:
        engine.dispose()


def bench(backend: str, hosts: int, days: int, batch_rows: int, directory: Path,
          skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Generates the history on a throwaway `backend` database, measures it, cleans the raw day up
    (the sections in `skip` left out)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    raw_day = today - timedelta(days=2)
    with throwaway_database(backend, directory, "bench_history", backend) as url:
        engine = build_engine(url)
        try:
            with engine.begin() as conn:
                migrate.upgrade(conn, datetime.now(UTC))
            print(f"{backend}: {hosts} hosts, {days} days of rollups, raw checks of {raw_day.date()}", flush=True)
            with _timed("generate"):
                history = generate_history(engine, hosts, days, raw_day)
            sizes = table_bytes(engine)
            readers = measure_readers(engine, history) if "readers" not in skip else {}
            writes = measure_writes(engine, history) if "writes" not in skip else {}
        finally:
            engine.dispose()
        status_page = run_status_page(url, directory) if "status-page" not in skip else {}
        clock = StatementClock()
        code, total_s, counts = 0, 0.0, {}
        if "cleanup" not in skip:
            with _timed("cleanup"):
                code, total_s = run_cleanup(url, directory, clock, batch_rows)
            engine = build_engine(url)
            try:
                counts = last_run_counts(engine, "cleanup")
            finally:
                engine.dispose()
    return {**_report(backend, history, sizes, clock, code, total_s, counts, "cleanup" in skip), "readers": readers,
            "writes": writes, "status_page": status_page}


def _report(backend: str, history: History, sizes: Mapping[str, int], clock: StatementClock, code: int,
            total_s: float, counts: Mapping[str, int], skipped_cleanup: bool) -> dict[str, Any]:
    host_days = history.hosts * history.days
    per_table = {table: {"rows": history.rows[table], "bytes": sizes.get(table, 0),
                         "bytes_per_row": round(sizes.get(table, 0) / max(1, history.rows[table]), 1),
                         "bytes_per_host_day": round(sizes.get(table, 0) / host_days, 1)}
                 for table in ("checks", *HISTORY_TABLES)}
    per_host_day = sum(sizes.get(table, 0) for table in HISTORY_TABLES) / host_days
    durations = [seconds for seconds, _ in clock.times]
    slowest = max(clock.times, default=(0.0, ""))
    result = {
        "backend": backend, "hosts": history.hosts, "days": history.days, "tables": per_table,
        "raw_bytes_per_check_row": per_table["checks"]["bytes_per_row"],
        "history_bytes_per_host_day": round(per_host_day, 1),
        "cleanup": None if skipped_cleanup else {
            "exit_code": code, "total_s": round(total_s, 2), "statements": len(durations),
            "max_statement_s": round(slowest[0], 4), "slowest": slowest[1],
            "median_statement_s": round(statistics.median(durations), 5) if durations else 0.0,
            "in_statements_s": round(sum(durations), 2),
            "deleted_checks": counts.get("checks"), "batches": counts.get("batches")},
    }
    verdict = "PASS" if backend == "sqlite" or per_host_day <= BYTES_PER_HOST_DAY_TARGET else "MISS"
    print(f"  raw check row: {result['raw_bytes_per_check_row']} bytes; rollups + transitions: "
          f"{per_host_day:.0f} bytes per host per day ({verdict if backend != 'sqlite' else 'no target'} "
          f"against {BYTES_PER_HOST_DAY_TARGET} on MariaDB)")
    for table, numbers_of in per_table.items():
        print(f"    {table}: {numbers_of}")
    if skipped_cleanup:
        return result
    under = "PASS" if slowest[0] < STATEMENT_TARGET_S else "MISS"
    print(f"  cleanup: exit {code}, {counts.get('checks')} checks in {counts.get('batches')} batches, "
          f"{len(durations)} statements, max {slowest[0]:.3f} s ({slowest[1]}; {under} against "
          f"{STATEMENT_TARGET_S} s), median {statistics.median(durations) if durations else 0.0:.5f} s, "
          f"{sum(durations):.2f} s in statements, total {total_s:.1f} s",
          flush=True)
    return result


def run_backends(backends: list[str], hosts: int, days: int, batch_rows: int,
                 skip: frozenset[str]) -> list[dict[str, Any]]:
    """The whole benchmark (the sections in `skip` left out) on a throwaway database of each backend."""
    results = []
    with tempfile.TemporaryDirectory(prefix="nw-bench-history-") as tmp:
        for backend in backends:
            if backend == "mysql" and (reason := mysql_available()) is not None:
                print(f"mysql: skipped ({reason})")
                continue
            results.append(bench(backend, hosts, days, batch_rows, Path(tmp), skip))
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--batch-rows", type=int, default=5_000)
    parser.add_argument("--json", type=Path, help="Also write the results to this file.")
    parser.add_argument("--database", metavar="URL",
                        help="Seed this database once and keep it; measure only the readers (see above).")
    parser.add_argument("--skip", default="", help=f"sections to leave out, comma-separated: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    skip = frozenset(filter(None, args.skip.split(",")))
    if unknown := sorted(skip - set(SECTIONS)):
        parser.error(f"--skip: unknown section {unknown[0]!r} (choose from {', '.join(SECTIONS)})")
    if args.database:
        results = [bench_readers(args.database, args.hosts, args.days)]
    else:
        results = run_backends(args.backends.split(","), args.hosts, args.days, args.batch_rows, skip)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
