"""In-process runs for bench/ping_sweep.py: loads a config, runs `ping-sweep` K times, reports each.

What the whole `netwatch` process cannot tell: the database statements each run sends (an
executemany counts once), and the job's own wall time and CPU without the interpreter start, the
imports and the config. Run in a fresh interpreter per (backend, host count) so that `ru_maxrss` is
the peak of exactly this job. Prints one JSON object per run on stdout; the job's own log lines go
to stderr, as with `netwatch run ping-sweep`.

    python bench/_driver.py --config /tmp/x/netwatch.yaml --runs 2
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from _databases import last_run_counts

from netwatch import logs
from netwatch.config import load_config
from netwatch.core.times import utc_now
from netwatch.db import migrate
from netwatch.db.engine import count_statements
from netwatch.deps import build_deps
from netwatch.jobs.ping_sweep import JOB, run_ping_sweep
from netwatch.running.stopflag import StopFlag
from netwatch.shard import Shard


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Runs the job `--runs` times on the configured database and prints one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path, help="netwatch YAML config to run with")
    parser.add_argument("--runs", type=int, default=2, help="job runs on the same database (default 2)")
    args = parser.parse_args(argv)

    redactor = logs.Redactor()
    logs.setup_logging("text", "info", redactor)  # what the CLI does by default: logging is part of the job's cost
    started = time.perf_counter()
    config = load_config(args.config, {})  # {}: NETWATCH_DATABASE_URL in our env must not redirect the bench
    deps = build_deps(config, {}, StopFlag(), redactor)
    load_s = time.perf_counter() - started

    # `netwatch db init` before the first measured run (the job itself only initialises SQLite).
    with deps.engine.begin() as conn:
        if migrate.current_version(conn) is None:
            migrate.upgrade(conn, utc_now())

    for run in range(1, args.runs + 1):
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        with count_statements(deps.engine) as statements:
            code = run_ping_sweep(config, deps, Shard())
        wall_s = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        counts = last_run_counts(deps.engine, JOB)
        record = {
            "run": run,
            "exit_code": int(code),
            "load_s": load_s if run == 1 else None,
            "wall_s": wall_s,
            "cpu_s": _cpu_seconds(after) - _cpu_seconds(before),
            "peak_mb": after.ru_maxrss / 1024,  # Linux reports KiB
            "statements": statements.value,
            "counts": counts,
        }
        print(json.dumps(record), flush=True)
    deps.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
