"""Benchmark of `netwatch run http-check` as a whole process: N HTTPS checks of a loopback server (50 ms).

The server (bench/_https_server.py, asyncio) runs in its own process with a certificate made here
by trustme, so its CPU is not counted as the job's. For each backend (a SQLite file, a MariaDB
database created and dropped here) and each N, a fresh database gets `netwatch db init`, then
`--rounds` rounds each run the real `netwatch run http-check --config FILE` (the console script of
this venv) over N checks of that server (`http_checks_file`, every check verified against the bench
CA as its `ca_file`, with the certificate's days left judged; `http.concurrency` as given). Each
round is timed as a whole process: wall time from spawn to exit, and CPU (user + sys) and peak RSS
of that child from `os.wait4`, so the numbers include the interpreter start, imports, config, the
checks, the database writes and the teardown. The job's own summary line gives its duration, its
results and the SQL statements the run sent (an executemany counts once).

Round 1 is the first run: it inserts the check rows. Later rounds update them; with the default
thresholds round 2 also confirms every check's first status (its transitions column), and from
round 3 on a run is the steady state that cron repeats. Rounds start at least 2 s apart: a run
whose clock falls in the same second as the previous run's keeps that run's raw checks
(netwatch/jobs/confirm.py) and so sends 3 statements fewer, which cron, a minute apart, never sees.
The physical limit of the checks is ceil(N / concurrency) x the server's delay: no run can be
faster. Printed with PASS/MISS against the targets of the issue (the whole job under 3 s at 1,000
checks, concurrency 50; statements per run the same at 100 and 1,000 checks); nothing is asserted.
`--plain` runs the same over plain HTTP (no certificate, no handshake): the difference is what TLS
costs. Sends only to 127.0.0.1.

    .venv/bin/python bench/http_check.py --checks 100,1000 --concurrency 50 --delay-ms 50 --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pymysql
import trustme
import yaml
from _databases import MYSQL_HOST, MYSQL_PORT, mysql_available, throwaway_database
from _process import Timed, child_env, failure, field_count, run_timed, stop_server, summary_fields

HERE = Path(__file__).resolve().parent
SERVER = HERE / "_https_server.py"
NETWATCH = Path(sys.executable).with_name("netwatch")
BACKENDS = ("sqlite", "mysql")
SUMMARY = "http-check finished"
TARGET_N, TARGET_S = 1000, 3.0
STATEMENT_SIZES = (100, 1000)
SERVER_START_S = 30.0
ROUND_TIMEOUT_S = 120.0
ROUND_SPACING_S = 2.0  # more than a second between two runs' clocks, whatever their start-up takes


@dataclass(frozen=True)
class Server:
    url: str
    process: psutil.Process


@dataclass(frozen=True)
class Round:
    """One `netwatch run http-check` process and what its summary line says."""

    backend: str
    n: int
    number: int
    timed: Timed
    server_cpu_s: float
    fields: dict[str, object]

    def count(self, key: str) -> int:
        return field_count(self.fields, key)

    @property
    def kind(self) -> str:
        """first (inserts the rows), steady (nothing changed) or changes (transitions recorded)."""
        if self.number == 1:
            return "first"
        return "changes" if self.count("transitions") or self.count("events") else "steady"

    @property
    def job_s(self) -> float | None:
        value = self.fields.get("duration_s")
        return value if isinstance(value, float) else None

    @property
    def all_ok(self) -> bool:
        return self.timed.exit_code == 0 and self.count("ok") == self.n


@contextmanager
def https_server(directory: Path, delay_ms: float, plain: bool) -> Iterator[tuple[Server, Path]]:
    """The loopback HTTPS (or HTTP) server and the CA file that verifies it; stopped (stdin closed, else killed)."""
    ca = trustme.CA()
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(key_file))
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(str(cert_file), append=True)
    with (directory / "server.log").open("w", encoding="utf-8") as log:
        tls = [] if plain else ["--cert", str(cert_file), "--key", str(key_file)]
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), *tls, "--delay-ms", str(delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], SERVER_START_S)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the HTTPS server did not start: see {directory / 'server.log'}")
        info = json.loads(line)
        scheme = "http" if plain else "https"
        yield Server(f"{scheme}://127.0.0.1:{info['port']}/", psutil.Process(info["pid"])), ca_file
    finally:
        stop_server(proc)


def write_checks(directory: Path, n: int, server: Server, ca_file: Path, plain: bool) -> Path:
    """The `http_checks_file` of N checks of the server: over HTTPS each verifies with the bench CA."""
    path = directory / f"checks-{n}.csv"
    tls_columns = [] if plain else ["ca_file", "cert_expiry_warning_days"]
    tls_values = [] if plain else [str(ca_file), "14"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "url", "client", "account", *tls_columns])
        for i in range(n):
            writer.writerow([f"site-{i:05d}", server.url, f"client-{i % 50}", str(1000 + i % 500), *tls_values])
    return path


def write_config(directory: Path, name: str, database_url: str, checks_csv: Path, concurrency: int) -> Path:
    """A config with the bench's checks and no Sigma/Segware (events stay undelivered)."""
    path = directory / f"{name}.yaml"
    data = {"database": {"url": database_url}, "http_checks_file": str(checks_csv),
            "http": {"concurrency": concurrency}}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure_rounds(args: argparse.Namespace, server: Server, backend: str, n: int, config: Path,
                   directory: Path, rounds: list[Round], notes: list[str]) -> None:
    """`netwatch db init`, then `--rounds` runs of `netwatch run http-check` on one database."""
    netwatch = str(args.netwatch)
    init = run_timed([netwatch, "db", "init", "--config", str(config)], child_env(), ROUND_TIMEOUT_S, directory,
                     f"init-{backend}-{n}")
    if init.exit_code != 0:
        notes.append(failure(f"{backend} {n} checks: netwatch db init", init))
        return
    previous = -math.inf
    for number in range(1, args.rounds + 1):
        time.sleep(max(0.0, previous + ROUND_SPACING_S - time.monotonic()))
        previous = time.monotonic()
        progress(f"{backend}, {n:,} checks, round {number}: netwatch run http-check")
        server_cpu = cpu_of(server.process)
        timed = run_timed([netwatch, "run", "http-check", "--config", str(config), "--log-format", "json"],
                          child_env(), ROUND_TIMEOUT_S, directory, f"check-{backend}-{n}-{number}")
        server_cpu = cpu_of(server.process) - server_cpu
        fields = summary_fields(timed.stderr, SUMMARY)
        if timed.exit_code != 0 or fields is None:
            notes.append(failure(f"{backend} {n} checks round {number}: netwatch run http-check", timed))
        rounds.append(Round(backend, n, number, timed, server_cpu, fields or {}))


