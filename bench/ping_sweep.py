"""Benchmark of the whole `ping-sweep` job over N loopback hosts, on SQLite and MariaDB, against fping.

Every (backend, N) runs in a fresh process (bench/_driver.py) that loads the config, builds the
dependencies and runs the job `--repeat` times on the same database: run 1 creates the host rows,
later runs are the steady state cron repeats. Per run it reports wall time, CPU (user + sys), peak
RSS of the process, and the database statements sent (an executemany counts once).

fping runs on the same targets at the same packet rate (10,000 packets/s: `-i 0.1`), and the
table gives each job run's wall time as a multiple of fping's median. Numbers are printed with
PASS/MISS against the targets of the issue; nothing is asserted.

Needs root (raw ICMP). Sends only to 127.0.0.0/8.

    sudo .venv/bin/python bench/ping_sweep.py --sizes 1000,5000,10000 --backends sqlite,mysql --repeat 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import yaml
from _databases import MYSQL_HOST, MYSQL_PORT, mysql_available, throwaway_database

DRIVER = Path(__file__).with_name("_driver.py")
BACKENDS = ("sqlite", "mysql")
PING = {"count": 3, "interval_ms": 10, "timeout_seconds": 1.0, "rate_limit_pps": 10_000, "retries": 1}
FPING_ARGS = ["-q", "-C", "3", "-t", "1000", "-i", "0.1", "-p", "10"]  # 1 packet / 0.1 ms = 10,000/s

TARGET_RATIO_N, TARGET_RATIO = 5_000, 1.5
TARGET_WALL_N, TARGET_WALL_S = 10_000, 8.0
TARGET_MEMORY_N, TARGET_MEMORY_MB = 10_000, 200.0
STATEMENT_SIZES = (1_000, 10_000)


@dataclass(frozen=True)
class JobRun:
    backend: str
    n: int
    run: int
    exit_code: int
    load_s: float | None
    wall_s: float
    cpu_s: float
    peak_mb: float
    statements: int
    ok: int
    failed: int
    degraded: int


@dataclass(frozen=True)
class FpingRun:
    n: int
    run: int
    wall_s: float
    cpu_s: float
    ok: int
    failed: int


@dataclass
class Results:
    jobs: list[JobRun] = field(default_factory=list)
    fping: list[FpingRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fping_median(self, n: int) -> float | None:
        walls = [r.wall_s for r in self.fping if r.n == n]
        return statistics.median(walls) if walls else None


def loopback_address(index: int) -> str:
    """The index-th bench address: 127.1.0.1, ..., 127.1.0.254, 127.1.1.1, ... (no .0 or .255)."""
    block, host = divmod(index, 254)
    return f"127.{1 + block // 256}.{block % 256}.{host + 1}"


def write_targets(directory: Path, n: int) -> tuple[Path, Path]:
    """Writes the hosts CSV for netwatch and the plain address list for fping."""
    hosts_csv = directory / f"hosts-{n}.csv"
    targets = directory / f"targets-{n}.txt"
    addresses = [loopback_address(i) for i in range(n)]
    with hosts_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "address", "account", "partition", "zone"])
        for i, address in enumerate(addresses):
            writer.writerow([f"bench-{i:05d}", address, str(1000 + i % 500), "01", f"{i % 1000:03d}"])
    targets.write_text("\n".join(addresses) + "\n", encoding="utf-8")
    return hosts_csv, targets


def write_config(directory: Path, name: str, database_url: str, hosts_csv: Path) -> Path:
    """A config with the bench's ping settings and no Sigma/Segware (events stay undelivered)."""
    path = directory / f"{name}.yaml"
    data = {"database": {"url": database_url}, "ping": PING, "hosts_file": str(hosts_csv)}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_job(backend: str, n: int, config: Path, repeat: int, timeout_s: float, log_dir: Path) -> list[JobRun]:
    """Runs the driver in a fresh process; returns its runs (raises RuntimeError when it fails)."""
    log_path = log_dir / f"job-{backend}-{n}.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.run(
            [sys.executable, str(DRIVER), "--config", str(config), "--runs", str(repeat)],
            stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout_s, check=False,
        )
    if proc.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = [line.strip() for line in lines if line.strip(" ^~")][-3:]  # no traceback carets
        raise RuntimeError(f"driver exited {proc.returncode}: " + " | ".join(tail))
    runs = []
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        counts = record["counts"]
        runs.append(JobRun(
            backend=backend, n=n, run=record["run"], exit_code=record["exit_code"], load_s=record["load_s"],
            wall_s=record["wall_s"], cpu_s=record["cpu_s"], peak_mb=record["peak_mb"],
            statements=record["statements"], ok=counts.get("ok", 0), failed=counts.get("failed", 0),
            degraded=counts.get("degraded", 0),
        ))
    return runs


