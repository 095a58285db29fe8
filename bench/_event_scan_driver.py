"""One benchmark process for bench/event_scan.py: loads a config, runs `event-scan` K times, reports.

Run in a fresh interpreter per (backend, event count) so that `ru_maxrss` is the peak of exactly
this job. The clock is fixed (`--now`, then one minute later per further run) so the window matches
the server's generated events. Prints one JSON object per run on stdout; the job's log goes to
stderr. With `--profile FILE` the first run runs under cProfile and the stats are dumped to FILE
(its CPU and wall time then include the profiler's overhead).

    python bench/_event_scan_driver.py --config /tmp/x/es.yaml --now 2026-11-22T10:00:00Z --server-pid 123
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import resource
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import psutil
from _databases import last_run_counts

from netwatch import logs
from netwatch.clients.segware import parse_timestamp
from netwatch.config import load_config
from netwatch.db import migrate
from netwatch.db.engine import count_statements
from netwatch.deps import build_deps
from netwatch.jobs.event_scan import JOB, run_event_scan
from netwatch.running.stopflag import StopFlag

TOKEN_ENV = {"NETWATCH_SEGWARE_TOKEN": "bench-segware-token"}  # the token _event_server.py expects


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _server_cpu_seconds(server: psutil.Process | None) -> float | None:
    if server is None:
        return None
    times = server.cpu_times()
    return times.user + times.system


def main(argv: list[str] | None = None) -> int:
    """Runs the job `--runs` times on the configured database and prints one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path, help="netwatch YAML config to run with")
    parser.add_argument("--now", required=True, help="the clock of run 1, ISO 8601 with offset")
    parser.add_argument("--runs", type=int, default=2, help="job runs on the same database (default 2)")
    parser.add_argument("--server-pid", type=int, default=None, help="the event server, to report its CPU")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the first run into this file")
    args = parser.parse_args(argv)
    first_now = parse_timestamp(args.now)

    redactor = logs.Redactor()
    logs.setup_logging("text", "info", redactor)  # what the CLI does by default: logging is part of the job's cost
    config = load_config(args.config, {})  # {}: NETWATCH_DATABASE_URL in our env must not redirect the bench
    base = build_deps(config, TOKEN_ENV, StopFlag(), redactor)
    server = psutil.Process(args.server_pid) if args.server_pid else None

    with base.engine.begin() as conn:  # `netwatch db init` before the first measured run
        if migrate.current_version(conn) is None:
            migrate.upgrade(conn, first_now)

    for run in range(1, args.runs + 1):
        now: datetime = first_now + timedelta(minutes=run - 1)
        # The database server's clock follows the fixed one, or the clock check would refuse the run.
        deps = dataclasses.replace(base, clock=lambda now=now: now, server_clock=lambda _conn, now=now: now)
        profiler = cProfile.Profile() if args.profile is not None and run == 1 else None
        server_before = _server_cpu_seconds(server)
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        with count_statements(deps.engine) as statements:
            if profiler is not None:
                code = profiler.runcall(run_event_scan, config, deps)
            else:
                code = run_event_scan(config, deps)
        wall_s = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        server_after = _server_cpu_seconds(server)
        if profiler is not None:
            profiler.dump_stats(str(args.profile))
        counts = last_run_counts(deps.engine, JOB)
        record = {
            "run": run,
            "exit_code": int(code),
            "wall_s": wall_s,
            "cpu_s": _cpu_seconds(after) - _cpu_seconds(before),
            "server_cpu_s": None if server_before is None or server_after is None else server_after - server_before,
            "peak_mb": after.ru_maxrss / 1024,  # Linux reports KiB
            "statements": statements.value,
            "counts": counts,
        }
        print(json.dumps(record), flush=True)
    base.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
