"""Benchmark of HTTPS service checks: N checks against a loopback HTTPS server that answers after 50 ms.

The server (bench/_https_server.py, asyncio) runs in its own process with a certificate made here
by trustme, so its CPU is not counted as the checks'. Each round runs the measured command in a
fresh process: today bench/_http_check_driver.py, one pass of netwatch.probes.http.check_http over N
checks (every check its own connection and TLS handshake, verified against the bench CA, with the
certificate's days left judged). Once the http-check job exists, `measured_command` is the one place
to change: `netwatch run http-check --config FILE` over the same N checks (the times then include
the job's start and its database writes).

`--plain` runs the same over plain HTTP (no certificate, no handshake): the difference is what
TLS costs the checks and the server.

Per round: wall time of the process (spawn to exit) and of the pass alone, CPU of the process and
of the pass (user + sys, every thread), the server's CPU meanwhile, peak RSS of the process, and the
results by status. The physical limit is ceil(N / concurrency) x the server's delay: no pass can be
faster. Printed with PASS/MISS against the target (the pass under 3 s at 1,000 checks, concurrency
50); nothing is asserted. Sends only to 127.0.0.1.

    .venv/bin/python bench/http_check.py --checks 1000 --concurrency 50 --delay-ms 50 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import trustme
from _process import run_timed, stop_server

HERE = Path(__file__).resolve().parent
SERVER = HERE / "_https_server.py"
DRIVER = HERE / "_http_check_driver.py"
TARGET_S = 3.0
SERVER_START_S = 30.0
ROUND_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Server:
    url: str
    process: psutil.Process


@dataclass(frozen=True)
class Round:
    number: int
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_mb: float
    server_cpu_s: float
    report: dict[str, Any]


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


def measured_command(server: Server, ca_file: Path, args: argparse.Namespace) -> list[str]:
    """What a round runs and times: one pass of the probe today, the whole http-check job later."""
    return [sys.executable, str(DRIVER), "--url", server.url, "--ca-file", str(ca_file),
            "--checks", str(args.checks), "--concurrency", str(args.concurrency)]


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure(args: argparse.Namespace, directory: Path) -> list[Round]:
    rounds = []
    with https_server(directory, args.delay_ms, args.plain) as (server, ca_file):
        command = measured_command(server, ca_file, args)
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        for number in range(1, args.rounds + 1):
            server_cpu = cpu_of(server.process)
            timed = run_timed(command, env, ROUND_TIMEOUT_S, directory, f"round-{number}")
            server_cpu = cpu_of(server.process) - server_cpu
            lines = timed.stdout.strip().splitlines()
            report = json.loads(lines[-1]) if timed.exit_code == 0 and lines else {"error": timed.stderr[-400:]}
            rounds.append(Round(number, timed.exit_code, timed.wall_s, timed.cpu_s, timed.peak_mb, server_cpu, report))
            print(f"... round {number}: {timed.wall_s:.2f} s", file=sys.stderr, flush=True)
    return rounds


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def report(args: argparse.Namespace, rounds: Sequence[Round]) -> None:
    limit_s = math.ceil(args.checks / args.concurrency) * args.delay_ms / 1000
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    kind = "HTTP" if args.plain else "HTTPS"
    print(f"netwatch {kind} checks: {args.checks:,} checks, concurrency {args.concurrency}, loopback {kind} server "
          f"answering after {args.delay_ms:g} ms (asyncio, own process); {os.cpu_count()} cores, load {load}")
    print("process = the measured command from spawn to exit (os.wait4: its CPU and peak RSS); pass = check_http "
          "alone; server CPU = the server process meanwhile")
    print()
    header = ["round", "process s", "pass s", "process CPU s", "pass CPU s", "server CPU s", "peak MB", "results",
              "exit"]
    rows = []
    for item in rounds:
        statuses = item.report.get("statuses", {})
        rows.append([
            str(item.number), f"{item.wall_s:.2f}", f"{item.report.get('pass_s', float('nan')):.2f}",
            f"{item.cpu_s:.2f}", f"{item.report.get('pass_cpu_s', float('nan')):.2f}", f"{item.server_cpu_s:.2f}",
            f"{item.peak_mb:.0f}", " ".join(f"{k}={v}" for k, v in sorted(statuses.items())) or "-",
            str(item.exit_code),
        ])
    print("\n".join(table(header, rows)))
    print()
    passes = [item.report["pass_s"] for item in rounds if "pass_s" in item.report]
    all_ok = all(item.report.get("statuses") == {"ok": args.checks} for item in rounds)
    best = min(passes) if passes else float("nan")
    worst = max(passes) if passes else float("nan")
    verdict = "PASS" if passes and worst < TARGET_S and all_ok else "MISS"
    print(f"{verdict} pass time {best:.2f}-{worst:.2f} s (target < {TARGET_S:g} s; physical limit {limit_s:.2f} s = "
          f"ceil({args.checks} / {args.concurrency}) x {args.delay_ms:g} ms)")
    print(f"peak RSS {max(item.peak_mb for item in rounds):.0f} MB (the whole driver process)")
    for item in rounds:
        if item.report.get("reasons") or "error" in item.report:
            print(f"NOTE round {item.number}: {item.report.get('reasons') or item.report.get('error')}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plain", action="store_true", help="plain HTTP: what the checks cost without TLS")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netwatch-bench-http-") as directory:
        report(args, measure(args, Path(directory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
