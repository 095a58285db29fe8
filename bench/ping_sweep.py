"""Benchmark of `netwatch run ping-sweep` over N loopback hosts as a whole process, beside fping.

For each (backend, N) a fresh database gets `netwatch db init`, then `--repeat` rounds: each round
runs fping on the same targets at the same packet rate (`--rate`, default 10,000 packets/s: the
config's `ping.rate_limit_pps` and fping's `-i`, 1000 / rate ms, here `-i 0.1`), then the real
`netwatch run ping-sweep` command (the console script of this venv). The table prints beside them
the physical limit of a sweep, N x count / rate: the least time its packets need at the rate. Both are timed as whole
processes: wall time from spawn to exit, and CPU (user + sys) and peak RSS of that child from
`os.wait4` (its own rusage, what RUSAGE_CHILDREN would add up). So the netwatch numbers include the
interpreter start, imports, config and inventory parsing, schema and clock checks, the job and the
teardown; the job's own `duration_s` comes from its summary line. Round 1 creates the host rows;
later rounds are the steady state that cron repeats, and the targets compare their medians.

`netwatch --version` is timed the same way (`--version-runs` times). Then bench/_driver.py runs the
job `--repeat` times in one fresh interpreter for what a whole process cannot tell: the database
statements per run (an executemany counts once) and the job's own wall, CPU and peak memory, as
this bench printed them before it timed whole processes. The machine's load average is printed with
the numbers: other work on the machine slows both sides. Numbers are printed with PASS/MISS against
the targets of the issue; nothing is asserted.

Needs root (fping, and raw ICMP). Sends only to 127.0.0.0/8. `--socket` sets the config's
`ping.socket` (default auto: datagram where net.ipv4.ping_group_range allows, else raw); the table
names the kind each run used. For datagram sockets where this namespace forbids them, run the bench
in a namespace that allows them (SQLite only: MariaDB on 127.0.0.1 is not there):

    sudo .venv/bin/python bench/ping_sweep.py --sizes 1000,5000,10000 --backends sqlite,mysql --repeat 5
    sudo .venv/bin/python bench/ping_sweep.py --sizes 40000 --rate 40000 --no-in-process
    sudo ip netns add nwbench && sudo ip -n nwbench link set lo up
    sudo ip netns exec nwbench sysctl -w net.ipv4.ping_group_range="0 2147483647"
    sudo ip netns exec nwbench .venv/bin/python bench/ping_sweep.py --backends sqlite --socket datagram
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pymysql
import yaml
from _databases import MYSQL_HOST, MYSQL_PORT, mysql_available, throwaway_database
from _process import Timed, child_env, failure, run_timed, summary_fields

DRIVER = Path(__file__).with_name("_driver.py")
NETWATCH = Path(sys.executable).with_name("netwatch")
BACKENDS = ("sqlite", "mysql")
PING = {"count": 3, "interval_ms": 10, "timeout_seconds": 1.0, "retries": 1}  # and rate_limit_pps: --rate
DEFAULT_RATE = 10_000
# fping 5.1 holds each sequence number 10 s (its seqmap) and has 65,535: one process refuses to send more
# packets than that in 10 s ("not enough sequence numbers available"). Beyond that the targets are split
# among several fping processes run at once, each at its share of the rate.
FPING_SEQUENCES, FPING_SEQUENCE_HOLD_S = 60_000, 10
SUMMARY = "ping-sweep finished"

TARGET_VERSION_S = 0.3
TARGET_RATIO_N, TARGET_RATIO = 5_000, 1.0
TARGET_WALL_N, TARGET_WALL_S = 10_000, 8.0
TARGET_MEMORY_N, TARGET_MEMORY_MB = 10_000, 200.0
STATEMENT_SIZES = (1_000, 10_000)


@dataclass(frozen=True)
class Counts:
    ok: int = 0
    failed: int = 0
    degraded: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Counts:
        return cls(counts.get("ok", 0), counts.get("failed", 0), counts.get("degraded", 0))


@dataclass(frozen=True)
class ProcessRun:
    """One round: the whole `netwatch run ping-sweep` process and the fping just before it."""

    backend: str
    n: int
    run: int
    netwatch: Timed
    job_s: float | None
    counts: Counts
    fping: FpingRun | None
    icmp_socket: str | None  # the kind of ICMP socket the run used, from its summary line (icmp_datagram)


@dataclass(frozen=True)
class FpingRun:
    wall_s: float
    cpu_s: float
    ok: int
    failed: int


@dataclass(frozen=True)
class InProcessRun:
    backend: str
    n: int
    run: int
    exit_code: int
    load_s: float | None
    wall_s: float
    cpu_s: float
    peak_mb: float
    statements: int
    counts: Counts


@dataclass
class Results:
    version: list[Timed] = field(default_factory=list)
    processes: list[ProcessRun] = field(default_factory=list)
    in_process: list[InProcessRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)

    def steady(self, backend: str, n: int) -> list[ProcessRun]:
        """The rounds after the first (or the only one), with a finished netwatch run."""
        runs = [r for r in self.processes if r.backend == backend and r.n == n and r.netwatch.exit_code == 0]
        return runs[1:] if len(runs) > 1 else runs


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


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


def ping_config(rate: int) -> dict[str, object]:
    """The config's `ping` section at `rate` packets/s."""
    return {**PING, "rate_limit_pps": rate}