def measure(args: argparse.Namespace, directory: Path) -> tuple[list[Round], list[str]]:
    rounds: list[Round] = []
    notes: list[str] = []
    backends = list(args.backends)
    if "mysql" in backends:
        problem = mysql_available()
        if problem is not None:
            notes.append(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} not reachable ({problem}): mysql rows skipped")
            backends.remove("mysql")
    with https_server(directory, args.delay_ms, args.plain) as (server, ca_file):
        for n in args.checks:
            checks_csv = write_checks(directory, n, server, ca_file, args.plain)
            for backend in backends:
                try:
                    with throwaway_database(backend, directory, "bench_http", str(n)) as url:
                        config = write_config(directory, f"{backend}-{n}", url, checks_csv, args.concurrency)
                        measure_rounds(args, server, backend, n, config, directory, rounds, notes)
                except pymysql.MySQLError as exc:
                    notes.append(f"{backend} {n} checks: FAILED: {exc}")
    return rounds, notes


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def results_of(item: Round) -> str:
    return " ".join(f"{key}={item.count(key)}" for key in ("ok", "degraded", "failed") if item.count(key)) or "-"


def report(args: argparse.Namespace, rounds: Sequence[Round], notes: Sequence[str], load: Sequence[str]) -> None:
    kind = "HTTP" if args.plain else "HTTPS"
    print(f"netwatch run http-check: {kind} checks, concurrency {args.concurrency}, loopback {kind} server answering "
          f"after {args.delay_ms:g} ms (asyncio, own process); {os.cpu_count()} cores; load average "
          + "; ".join(load))
    print(f"netwatch: {args.netwatch}; wall = spawn to exit; CPU and peak RSS of that process from os.wait4; "
          "job s = the summary line's duration_s; outside s = wall - job s; server CPU = the server process "
          "meanwhile; statements = the run's SQL statements (summary line)")
    print("kind: first = round 1, inserts the check rows; changes = records transitions (round 2 confirms "
          "every check's first status); steady = nothing changed, what cron repeats")
    print()
    header = ["backend", "N", "round", "kind", "wall s", "job s", "outside s", "CPU s", "server CPU s", "peak MB",
              "statements", "results", "transitions", "exit"]
    rows = [[
        item.backend, f"{item.n:,}", str(item.number), item.kind, seconds(item.timed.wall_s), seconds(item.job_s),
        seconds(item.timed.wall_s - item.job_s) if item.job_s is not None else "-", seconds(item.timed.cpu_s),
        seconds(item.server_cpu_s), f"{item.timed.peak_mb:.0f}", str(item.fields.get("statements", "-")),
        results_of(item), str(item.count("transitions")), str(item.timed.exit_code),
    ] for item in rounds]
    print("\n".join(table(header, rows)))
    print()
    for line in summary(args, rounds):
        print(line)
    for note in notes:
        print(f"NOTE {note}")


