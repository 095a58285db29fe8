"""Benchmark of the whole `event-scan` job over N events in the window, on SQLite and MariaDB.

The Segware API is tests/fakeapi.py's FakeApis on 127.0.0.1, run in its own process
(bench/_event_server.py) so its CPU is not counted as the job's: N events over the last 100 minutes
across 5,000 groups (1,000 accounts x 5 CUCs), 50 of them over their code's threshold, page size 500.
Every (server limit, backend, N) runs the job in a fresh process (bench/_event_scan_driver.py),
`--runs` times on the same database with a fixed clock: run 1 raises the 50 alerts, later runs find
them active and only update them. Per run it reports wall time, CPU of the job process (user + sys),
CPU the server spent meanwhile, events/s (events counted / wall), peak RSS and the database
statements sent (an executemany counts once).

`--max-results` lists the server's per-query limits to try: 10,000 (the API default: 100,000 events
make the client split the window on 422 too_many_results, the realistic case) and one above N (one
query, no splitting). Numbers are printed with PASS/MISS against the targets of the issue; nothing
is asserted. Sends only to 127.0.0.1.

    .venv/bin/python bench/event_scan.py --sizes 10000,50000,100000 --backends sqlite,mysql --profile
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pymysql
import yaml
from _databases import MYSQL_HOST, MYSQL_PORT, mysql_available, throwaway_database
from _process import stop_server

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "_event_scan_driver.py"
SERVER = HERE / "_event_server.py"
BACKENDS = ("sqlite", "mysql")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NOW_TEXT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
WINDOW_MINUTES, PAGE_SIZE = 120, 500
SERVER_START_S = 120.0  # generating and sorting 100,000 events takes a few seconds

TARGET_CPU_N, TARGET_CPU_S = 100_000, 3.0
MEMORY_SIZES = (10_000, 100_000)
MEMORY_FLAT_MB = 10.0  # "flat": the larger size's peak at most this much above the smaller's
STATEMENT_SIZES = (10_000, 100_000)


@dataclass(frozen=True)
class JobRun:
    max_results: int
    backend: str
    n: int
    run: int
    exit_code: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float | None
    peak_mb: float
    statements: int
    counts: dict[str, int]

    @property
    def events(self) -> int:
        return self.counts.get("events", 0)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    codes: dict[str, int]
    hot_groups: int


@dataclass
class Results:
    jobs: list[JobRun] = field(default_factory=list)
    expected_raised: int | None = None
    notes: list[str] = field(default_factory=list)
    profile: str | None = None


def _first_line(stream: IO[str], timeout_s: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    if not ready:
        raise TimeoutError(f"event server printed nothing within {timeout_s:.0f} s")
    return stream.readline()


@contextmanager
def event_server(n: int, max_results: int, log_dir: Path) -> Iterator[Server]:
    """The loopback server process with N events; stopped (stdin closed, else killed) on exit."""
    log_path = log_dir / f"server-{n}-{max_results}.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--events", str(n), "--max-results", str(max_results), "--now", NOW_TEXT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = _first_line(proc.stdout, SERVER_START_S)
        if not line:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"event server exited {proc.wait(timeout=5)}: {' '.join(tail)}")
        info = json.loads(line)
        yield Server(url=info["url"], pid=info["pid"], codes=info["codes"], hot_groups=info["hot_groups"])
    finally:
        stop_server(proc)


def write_config(directory: Path, name: str, database_url: str, server: Server) -> Path:
    """A config reading events from the bench server; no hosts, no Sigma, no notification channels."""
    path = directory / f"{name}.yaml"
    data = {
        "database": {"url": database_url},
        "segware": {"base_url": server.url, "timeout_seconds": 60},
        "event_scan": {"codes": server.codes, "window_minutes": WINDOW_MINUTES, "page_size": PAGE_SIZE},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_driver(config: Path, server: Server, runs: int, timeout_s: float, log_path: Path,
               profile: Path | None = None) -> list[dict[str, Any]]:
    """Runs the driver in a fresh process; returns its JSON records (raises RuntimeError when it fails)."""
    command = [sys.executable, str(DRIVER), "--config", str(config), "--now", NOW_TEXT, "--runs", str(runs),
               "--server-pid", str(server.pid)]
    if profile is not None:
        command += ["--profile", str(profile)]
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = [line.strip() for line in lines if line.strip(" ^~")][-3:]  # no traceback carets
        raise RuntimeError(f"driver exited {proc.returncode}: " + " | ".join(tail))
    return [json.loads(line) for line in proc.stdout.splitlines()]


def measure(args: argparse.Namespace, results: Results) -> None:
    backends = list(args.backends)
    if "mysql" in backends:
        problem = mysql_available()
        if problem is not None:
            results.notes.append(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} not reachable ({problem}): mysql rows skipped")
            backends.remove("mysql")
    with tempfile.TemporaryDirectory(prefix="nw-evbench-") as tmp:
        directory = Path(tmp)
        for max_results in args.max_results:
            for n in args.sizes:
                progress(f"server: {n:,} events, max_results {max_results:,}")
                try:
                    with event_server(n, max_results, directory) as server:
                        results.expected_raised = server.hot_groups
                        for backend in backends:
                            measure_one(args, results, directory, server, backend, n, max_results)
                except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
                    results.notes.append(f"server {n:,} events, max_results {max_results:,}: FAILED: {exc}")
        if args.profile and backends:
            profile_one(args, results, directory, backends[0])


def measure_one(args: argparse.Namespace, results: Results, directory: Path, server: Server, backend: str,
                n: int, max_results: int) -> None:
    progress(f"{backend}, {n:,} events, max_results {max_results:,}, {args.runs} runs")
    tag = f"{n}_{max_results}"
    try:
        with throwaway_database(backend, directory, "evbench", tag) as url:
            config = write_config(directory, f"{backend}-{tag}", url, server)
            records = run_driver(config, server, args.runs, args.timeout, directory / f"job-{backend}-{tag}.log")
    except (RuntimeError, subprocess.TimeoutExpired, pymysql.MySQLError) as exc:
        results.notes.append(f"{backend} {n:,} events, max_results {max_results:,}: FAILED: {exc}")
        return
    for record in records:
        results.jobs.append(JobRun(
            max_results=max_results, backend=backend, n=n, run=record["run"], exit_code=record["exit_code"],
            wall_s=record["wall_s"], cpu_s=record["cpu_s"], server_cpu_s=record["server_cpu_s"],
            peak_mb=record["peak_mb"], statements=record["statements"], counts=record["counts"],
        ))


def profile_one(args: argparse.Namespace, results: Results, directory: Path, backend: str) -> None:
    """cProfile of run 1 at the largest size and the first server limit, top 15 by cumulative time."""
    n, max_results = max(args.sizes), args.max_results[0]
    progress(f"profile: {backend}, {n:,} events, max_results {max_results:,}")
    stats_path = directory / "event-scan.prof"
    tag = f"{n}_{max_results}_profile"
    try:
        with event_server(n, max_results, directory) as server, \
                throwaway_database(backend, directory, "evbench", tag) as url:
            config = write_config(directory, f"{backend}-{tag}", url, server)
            record = run_driver(config, server, 1, args.timeout, directory / f"job-{backend}-{tag}.log",
                                profile=stats_path)[0]
    except (RuntimeError, TimeoutError, OSError, ValueError, subprocess.TimeoutExpired, pymysql.MySQLError) as exc:
        results.notes.append(f"profile run: FAILED: {exc}")
        return
    out = io.StringIO()
    stats = pstats.Stats(str(stats_path), stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(15)
    header = (f"cProfile: {backend}, {n:,} events, max_results {max_results:,}, run 1 under the profiler "
              f"(wall {record['wall_s']:.2f} s, CPU {record['cpu_s']:.2f} s, profiler overhead included)")
    results.profile = header + "\n" + out.getvalue().strip()


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def report(args: argparse.Namespace, results: Results) -> None:
    print(f"netwatch event-scan benchmark: N events over the last 100 min, 5,000 groups, page size {PAGE_SIZE}, "
          f"window {WINDOW_MINUTES} min, loopback FakeApis in its own process")
    print("wall = around run_event_scan; CPU = job process (user+sys); server CPU = the server process meanwhile; "
          "ev/s = events counted / wall; peak = ru_maxrss of the job process; max_results = server limit per query")
    print()
    header = ["max_results", "backend", "N", "run", "wall s", "CPU s", "server CPU s", "ev/s", "peak MB",
              "statements", "events", "groups", "raised", "updated", "recorded", "exit"]
    rows = []
    for job in results.jobs:
        rows.append([
            f"{job.max_results:,}", job.backend, f"{job.n:,}", str(job.run), f"{job.wall_s:.2f}", f"{job.cpu_s:.2f}",
            "-" if job.server_cpu_s is None else f"{job.server_cpu_s:.2f}",
            f"{job.events / job.wall_s:,.0f}" if job.wall_s > 0 else "-", f"{job.peak_mb:.0f}",
            str(job.statements), f"{job.events:,}", str(job.counts.get("groups", 0)),
            str(job.counts.get("raised", 0)), str(job.counts.get("updated", 0)),
            str(job.counts.get("recorded", 0)), str(job.exit_code),
        ])
    if rows:
        print("\n".join(table(header, rows)))
        print()
    for line in summary(args, results):
        print(line)
    for note in results.notes:
        print(f"NOTE {note}")
    if results.profile:
        print()
        print(results.profile)


def summary(args: argparse.Namespace, results: Results) -> list[str]:
    """PASS/MISS per target, server limit and backend, over every run of the sizes involved."""
    lines = ["targets:"]

    def verdict(good: bool) -> str:
        return "PASS" if good else "MISS"

    combos = sorted({(j.max_results, j.backend) for j in results.jobs}, key=lambda c: (c[0], BACKENDS.index(c[1])))
    for max_results, backend in combos:
        label = f"{backend}, max_results {max_results:,}"

        def runs(n: int, max_results: int = max_results, backend: str = backend) -> list[JobRun]:
            return [j for j in results.jobs if (j.max_results, j.backend, j.n) == (max_results, backend, n)]

        big = runs(TARGET_CPU_N)
        if big:
            worst = max(j.cpu_s for j in big)
            per_run = ", ".join(f"run {j.run} {j.cpu_s:.2f} s" for j in big)
            lines.append(f"  {verdict(worst < TARGET_CPU_S)} {label}: job CPU for {TARGET_CPU_N:,} events under "
                         f"{TARGET_CPU_S:.0f} s: {per_run}")
        else:
            lines.append(f"  n/a  {label}: job CPU at {TARGET_CPU_N:,} events (size not run)")
        small, large = (runs(size) for size in MEMORY_SIZES)
        if small and large:
            low, high = max(j.peak_mb for j in small), max(j.peak_mb for j in large)
            lines.append(f"  {verdict(high - low <= MEMORY_FLAT_MB)} {label}: peak memory flat from "
                         f"{MEMORY_SIZES[0]:,} to {MEMORY_SIZES[1]:,} events (within {MEMORY_FLAT_MB:.0f} MB): "
                         f"{low:.0f} MB -> {high:.0f} MB")
        else:
            lines.append(f"  n/a  {label}: memory at {MEMORY_SIZES[0]:,} vs {MEMORY_SIZES[1]:,} (size not run)")
        small, large = (runs(size) for size in STATEMENT_SIZES)
        if small and large:
            pairs = [(a.run, a.statements, b.statements) for a, b in zip(small, large, strict=False)]
            same = all(x == y for _, x, y in pairs)
            detail = ", ".join(f"run {run} {x} vs {y}" for run, x, y in pairs)
            lines.append(f"  {verdict(same)} {label}: statements per run equal at {STATEMENT_SIZES[0]:,} and "
                         f"{STATEMENT_SIZES[1]:,} events: {detail}")
        else:
            lines.append(f"  n/a  {label}: statements at {STATEMENT_SIZES[0]:,} vs {STATEMENT_SIZES[1]:,} "
                         "(size not run)")
        for job in (j for j in results.jobs if (j.max_results, j.backend) == (max_results, backend)):
            expected = results.expected_raised if job.run == 1 else 0
            if job.events != job.n or job.counts.get("raised") != expected or job.exit_code != 0:
                lines.append(f"  WARN {label}: {job.n:,} events run {job.run}: counted {job.events:,}, raised "
                             f"{job.counts.get('raised')} (expected {expected}), exit {job.exit_code}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,50000,100000", help="events in the window (default "
                        "10000,50000,100000)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--max-results", default="10000,1000000",
                        help="server limits per query to try (default 10000,1000000: split and unsplit)")
    parser.add_argument("--runs", type=int, default=2, help="job runs per size on the same database (default 2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="limit per job subprocess, s (default 300)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one run at the largest size (first backend and limit)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
        args.max_results = [int(limit) for limit in args.max_results.split(",")]
    except ValueError:
        parser.error("--sizes and --max-results: expected comma-separated numbers")
    if not all(5_000 <= size <= 200_000 for size in args.sizes):
        parser.error("--sizes: each size must be between 5,000 and 200,000")
    if not args.max_results or not all(limit >= 1 for limit in args.max_results):
        parser.error("--max-results: each limit must be at least 1")
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or any(name not in BACKENDS for name in args.backends):
        parser.error(f"--backends: choose from {','.join(BACKENDS)}")
    if args.runs < 1:
        parser.error("--runs: at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results()
    began = time.monotonic()
    measure(args, results)
    report(args, results)
    print(f"\n(bench took {time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