def fping_parts(n: int, rate: int) -> int:
    """How many fping processes, run at once, sweep `n` hosts at `rate` packets/s together (see FPING_SEQUENCES)."""
    packets = min(n * PING["count"], rate * FPING_SEQUENCE_HOLD_S)
    return max(1, -(-packets // FPING_SEQUENCES))


def fping_args(rate: float) -> list[str]:
    """fping's options for the bench's ping settings at `rate` packets/s (`-i`: ms between two packets)."""
    interval_ms = f"{1000 / rate:.6f}".rstrip("0").rstrip(".")
    return ["-q", "-C", str(PING["count"]), "-t", str(round(1000 * PING["timeout_seconds"])), "-i", interval_ms,
            "-p", str(PING["interval_ms"])]


def physical_limit_s(n: int, rate: int) -> float:
    """The least time a sweep of `n` hosts at `rate` packets/s needs: N x count / rate, or (count - 1) x interval."""
    return max(n * PING["count"] / rate, (PING["count"] - 1) * PING["interval_ms"] / 1000)


def write_config(directory: Path, name: str, database_url: str, hosts_csv: Path, socket: str, rate: int) -> Path:
    """A config with the bench's ping settings and no Sigma/Segware (events stay undelivered)."""
    path = directory / f"{name}.yaml"
    data = {"database": {"url": database_url}, "ping": {**ping_config(rate), "socket": socket},
            "hosts_file": str(hosts_csv)}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_fping(fping: str, targets: Path, rate: int, timeout_s: float, log_dir: Path, tag: str) -> FpingRun:
    """Times fping over the targets file at `rate`; per-host lines (stderr) give ok/failed.

    With fping_parts() > 1 the targets are split in that many files, one fping each, all started at
    once at an equal share of the rate: wall is the slowest one's, CPU their sum.
    """
    addresses = [line for line in targets.read_text(encoding="utf-8").splitlines() if line]
    parts = fping_parts(len(addresses), rate)
    files = [targets] if parts == 1 else [targets.with_name(f"{targets.stem}-part{i}.txt") for i in range(parts)]
    if parts > 1:
        for i, path in enumerate(files):
            path.write_text("\n".join(addresses[i::parts]) + "\n", encoding="utf-8")
    with ThreadPoolExecutor(parts) as pool:
        runs = list(pool.map(lambda i: run_timed([fping, *fping_args(rate / parts), "-f", str(files[i])],
                                                 child_env(), timeout_s, log_dir, f"{tag}-{i}"), range(parts)))
    if any(timed.timed_out for timed in runs):
        raise subprocess.TimeoutExpired(fping, timeout_s)
    ok = 0
    for line in "\n".join(timed.stderr for timed in runs).splitlines():
        address, sep, values = line.partition(" : ")
        replies = values.split()
        if sep and address.strip().startswith("127.") and replies and "-" not in replies:
            ok += 1
    # A host with a lost reply, or with no line at all, counts as failed.
    return FpingRun(wall_s=max(timed.wall_s for timed in runs), cpu_s=sum(timed.cpu_s for timed in runs), ok=ok,
                    failed=len(addresses) - ok)


def measure_version(args: argparse.Namespace, results: Results, log_dir: Path) -> None:
    for run in range(1, args.version_runs + 1):
        timed = run_timed([str(args.netwatch), "--version"], child_env(), args.timeout, log_dir, f"version-{run}")
        if timed.exit_code != 0:
            results.notes.append(failure("netwatch --version", timed))
            return
        results.version.append(timed)


def measure_processes(args: argparse.Namespace, results: Results, fping: str | None, backend: str, n: int,
                      config: Path, *, targets: Path, log_dir: Path) -> None:
    """`netwatch db init`, then the rounds of fping and `netwatch run ping-sweep` on one database."""
    netwatch = str(args.netwatch)
    init = run_timed([netwatch, "db", "init", "--config", str(config)], child_env(), args.timeout, log_dir,
                     f"init-{backend}-{n}")
    if init.exit_code != 0:
        results.notes.append(failure(f"{backend} {n} hosts: netwatch db init", init))
        return
    for run in range(1, args.repeat + 1):
        progress(f"{backend}, {n:,} hosts, round {run}: fping, then netwatch run ping-sweep")
        tag = f"{backend}-{n}-{run}"
        fping_run = run_fping(fping, targets, args.rate, args.timeout, log_dir, f"fping-{tag}") if fping else None
        timed = run_timed([netwatch, "run", "ping-sweep", "--config", str(config), "--log-format", "json"],
                          child_env(), args.timeout, log_dir, f"sweep-{tag}")
        fields = summary_fields(timed.stderr, SUMMARY)
        if timed.exit_code != 0 or fields is None:
            results.notes.append(failure(f"{backend} {n} hosts round {run}: netwatch run ping-sweep", timed))
        counts = {key: value for key, value in (fields or {}).items() if isinstance(value, int)}
        job_s = fields.get("duration_s") if fields else None
        kind = {0: "raw", 1: "datagram"}.get(counts["icmp_datagram"]) if "icmp_datagram" in counts else None
        results.processes.append(ProcessRun(backend, n, run, timed, job_s if isinstance(job_s, float) else None,
                                            Counts.of(counts), fping_run, kind))


def measure_in_process(args: argparse.Namespace, results: Results, backend: str, n: int, config: Path, *,
                       log_dir: Path) -> None:
    """bench/_driver.py: the job `--repeat` times in one fresh interpreter, with its statement counts."""
    progress(f"{backend}, {n:,} hosts: {args.repeat} in-process runs")
    timed = run_timed([sys.executable, str(DRIVER), "--config", str(config), "--runs", str(args.repeat)],
                      child_env(), args.timeout * args.repeat, log_dir, f"driver-{backend}-{n}")
    if timed.exit_code != 0:
        results.notes.append(failure(f"{backend} {n} hosts: in-process driver", timed))
        return
    for line in timed.stdout.splitlines():
        record = json.loads(line)
        results.in_process.append(InProcessRun(
            backend=backend, n=n, run=record["run"], exit_code=record["exit_code"], load_s=record["load_s"],
            wall_s=record["wall_s"], cpu_s=record["cpu_s"], peak_mb=record["peak_mb"],
            statements=record["statements"], counts=Counts.of(record["counts"]),
        ))


def measure(args: argparse.Namespace, results: Results) -> None:
    fping = shutil.which("fping")
    if fping is None:
        results.notes.append("fping not installed: fping columns and ratios skipped")
    backends = list(args.backends)
    if "mysql" in backends:
        problem = mysql_available()
        if problem is not None:
            results.notes.append(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} not reachable ({problem}): mysql rows skipped")
            backends.remove("mysql")
    results.load.append(("start", os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp:
        directory = Path(tmp)
        progress(f"netwatch --version, {args.version_runs} runs")
        measure_version(args, results, directory)
        for n in args.sizes:
            hosts_csv, targets = write_targets(directory, n)
            for backend in backends:
                on_database(results, backend, n, "process", directory, hosts_csv, args, partial(
                    measure_processes, args, results, fping, backend, n, targets=targets, log_dir=directory))
                if args.in_process:
                    on_database(results, backend, n, "inproc", directory, hosts_csv, args, partial(
                        measure_in_process, args, results, backend, n, log_dir=directory))
    results.load.append(("end", os.getloadavg()))


def on_database(results: Results, backend: str, n: int, name: str, directory: Path, hosts_csv: Path,
                args: argparse.Namespace, step: Callable[[Path], None]) -> None:
    """Runs `step(config)` with a config on a fresh throwaway database; a failure becomes a note."""
    try:
        with throwaway_database(backend, directory, f"bench_{name}", str(n)) as url:
            step(write_config(directory, f"{backend}-{n}-{name}", url, hosts_csv, args.socket, args.rate))
    except (subprocess.TimeoutExpired, pymysql.MySQLError) as exc:
        results.notes.append(f"{backend} {n} hosts ({name}): FAILED: {exc}")


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(args: argparse.Namespace, results: Results) -> None:
    print(f"netwatch ping-sweep benchmark: loopback 127.x.y.z hosts, ping {ping_config(args.rate)}, "
          f"ping.socket {args.socket}")
    parts = {size: fping_parts(size, args.rate) for size in args.sizes}
    split = "; ".join(f"{size:,} hosts: {k} fping processes at once, each on 1/{k} of the targets at 1/{k} of the "
                      f"rate (-i {fping_args(args.rate / k)[6]}): one may send only 65,535 packets in 10 s"
                      for size, k in parts.items() if k > 1)
    print(f"netwatch: {args.netwatch}; fping {' '.join(fping_args(args.rate))} -f TARGETS"
          + (f" ({split})" if split else "") + f"; {os.cpu_count()} CPUs; "
          + "; ".join(f"load average at {when}: {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in results.load))
    print()
    walls = [t.wall_s for t in results.version]
    if walls:
        print(f"netwatch --version, {len(walls)} processes: wall median {median(walls):.3f} s (min {min(walls):.3f}, "
              f"max {max(walls):.3f}), CPU median {median([t.cpu_s for t in results.version]):.3f} s")
        print()
    print("whole processes: wall = spawn to exit; CPU and peak from os.wait4; job s = the summary line's "
          "duration_s; outside s = wall - job s; limit s = N x count / rate; fping ran just before, on the same "
          "targets")
    rows = []
    for run in results.processes:
        timed, fp = run.netwatch, run.fping
        rows.append([
            run.backend, f"{run.n:,}", str(run.run), run.icmp_socket or "-", seconds(timed.wall_s),
            seconds(timed.cpu_s),
            f"{timed.peak_mb:.0f}", seconds(run.job_s), seconds(physical_limit_s(run.n, args.rate)),
            seconds(timed.wall_s - run.job_s) if run.job_s is not None else "-",
            f"{run.counts.ok}/{run.counts.failed}", str(timed.exit_code),
            seconds(fp.wall_s) if fp else "-", seconds(fp.cpu_s) if fp else "-",
            f"{fp.ok}/{fp.failed}" if fp else "-", f"{timed.wall_s / fp.wall_s:.2f}" if fp else "-",
        ])
    header = ["backend", "N", "run", "socket", "wall s", "CPU s", "peak MB", "job s", "limit s", "outside s",
              "ok/failed", "exit",
              "fping s", "fping CPU", "fping ok/failed", "x fping"]
    print("\n".join(table(header, rows)))
    print()
    if results.in_process:
        print("in process (bench/_driver.py, one interpreter per backend and size): wall and CPU around "
              "run_ping_sweep; peak = ru_maxrss of that interpreter; load s = config load and build_deps")
        rows = [[run.backend, f"{run.n:,}", str(run.run), seconds(run.wall_s), seconds(run.cpu_s),
                 f"{run.peak_mb:.0f}", str(run.statements), f"{run.counts.ok}/{run.counts.failed}",
                 seconds(run.load_s), str(run.exit_code)] for run in results.in_process]
        header = ["backend", "N", "run", "wall s", "CPU s", "peak MB", "statements", "ok/failed", "load s", "exit"]
        print("\n".join(table(header, rows)))
        print()
    for line in summary(results):
        print(line)
    for note in results.notes:
        print(f"NOTE {note}")


def verdict(good: bool) -> str:
    return "PASS" if good else "MISS"


def summary(results: Results) -> list[str]:
    """PASS/MISS per target and backend; steady state = the rounds after the first."""
    lines = ["targets (medians of the steady-state rounds):"]
    walls = [t.wall_s for t in results.version]
    if walls:
        lines.append(f"  {verdict(median(walls) < TARGET_VERSION_S)} netwatch --version under {TARGET_VERSION_S} s: "
                     f"median {median(walls):.3f} s")
    for backend in sorted({r.backend for r in results.processes} | {r.backend for r in results.in_process},
                          key=BACKENDS.index):
        lines.extend(backend_summary(results, backend))
    return lines


def backend_summary(results: Results, backend: str) -> list[str]:
    lines = []
    steady = results.steady(backend, TARGET_RATIO_N)
    job = median([r.netwatch.wall_s for r in steady])
    fping = median([r.fping.wall_s for r in steady if r.fping])
    if job is not None and fping is not None:
        ratio = job / fping
        lines.append(f"  {verdict(ratio <= TARGET_RATIO)} {backend}: {TARGET_RATIO_N:,} hosts, whole process no "
                     f"slower than fping: {job:.2f} s / {fping:.2f} s = {ratio:.2f}x")
    else:
        lines.append(f"  n/a  {backend}: {TARGET_RATIO_N:,} hosts vs fping (size or fping not run)")
    steady = results.steady(backend, TARGET_WALL_N)
    if steady:
        wall = median([r.netwatch.wall_s for r in steady])
        worst = max(r.netwatch.wall_s for r in steady)
        lines.append(f"  {verdict(wall is not None and wall < TARGET_WALL_S)} {backend}: {TARGET_WALL_N:,} hosts "
                     f"under {TARGET_WALL_S:.0f} s as a whole process: {wall:.2f} s (slowest {worst:.2f} s)")
    else:
        lines.append(f"  n/a  {backend}: {TARGET_WALL_N:,} hosts under {TARGET_WALL_S:.0f} s (size not run)")
    small, large = ([r.statements for r in results.in_process if r.backend == backend and r.n == size]
                    for size in STATEMENT_SIZES)
    if small and large:
        lines.append(f"  {verdict(small == large)} {backend}: statements per run equal at "
                     f"{STATEMENT_SIZES[0]:,} and {STATEMENT_SIZES[1]:,} hosts: {small} vs {large}")
    else:
        lines.append(f"  n/a  {backend}: statements at {STATEMENT_SIZES[0]:,} vs {STATEMENT_SIZES[1]:,} "
                     "(size not run or --no-in-process)")
    peaks = [r.netwatch.peak_mb for r in results.processes if r.backend == backend and r.n == TARGET_MEMORY_N]
    peaks += [r.peak_mb for r in results.in_process if r.backend == backend and r.n == TARGET_MEMORY_N]
    if peaks:
        lines.append(f"  {verdict(max(peaks) < TARGET_MEMORY_MB)} {backend}: peak memory at {TARGET_MEMORY_N:,} "
                     f"hosts under {TARGET_MEMORY_MB:.0f} MB: {max(peaks):.0f} MB")
    else:
        lines.append(f"  n/a  {backend}: peak memory at {TARGET_MEMORY_N:,} hosts (size not run)")
    for run in results.processes:
        if run.backend == backend and (run.counts.failed or run.counts.degraded):
            lines.append(f"  WARN {backend}: {run.n:,} hosts round {run.run}: {run.counts.failed} failed, "
                         f"{run.counts.degraded} degraded on loopback (all should answer)")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,10000", help="host counts (default 1000,5000,10000)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (fping + netwatch) per size (default 5)")
    parser.add_argument("--version-runs", type=int, default=10, help="`netwatch --version` runs (default 10)")
    parser.add_argument("--no-in-process", dest="in_process", action="store_false",
                        help="skip the in-process runs (statement counts)")
    parser.add_argument("--netwatch", type=Path, default=NETWATCH, help=f"the command to time (default {NETWATCH})")
    parser.add_argument("--timeout", type=float, default=120.0, help="limit per process, s (default 120)")
    parser.add_argument("--socket", default="auto", choices=("auto", "raw", "datagram"),
                        help="the config's ping.socket (default auto)")
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE,
                        help=f"packets/s of netwatch (ping.rate_limit_pps) and fping (-i 1000/rate ms) "
                             f"(default {DEFAULT_RATE:,}; at most 100,000, the config's limit)")
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
    if args.repeat < 1 or args.version_runs < 1:
        parser.error("--repeat and --version-runs: at least 1")
    if not 1 <= args.rate <= 100_000:
        parser.error("--rate: between 1 and 100,000 packets/s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("needs root: fping and raw ICMP sockets", file=sys.stderr)
        return 77
    results = Results()
    measure(args, results)
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