def verdict(good: bool) -> str:
    return "PASS" if good else "MISS"


def summary(args: argparse.Namespace, rounds: Sequence[Round]) -> list[str]:
    limit_s = math.ceil(TARGET_N / args.concurrency) * args.delay_ms / 1000
    lines = [f"targets (physical limit of the checks at {TARGET_N:,}: {limit_s:.2f} s = "
             f"ceil({TARGET_N} / {args.concurrency}) x {args.delay_ms:g} ms):"]
    for backend in sorted({item.backend for item in rounds}, key=BACKENDS.index):
        mine = [item for item in rounds if item.backend == backend]
        target = [item for item in mine if item.n == TARGET_N]
        if target:
            for label, chosen in (("first run", [r for r in target if r.kind == "first"]),
                                  ("later runs", [r for r in target if r.kind != "first"])):
                if not chosen:
                    continue
                walls = [r.timed.wall_s for r in chosen]
                good = max(walls) < TARGET_S and all(r.all_ok for r in chosen)
                lines.append(f"  {verdict(good)} {backend}: {TARGET_N:,} checks, {label}, whole job under "
                             f"{TARGET_S:g} s: {min(walls):.2f}-{max(walls):.2f} s"
                             + ("" if all(r.all_ok for r in chosen) else " (not every check ok)"))
            lines.append(f"  peak RSS {backend}, {TARGET_N:,} checks: {max(r.timed.peak_mb for r in target):.0f} MB")
        else:
            lines.append(f"  n/a  {backend}: {TARGET_N:,} checks (size not run)")
        small, large = ([r.fields.get("statements") for r in mine if r.n == size] for size in STATEMENT_SIZES)
        if small and large:
            lines.append(f"  {verdict(small == large)} {backend}: statements per run (round by round) equal at "
                         f"{STATEMENT_SIZES[0]:,} and {STATEMENT_SIZES[1]:,} checks: {small} vs {large}")
        else:
            lines.append(f"  n/a  {backend}: statements at {STATEMENT_SIZES[0]:,} vs {STATEMENT_SIZES[1]:,} checks "
                         "(size not run)")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", default="100,1000", help="check counts (default 100,1000)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="job runs per (backend, N) on one database (default 3)")
    parser.add_argument("--plain", action="store_true", help="plain HTTP: what the checks cost without TLS")
    parser.add_argument("--netwatch", type=Path, default=NETWATCH, help=f"the command to time (default {NETWATCH})")
    args = parser.parse_args(argv)
    try:
        args.checks = [int(size) for size in args.checks.split(",")]
    except ValueError:
        parser.error(f"--checks: expected comma-separated numbers, got {args.checks!r}")
    if not all(size >= 1 for size in args.checks):
        parser.error("--checks: each count must be at least 1")
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or any(name not in BACKENDS for name in args.backends):
        parser.error(f"--backends: choose from {','.join(BACKENDS)}")
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    return args


def load_now(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"at {when} {one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = [load_now("start")]
    with tempfile.TemporaryDirectory(prefix="netwatch-bench-http-") as directory:
        rounds, notes = measure(args, Path(directory))
    load.append(load_now("end"))
    report(args, rounds, notes, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
