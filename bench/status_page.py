"""Benchmark of `netwatch run status-page` at N hosts (default 10,000) on SQLite (and MariaDB if asked).

A generator seeds what the page reads, as ping-sweep's writer leaves it: hosts in accounts of 20
(every 50th host offline), their targets, 90 days of daily rollups (a few days with downtime), 24 h
of hourly rollups with an RTT each, a transition per offline host, a recent ping-sweep run. Then the
job runs `--runs` times (default 3) into the same DIR in this interpreter (in-process, no ICMP), five
minutes apart on the job's clock as scheduled: the first run writes every file, the next ones find
the previous generation (its unchanged files, the badges, are linked) and, from the third on, remove
the one before it, as every run of a scheduled page does.
Per run: its wall time with PASS/MISS against the issue's target (under 5 s), the process's CPU time,
the job's own split (read, model, render, write: the "status page written" line) and the files
linked; then the page's sizes: index.html, the largest page (PASS/MISS under 5 MB), the largest
file, status.json, the total and the file count; and the machine's load average (other work on the
machine slows the wall time). Nothing is asserted.

    .venv/bin/python bench/status_page.py --hosts 10000 --backends sqlite,mysql
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from _databases import mysql_available, throwaway_database
from sqlalchemy import insert

from netwatch.cli import run_cli
from netwatch.config import Config
from netwatch.db import migrate, tables
from netwatch.db.engine import build_engine
from netwatch.deps import Deps, build_deps
from netwatch.logs import Redactor
from netwatch.running.stopflag import StopFlag

# The job reads this machine's clock: the history ends now.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
TARGET_S = 5.0
TARGET_PAGE_MB = 5.0
PER_ACCOUNT = 20
# The schedule's interval (jobs/, k8s/): each run after the first is this much later than the one before.
INTERVAL = timedelta(minutes=5)
CHUNK = 5_000
# What the page reads of a daily row: the day's own time (its month-to-date totals stay 0).
DAY_COLUMNS = ("online_s", "offline_s", "rtt_min_us", "rtt_max_us")


def _counters(online_s: int, offline_s: int, rtt_us: int) -> dict[str, int]:
    checks = (online_s + offline_s) // 60
    failed = offline_s // 60
    return {"ok": checks - failed, "degraded": 0, "failed": failed, "sent": 3 * checks,
            "received": 3 * (checks - failed), "rtt_samples": checks - failed, "rtt_min_us": rtt_us,
            "rtt_sum_us": rtt_us * (checks - failed), "rtt_max_us": rtt_us, "online_s": online_s,
            "offline_s": offline_s, "unknown_s": 0}


def _insert(conn, table, rows) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(table), rows[start : start + CHUNK])


def seed(url: str, count: int) -> None:
    """The fleet's state and history (see the module docstring)."""
    engine = build_engine(url)
    today = NOW.replace(hour=0, minute=0)
    hour = NOW.replace(minute=0)
    with engine.begin() as conn:
        migrate.upgrade(conn, NOW)
        names = [f"host-{n:05d}.example.invalid" for n in range(count)]
        offline = {n for n in range(count) if n % 50 == 0}
        _insert(conn, tables.hosts, [
            {"name": name, "address": "127.0.0.1", "account": f"{1000 + n // PER_ACCOUNT}", "partition_code": None,
             "zone_code": None, "status": "offline" if n in offline else "online", "consecutive_failures": 0,
             "consecutive_successes": 0, "last_transition_at": NOW - timedelta(minutes=n % 600), "held": False,
             "last_check_at": NOW, "last_check_status": "ok", "last_run_id": 1}
            for n, name in enumerate(names)])
        _insert(conn, tables.targets, [{"id": n + 1, "name": name, "created_at": NOW - timedelta(days=100)}
                                       for n, name in enumerate(names)])
        _insert(conn, tables.account_cache, [
            {"account": f"{1000 + a}", "found": True, "fetched_at": NOW,
             "payload": json.dumps({"account": f"{1000 + a}", "name": f"Cliente {a}", "company_name": "Acme"})}
            for a in range(-(-count // PER_ACCOUNT))])
        for day in range(90):
            _insert(conn, tables.rollups_daily, [
                {"day": today - timedelta(days=day), "target_id": n + 1,
                 **{name: value for name, value in _counters(86_400 - (600 if (n + day) % 17 == 0 else 0),
                                                             600 if (n + day) % 17 == 0 else 0,
                                                             1_000 + n % 5_000).items() if name in DAY_COLUMNS}}
                for n in range(count)])
        for h in range(24):
            _insert(conn, tables.rollups_hourly, [
                {"hour": hour - timedelta(hours=h), "target_id": n + 1, "rtt_p95_us": 1_000 + (n + h * 37) % 5_000,
                 **_counters(3_600, 0, 1_000 + (n + h * 37) % 5_000)} for n in range(count)])
        _insert(conn, tables.transitions, [
            {"target_id": n + 1, "at": NOW - timedelta(minutes=n % 600), "from_state": 1, "to_state": 2, "streak": 3,
             "held_s": 0, "run_id": 1, "event_key": None} for n in sorted(offline)])
        conn.execute(insert(tables.job_runs).values(job="ping-sweep", shard="0/1", holder="bench",
                                                    started_at=NOW - timedelta(minutes=1), outcome="ok"))
    engine.dispose()


class _Fields(logging.Handler):
    """Keeps the fields of the job's log lines: the split of "status page written", the summary's counts."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, object] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.fields.update(getattr(record, "fields", None) or {})


def _clock_at(moment: datetime):  # type: ignore[no-untyped-def]
    def build(config: Config, env: dict[str, str], stop: StopFlag, redactor: Redactor) -> Deps:
        return replace(build_deps(config, env, stop, redactor), clock=lambda: moment,
                       server_clock=lambda _conn: moment)
    return build


def run_page(config: Path, out: Path, moment: datetime) -> dict[str, object]:
    """One run of the job at `moment`: wall and CPU seconds, and the fields of its log lines."""
    fields = _Fields()
    # The CLI sets the handlers of the "netwatch" logger itself: these are the loggers of the two lines.
    loggers = [logging.getLogger(name) for name in ("netwatch.jobs.status_page", "netwatch.running.runner")]
    for logger in loggers:
        logger.addHandler(fields)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        code = run_cli(["run", "status-page", "--config", str(config), "--out", str(out)], StopFlag(),
                       build_deps=_clock_at(moment))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        for logger in loggers:
            logger.removeHandler(fields)
    if code != 0:
        raise SystemExit(f"status-page exited {code}")
    return {**fields.fields, "wall_s": wall, "cpu_s": cpu}


def sizes_of(out: Path) -> dict[str, object]:
    """The sizes of the page DIR names."""
    root = out.resolve()
    sizes = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}
    largest = max(sizes, key=sizes.__getitem__)
    return {"index_mb": sizes["index.html"] / 1e6, "largest": largest, "largest_mb": sizes[largest] / 1e6,
            "largest_html_mb": max(v for k, v in sizes.items() if k.endswith(".html")) / 1e6,
            "status_json_mb": sizes["status.json"] / 1e6, "total_mb": sum(sizes.values()) / 1e6,
            "files": len(sizes)}


def report(backend: str, url: str, directory: Path, runs: int) -> None:
    """Runs the job `runs` times into one DIR, printing each run, then the page's sizes."""
    config = directory / "netwatch.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": url}, "hosts": [], "status_page": {
        "stale_after_minutes": {"event-scan": None, "alert-clear": None}}}), encoding="utf-8")
    out = directory / "www"
    for number in range(1, runs + 1):
        result = run_page(config, out, NOW + (number - 1) * INTERVAL)
        verdict = "PASS" if result["wall_s"] < TARGET_S else "MISS"  # type: ignore[operator]
        print(f"{backend}: run {number}: status-page {result['wall_s']:.2f} s [{verdict} < {TARGET_S} s] "
              f"(this process's CPU {result['cpu_s']:.2f} s, load average {os.getloadavg()[0]:.1f}); "
              f"read {result['read_s']} s, model {result['model_s']} s, render {result['render_s']} s, "
              f"write {result['write_s']} s; {result['reused']} of {result['files']} files linked "
              "from the previous generation")
    sizes = sizes_of(out)
    page = "PASS" if sizes["largest_html_mb"] < TARGET_PAGE_MB else "MISS"  # type: ignore[operator]
    print(f"{backend}: index.html {sizes['index_mb']:.2f} MB, largest page {sizes['largest_html_mb']:.2f} MB "
          f"[{page} < {TARGET_PAGE_MB} MB], largest file {sizes['largest']} {sizes['largest_mb']:.2f} MB, "
          f"status.json {sizes['status_json_mb']:.2f} MB, total {sizes['total_mb']:.1f} MB in {sizes['files']} files")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        if backend == "mysql" and (why := mysql_available()):
            print(f"mysql: skipped ({why})")
            continue
        with tempfile.TemporaryDirectory(prefix="nw-bench-status-") as tmp, \
                throwaway_database(backend, Path(tmp), "status", str(os.getpid())) as url:
            started = time.perf_counter()
            seed(url, args.hosts)
            print(f"{backend}: seeded {args.hosts} hosts x 90 days + 24 h in {time.perf_counter() - started:.1f} s")
            report(backend, url, Path(tmp), args.runs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
