"""Benchmark of `netwatch run event-scan` as a whole process over N events, on SQLite and MariaDB.

The Segware API is tests/fakeapi.py's FakeApis on 127.0.0.1, run in its own process
(bench/_event_server.py) so its CPU is not counted as the job's: N events over the 100 minutes
before the server started, across 5,000 groups (1,000 accounts x 5 CUCs), 50 of them over their
code's threshold (the thresholds grow with N, so the same 50 alerts are raised at every N), page
size 500, window 120 minutes. The job runs on this machine's real clock, so every run must start
within 20 minutes of the server (the bench notes a run that did not).

For every (server limit, N, backend) each netwatch command (`--netwatch LABEL=PATH`, repeatable:
side by side, e.g. the branch point and this checkout) gets a fresh database (`netwatch db init`,
not timed), then `--runs` rounds each run the real `netwatch run event-scan --config FILE` once
per command, alternating, so load changes hit all commands alike. Run 1 raises the 50 alerts,
later runs find them active and only update them. Each run is timed as a whole process: wall time
from spawn to exit, and CPU (user + sys) and peak RSS of that child from `os.wait4`: the
interpreter start, imports, config, the read, the counting, the database and the teardown. The
server's CPU meanwhile is printed apart. The job's summary line gives its counts and the SQL
statements the run sent (an executemany counts once). Before timing, each command's netwatch package
is compiled to bytecode, as `pip install` does for a deployed one: with PYTHONDONTWRITEBYTECODE set
(this machine, the Dockerfile) an editable checkout would otherwise compile its ~90 modules from
source in every run (about 0.15 s of CPU).

`--max-results` lists the server's per-query limits: 10,000 (the API default: the client splits
the window on 422 too_many_results, the realistic case) and/or one above N (one query). Printed
with the load average and PASS/MISS against the targets of issue 11 on the median CPU of the runs
(100,000 events under 1.5 s, 1,000,000 under 15 s), peak RSS flat from the smallest to the
largest N (within 10 MB), and statements per run the same at every N; nothing is asserted.
`--profile` also runs the last command once at the largest N under cProfile, imports included
(bench/_event_scan_driver.py). Sends only to 127.0.0.1.

    .venv/bin/python bench/event_scan.py --sizes 100000,1000000 --backends sqlite --runs 3 \\
        --netwatch before=/work/wt-before/.venv/bin/netwatch --netwatch after=.venv/bin/netwatch --profile
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import psutil
import pymysql
import yaml
from _databases import MYSQL_HOST, MYSQL_PORT, mysql_available, throwaway_database
from _process import Timed, child_env, failure, field_count, run_timed, stop_server, summary_fields

HERE = Path(__file__).resolve().parent
PROFILER = HERE / "_event_scan_driver.py"
SERVER = HERE / "_event_server.py"
NETWATCH = Path(sys.executable).with_name("netwatch")
BACKENDS = ("sqlite", "mysql")
SUMMARY = "event-scan finished"
TOKEN = "bench-segware-token"  # the token _event_server.py expects
WINDOW_MINUTES, PAGE_SIZE = 120, 500
RUN_WITHIN = timedelta(minutes=20)  # events span the 100 minutes before the server's start
SERVER_START_S = 300.0  # generating and sorting 1,000,000 events takes a while
TARGETS_S = {100_000: 1.5, 1_000_000: 15.0}  # N -> the median CPU of event-scan must stay under this
MEMORY_FLAT_MB = 10.0  # "flat": the largest N's peak at most this much above the smallest N's
SIZES = (5_000, 1_000_000)


@dataclass(frozen=True)
class Server:
    url: str
    process: psutil.Process
    codes: dict[str, int]
    hot_groups: int
    now: datetime


@dataclass(frozen=True)
class JobRun:
    """One `netwatch run event-scan` process and what its summary line says."""

    command: str
    max_results: int
    backend: str
    n: int
    run: int
    timed: Timed
    server_cpu_s: float
    fields: dict[str, object]

    def count(self, key: str) -> int:
        return field_count(self.fields, key)


@dataclass
class Results:
    runs: list[JobRun] = field(default_factory=list)
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
    """The loopback server process with N events before now; stopped (stdin closed, else killed) on exit."""
    now = datetime.now(UTC).replace(microsecond=0)
    log_path = log_dir / f"server-{n}-{max_results}.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--events", str(n), "--max-results", str(max_results),
             "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = _first_line(proc.stdout, SERVER_START_S)
        if not line:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"event server exited {proc.wait(timeout=5)}: {' '.join(tail)}")
        info = json.loads(line)
        yield Server(url=info["url"], process=psutil.Process(info["pid"]), codes=info["codes"],
                     hot_groups=info["hot_groups"], now=now)
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


def job_env() -> dict[str, str]:
    return {**child_env(), "NETWATCH_SEGWARE_TOKEN": TOKEN}


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def compile_bytecode(netwatch: str) -> str | None:
    """Writes the .pyc files of the netwatch package `netwatch` runs; None when done, else why not."""
    python = Path(netwatch).with_name("python")
    code = ("import compileall, os, sys, netwatch; "
            "sys.exit(not compileall.compile_dir(os.path.dirname(netwatch.__file__), quiet=1))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    return None if proc.returncode == 0 else f"compileall exited {proc.returncode}: {proc.stderr.strip()[-200:]}"


def measure(args: argparse.Namespace, results: Results, directory: Path) -> None:
    for label, netwatch in args.netwatch:
        problem = compile_bytecode(netwatch)
        if problem is not None:
            results.notes.append(f"{label}: bytecode not compiled ({problem}): its runs include compiling")
    backends = list(args.backends)
    if "mysql" in backends:
        problem = mysql_available()
        if problem is not None:
            results.notes.append(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} not reachable ({problem}): mysql rows skipped")
            backends.remove("mysql")
    for max_results in args.max_results:
        for n in args.sizes:
            progress(f"server: {n:,} events, max_results {max_results:,}")
            try:
                with event_server(n, max_results, directory) as server:
                    results.expected_raised = server.hot_groups
                    for backend in backends:
                        measure_rounds(args, results, directory, server, backend, n, max_results)
                    if args.profile and n == max(args.sizes) and max_results == args.max_results[0] and backends:
                        profile_one(args, results, directory, server, backends[0], n)
            except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
                results.notes.append(f"server {n:,} events, max_results {max_results:,}: FAILED: {exc}")


def measure_rounds(args: argparse.Namespace, results: Results, directory: Path, server: Server, backend: str,
                   n: int, max_results: int) -> None:
    """A fresh database per command, `netwatch db init`, then `--runs` rounds of one run per command."""
    tag = f"{n}_{max_results}"
    try:
        with ExitStack() as stack:
            configs = {}
            for position, (label, netwatch) in enumerate(args.netwatch):
                url = stack.enter_context(throwaway_database(backend, directory, "evbench", f"{tag}_{position}"))
                config = write_config(directory, f"{backend}-{tag}-{position}", url, server)
                init = run_timed([netwatch, "db", "init", "--config", str(config)], job_env(), args.timeout,
                                 directory, f"init-{backend}-{tag}-{position}")
                if init.exit_code != 0:
                    results.notes.append(failure(f"{label} {backend} {n:,} events: netwatch db init", init))
                    return
                configs[label] = (netwatch, config)
            for number in range(1, args.runs + 1):
                for label, (netwatch, config) in configs.items():
                    progress(f"{label}: {backend}, {n:,} events, max_results {max_results:,}, run {number}")
                    results.runs.append(run_one(args, results, directory, server, label, netwatch, config,
                                                backend, n, max_results, number))
    except pymysql.MySQLError as exc:
        results.notes.append(f"{backend} {n:,} events, max_results {max_results:,}: FAILED: {exc}")


def run_one(args: argparse.Namespace, results: Results, directory: Path, server: Server, label: str, netwatch: str,
            config: Path, backend: str, n: int, max_results: int, number: int) -> JobRun:
    started = datetime.now(UTC)
    server_cpu = cpu_of(server.process)
    timed = run_timed([netwatch, "run", "event-scan", "--config", str(config), "--log-format", "json"], job_env(),
                      args.timeout, directory, f"scan-{label}-{backend}-{n}-{max_results}-{number}")
    server_cpu = cpu_of(server.process) - server_cpu
    fields = summary_fields(timed.stderr, SUMMARY)
    what = f"{label} {backend} {n:,} events, max_results {max_results:,}, run {number}"
    if timed.exit_code != 0 or fields is None:
        results.notes.append(failure(f"{what}: netwatch run event-scan", timed))
    if started + timedelta(seconds=timed.wall_s) - server.now >= RUN_WITHIN:
        results.notes.append(f"{what}: ended over {RUN_WITHIN} after the server's events: some left the window")
    return JobRun(label, max_results, backend, n, number, timed, server_cpu, fields or {})


def profile_one(args: argparse.Namespace, results: Results, directory: Path, server: Server, backend: str,
                n: int) -> None:
    """cProfile of one run of the last command (a fresh database), imports included."""
    label, netwatch = args.netwatch[-1]
    python = str(Path(netwatch).with_name("python"))
    stats_path = directory / "event-scan.prof"
    progress(f"profile: {label}, {backend}, {n:,} events")
    try:
        with throwaway_database(backend, directory, "evbench", f"{n}_profile") as url:
            config = write_config(directory, f"{backend}-{n}-profile", url, server)
            init = run_timed([netwatch, "db", "init", "--config", str(config)], job_env(), args.timeout, directory,
                             "init-profile")
            if init.exit_code != 0:
                results.notes.append(failure("profile: netwatch db init", init))
                return
            timed = run_timed([python, str(PROFILER), "--profile", str(stats_path), "run", "event-scan", "--config",
                               str(config), "--log-format", "json"], job_env(), args.timeout, directory, "profile")
    except pymysql.MySQLError as exc:
        results.notes.append(f"profile run: FAILED: {exc}")
        return
    if timed.exit_code != 0 or not stats_path.exists():
        results.notes.append(failure("profile run", timed))
        return
    out = io.StringIO()
    stats = pstats.Stats(str(stats_path), stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(25)
    header = (f"cProfile: {label}, {backend}, {n:,} events, run 1 of a fresh database under the profiler, whole "
              f"process (wall {timed.wall_s:.2f} s, CPU {timed.cpu_s:.2f} s, profiler overhead included); by "
              "cumulative, then by own time")
    results.profile = header + "\n" + out.getvalue().strip()


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def report(args: argparse.Namespace, results: Results, load: Sequence[str]) -> None:
    print(f"netwatch run event-scan: N events over 100 min, 5,000 groups, page size {PAGE_SIZE}, window "
          f"{WINDOW_MINUTES} min, loopback FakeApis in its own process; {os.cpu_count()} cores; load average "
          + "; ".join(load))
    for label, netwatch in args.netwatch:
        print(f"  {label}: {netwatch}")
    print("wall = spawn to exit; CPU and peak RSS of that process from os.wait4 (user+sys, the whole process); "
          "server CPU = the server process meanwhile; max_results = server limit per query; statements, events, "
          "groups, raised, updated, recorded: the job's summary line")
    print()
    header = ["command", "max_results", "backend", "N", "run", "wall s", "CPU s", "server CPU s", "peak MB",
              "statements", "events", "groups", "raised", "updated", "recorded", "exit"]
    rows = [[
        job.command, f"{job.max_results:,}", job.backend, f"{job.n:,}", str(job.run), f"{job.timed.wall_s:.2f}",
        f"{job.timed.cpu_s:.2f}", f"{job.server_cpu_s:.2f}", f"{job.timed.peak_mb:.0f}",
        str(job.fields.get("statements", "-")), f"{job.count('events'):,}", str(job.count("groups")),
        str(job.count("raised")), str(job.count("updated")), str(job.count("recorded")), str(job.timed.exit_code),
    ] for job in results.runs]
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


def verdict(good: bool) -> str:
    return "PASS" if good else "MISS"


def summary(args: argparse.Namespace, results: Results) -> list[str]:
    """PASS/MISS per target, command, server limit and backend."""
    lines = ["targets (medians over the runs; every run listed):"]
    combos = sorted({(j.max_results, j.backend) for j in results.runs}, key=lambda c: (c[0], BACKENDS.index(c[1])))
    for max_results, backend in combos:
        for label, _ in args.netwatch:
            mine = [j for j in results.runs if (j.command, j.max_results, j.backend) == (label, max_results, backend)]
            name = f"{label}, {backend}, max_results {max_results:,}"
            lines.extend(cpu_lines(name, mine))
            lines.extend(memory_lines(name, mine))
            lines.extend(statement_lines(name, mine))
            for job in mine:
                expected = results.expected_raised if job.run == 1 else 0
                if job.count("events") != job.n or job.count("raised") != expected or job.timed.exit_code != 0:
                    lines.append(f"  WARN {name}: {job.n:,} events run {job.run}: counted {job.count('events'):,}, "
                                 f"raised {job.count('raised')} (expected {expected}), exit {job.timed.exit_code}")
    return lines


def cpu_lines(name: str, mine: Sequence[JobRun]) -> list[str]:
    lines = []
    for n in sorted({j.n for j in mine}):
        cpus = [j.timed.cpu_s for j in mine if j.n == n]
        walls = [j.timed.wall_s for j in mine if j.n == n]
        detail = (f"median CPU {statistics.median(cpus):.2f} s (runs {', '.join(f'{c:.2f}' for c in cpus)}), "
                  f"median wall {statistics.median(walls):.2f} s, {n / statistics.median(cpus):,.0f} events per CPU s")
        target = TARGETS_S.get(n)
        if target is None:
            lines.append(f"  ---- {name}: {n:,} events: {detail}")
        else:
            lines.append(f"  {verdict(statistics.median(cpus) < target)} {name}: {n:,} events under {target:g} s "
                         f"CPU: {detail}")
    return lines


def memory_lines(name: str, mine: Sequence[JobRun]) -> list[str]:
    sizes = sorted({j.n for j in mine})
    if len(sizes) < 2:
        return []
    low = max(j.timed.peak_mb for j in mine if j.n == sizes[0])
    high = max(j.timed.peak_mb for j in mine if j.n == sizes[-1])
    return [f"  {verdict(high - low <= MEMORY_FLAT_MB)} {name}: peak RSS flat from {sizes[0]:,} to {sizes[-1]:,} "
            f"events (within {MEMORY_FLAT_MB:g} MB): {low:.0f} MB -> {high:.0f} MB"]


def statement_lines(name: str, mine: Sequence[JobRun]) -> list[str]:
    sizes = sorted({j.n for j in mine})
    if len(sizes) < 2:
        return []
    per_size = {n: [j.fields.get("statements") for j in mine if j.n == n] for n in sizes}
    rounds = min(len(counts) for counts in per_size.values())
    same = len({tuple(counts[:rounds]) for counts in per_size.values()}) == 1
    detail = "; ".join(f"{n:,}: {counts}" for n, counts in per_size.items())
    return [f"  {verdict(same)} {name}: statements per run (run by run) equal at every N: {detail}"]


def parse_command(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="events in the window (default 10000,100000)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--max-results", default="10000",
                        help="server limits per query to try (default 10000, the API's: the client splits)")
    parser.add_argument("--runs", type=int, default=3, help="runs per command and size on one database (default 3)")
    parser.add_argument("--netwatch", action="append", type=parse_command, default=None,
                        help=f"LABEL=PATH of a netwatch command to time, repeatable (default this={NETWATCH})")
    parser.add_argument("--timeout", type=float, default=300.0, help="limit per netwatch process, s (default 300)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one run of the last command at the largest size (first backend and limit)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
        args.max_results = [int(limit) for limit in args.max_results.split(",")]
    except ValueError:
        parser.error("--sizes and --max-results: expected comma-separated numbers")
    if not all(SIZES[0] <= size <= SIZES[1] for size in args.sizes):
        parser.error(f"--sizes: each size must be between {SIZES[0]:,} and {SIZES[1]:,}")
    if not args.max_results or not all(limit >= 1 for limit in args.max_results):
        parser.error("--max-results: each limit must be at least 1")
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or any(name not in BACKENDS for name in args.backends):
        parser.error(f"--backends: choose from {','.join(BACKENDS)}")
    if args.runs < 1:
        parser.error("--runs: at least 1")
    args.netwatch = args.netwatch or [("this", str(NETWATCH))]
    if len({label for label, _ in args.netwatch}) != len(args.netwatch):
        parser.error("--netwatch: each LABEL once")
    return args


def load_now(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"at {when} {one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results()
    load = [load_now("start")]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nw-evbench-") as directory:
        measure(args, results, Path(directory))
    load.append(load_now("end"))
    report(args, results, load)
    print(f"\n(bench took {time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