def run_fping(fping: str, n: int, run: int, targets: Path, timeout_s: float) -> FpingRun:
    """Times one fping over the targets file; per-host lines (stderr) give ok/failed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run([fping, *FPING_ARGS, "-f", str(targets)], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    wall_s = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    ok = 0
    for line in proc.stderr.splitlines():
        address, sep, values = line.partition(" : ")
        replies = values.split()
        if sep and address.strip().startswith("127.") and replies and "-" not in replies:
            ok += 1
    # A host with a lost reply, or with no line at all, counts as failed.
    return FpingRun(n=n, run=run, wall_s=wall_s, cpu_s=cpu_s, ok=ok, failed=n - ok)


def measure(args: argparse.Namespace, results: Results) -> None:
    fping = shutil.which("fping")
    if fping is None:
        results.notes.append("fping not installed: fping rows and ratios skipped")
    backends = list(args.backends)
    if "mysql" in backends:
        problem = mysql_available()
        if problem is not None:
            results.notes.append(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} not reachable ({problem}): mysql rows skipped")
            backends.remove("mysql")
    with tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp:
        directory = Path(tmp)
        for n in args.sizes:
            hosts_csv, targets = write_targets(directory, n)
            if fping is not None:
                for run in range(1, args.repeat + 1):
                    progress(f"fping, {n} hosts, run {run}")
                    try:
                        results.fping.append(run_fping(fping, n, run, targets, args.timeout))
                    except subprocess.TimeoutExpired:
                        results.notes.append(f"fping {n} hosts run {run}: timed out after {args.timeout} s")
            for backend in backends:
                progress(f"{backend}, {n} hosts, {args.repeat} runs")
                try:
                    with throwaway_database(backend, directory, "bench", str(n)) as url:
                        config = write_config(directory, f"{backend}-{n}", url, hosts_csv)
                        results.jobs.extend(run_job(backend, n, config, args.repeat, args.timeout, directory))
                except (RuntimeError, subprocess.TimeoutExpired, pymysql.MySQLError) as exc:
                    results.notes.append(f"{backend} {n} hosts: FAILED: {exc}")


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def report(args: argparse.Namespace, results: Results) -> None:
    print(f"netwatch ping-sweep benchmark: loopback 127.x.y.z hosts, ping {PING}")
    print(f"fping {' '.join(FPING_ARGS)} -f TARGETS; wall = around run_ping_sweep (after config load); "
          "peak = ru_maxrss of the process; 'x fping' = job wall / median fping wall")
    print()
    rows = []
    for n in args.sizes:
        median = results.fping_median(n)
        for job in (j for j in results.jobs if j.n == n):
            rows.append([
                job.backend, f"{n:,}", str(job.run), f"{job.wall_s:.2f}", f"{job.cpu_s:.2f}",
                f"{job.peak_mb:.0f}", str(job.statements), f"{job.ok}/{job.failed}",
                f"{job.load_s:.2f}" if job.load_s is not None else "-",
                f"{job.wall_s / median:.2f}" if median else "-", str(job.exit_code),
            ])
        for fp in (f for f in results.fping if f.n == n):
            rows.append(["fping", f"{n:,}", str(fp.run), f"{fp.wall_s:.2f}", f"{fp.cpu_s:.2f}", "-", "-",
                         f"{fp.ok}/{fp.failed}", "-", "1.00" if median is None else f"{fp.wall_s / median:.2f}",
                         "-"])
    header = ["backend", "N", "run", "wall s", "CPU s", "peak MB", "statements", "ok/failed", "load s",
              "x fping", "exit"]
    print("\n".join(table(header, rows)))
    print()
    for line in summary(args, results):
        print(line)
    for note in results.notes:
        print(f"NOTE {note}")


def summary(args: argparse.Namespace, results: Results) -> list[str]:
    """PASS/MISS per target and backend; steady state = the last run of each (backend, N)."""
    lines = ["targets (steady state = last run of each backend and size):"]

    def steady(backend: str, n: int) -> JobRun | None:
        runs = [j for j in results.jobs if j.backend == backend and j.n == n]
        return runs[-1] if runs else None

    def verdict(good: bool) -> str:
        return "PASS" if good else "MISS"

    for backend in sorted({j.backend for j in results.jobs}, key=BACKENDS.index):
        job = steady(backend, TARGET_RATIO_N)
        median = results.fping_median(TARGET_RATIO_N)
        if job and median:
            ratio = job.wall_s / median
            lines.append(f"  {verdict(ratio <= TARGET_RATIO)} {backend}: {TARGET_RATIO_N:,} hosts within "
                         f"{TARGET_RATIO}x fping: {job.wall_s:.2f} s / {median:.2f} s = {ratio:.2f}x")
        else:
            lines.append(f"  n/a  {backend}: {TARGET_RATIO_N:,} hosts vs fping (size or fping not run)")
        job = steady(backend, TARGET_WALL_N)
        if job:
            worst = max(j.wall_s for j in results.jobs if j.backend == backend and j.n == TARGET_WALL_N)
            lines.append(f"  {verdict(job.wall_s < TARGET_WALL_S)} {backend}: {TARGET_WALL_N:,} hosts under "
                         f"{TARGET_WALL_S:.0f} s: {job.wall_s:.2f} s (slowest run {worst:.2f} s)")
        else:
            lines.append(f"  n/a  {backend}: {TARGET_WALL_N:,} hosts under {TARGET_WALL_S:.0f} s (size not run)")
        small, large = ([j.statements for j in results.jobs if j.backend == backend and j.n == size]
                        for size in STATEMENT_SIZES)
        if small and large:
            lines.append(f"  {verdict(small == large)} {backend}: statements per run equal at "
                         f"{STATEMENT_SIZES[0]:,} and {STATEMENT_SIZES[1]:,} hosts: {small} vs {large}")
        else:
            lines.append(f"  n/a  {backend}: statements at {STATEMENT_SIZES[0]:,} vs {STATEMENT_SIZES[1]:,} "
                         "(size not run)")
        runs = [j for j in results.jobs if j.backend == backend and j.n == TARGET_MEMORY_N]
        if runs:
            peak = max(j.peak_mb for j in runs)
            lines.append(f"  {verdict(peak < TARGET_MEMORY_MB)} {backend}: peak memory at {TARGET_MEMORY_N:,} "
                         f"hosts under {TARGET_MEMORY_MB:.0f} MB: {peak:.0f} MB")
        else:
            lines.append(f"  n/a  {backend}: peak memory at {TARGET_MEMORY_N:,} hosts (size not run)")
        failed = [j for j in results.jobs if j.backend == backend and (j.failed or j.degraded)]
        for job in failed:
            lines.append(f"  WARN {backend}: {job.n:,} hosts run {job.run}: {job.failed} failed, "
                         f"{job.degraded} degraded on loopback (all should answer)")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,10000", help="host counts (default 1000,5000,10000)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--repeat", type=int, default=2, help="job (and fping) runs per size (default 2)")
    parser.add_argument("--timeout", type=float, default=120.0, help="limit per subprocess, s (default 120)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: expected comma-separated numbers, got {args.sizes!r}")
    if not all(1 <= size <= 254 * 256 for size in args.sizes):
        parser.error("--sizes: each size must be between 1 and 65,024")
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or any(name not in BACKENDS for name in args.backends):
        parser.error(f"--backends: choose from {','.join(BACKENDS)}")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("needs root: the sweep and fping use raw ICMP sockets", file=sys.stderr)
        return 77
    results = Results()
    measure(args, results)
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
