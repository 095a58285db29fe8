"""Benchmark of the scale-out: N loopback hosts swept as 1, 2 and 4 shards at once, whole processes.

For each backend and shard count K, a fresh database gets `netwatch db init`, then `--rounds`
rounds: each starts K `netwatch run ping-sweep` processes at the same moment, as the K pods of an
Indexed Job (`JOB_COMPLETION_INDEX` 0..K-1 and `NETWATCH_SHARDS`=K in their environment), and waits
for all. Printed per round: the whole wall time (first start to last exit) and each shard's wall
time, CPU, hosts and the job's own `duration_s`; then the medians of the steady state (round 1
creates the host rows). The config's `ping.rate_limit_pps` is the total: each shard sweeps at 1/K
of it, so the sending part takes N x count / rate whatever K (printed as the physical limit), and
what K divides is the rest: per-host work and the database writes of each shard. The load average
is printed: other work on the machine slows every side. Nothing is asserted.

Needs root (raw ICMP). Sends only to 127.0.0.0/8.

    sudo .venv/bin/python bench/scale_out.py --hosts 40000 --shards 1,2,4 --backends sqlite,mysql --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from _databases import throwaway_database
from _process import Timed, child_env, failure, run_timed, summary_fields
from ping_sweep import NETWATCH, PING, SUMMARY, write_targets

RATE_PPS = 40_000


def sweep_shards(config: Path, shards: int, log_dir: Path, tag: str, timeout_s: float) -> tuple[float, list[Timed]]:
    """Starts the `shards` processes at once and waits for all: the whole wall time and each one's."""
    command = [str(NETWATCH), "--log-format", "json", "run", "ping-sweep", "--config", str(config)]

    def one(index: int) -> Timed:
        env = {**child_env(), "JOB_COMPLETION_INDEX": str(index), "NETWATCH_SHARDS": str(shards)}
        return run_timed(command, env, timeout_s, log_dir, f"{tag}-{index}")

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=shards) as pool:
        runs = list(pool.map(one, range(shards)))
    return time.perf_counter() - began, runs


def measure(backend: str, hosts: int, shards: int, rounds: int, directory: Path, hosts_csv: Path,
            timeout_s: float) -> list[float]:
    """The whole wall time of each round (prints each round's line); a failed process ends the series."""
    walls: list[float] = []
    with throwaway_database(backend, directory, "bench_scale", f"{shards}") as url:
        config = directory / f"{backend}-{shards}.yaml"
        ping = {**PING, "rate_limit_pps": RATE_PPS}
        config.write_text(yaml.safe_dump({"database": {"url": url}, "ping": ping, "hosts_file": str(hosts_csv)}),
                          encoding="utf-8")
        init = subprocess.run([str(NETWATCH), "db", "init", "--config", str(config)], env=child_env(),
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        if init.returncode != 0:
            print(f"  {backend} K={shards}: db init exited {init.returncode}: {init.stderr.strip()[-200:]}")
            return walls
        for number in range(1, rounds + 1):
            wall, runs = sweep_shards(config, shards, directory, f"{backend}-{shards}-{number}", timeout_s)
            failed = [failure(f"shard {i}", run) for i, run in enumerate(runs) if run.exit_code != 0]
            if failed:
                print(f"  {backend} K={shards} round {number}: " + "; ".join(failed))
                return walls
            walls.append(wall)
            parts = []
            for index, run in enumerate(runs):
                fields = summary_fields(run.stderr, SUMMARY) or {}
                parts.append(f"#{index} {run.wall_s:.2f} s (cpu {run.cpu_s:.2f}, {fields.get('hosts')} hosts, "
                             f"job {fields.get('duration_s')} s)")
            print(f"  {backend} K={shards} round {number}: whole {wall:.2f} s | " + " | ".join(parts), flush=True)
    return walls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=40_000, help="loopback hosts (default 40000)")
    parser.add_argument("--shards", default="1,2,4", help="shard counts (default 1,2,4)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per shard count (default 3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="limit per process, s (default 300)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (raw ICMP)", file=sys.stderr)
        return 2
    limit = args.hosts * PING["count"] / RATE_PPS
    print(f"{args.hosts} hosts, count {PING['count']}, {RATE_PPS} packets/s in all: sending takes at least "
          f"{limit:.2f} s whatever the shards; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="nw-bench-scale-") as name:
        directory = Path(name)
        hosts_csv, _targets = write_targets(directory, args.hosts)
        for backend in args.backends.split(","):
            for shards in (int(text) for text in args.shards.split(",")):
                walls = measure(backend, args.hosts, shards, args.rounds, directory, hosts_csv, args.timeout)
                steady = walls[1:] or walls
                if steady:
                    print(f"{backend} K={shards}: whole wall, median of rounds 2+: {statistics.median(steady):.2f} s "
                          f"(first round {walls[0]:.2f} s)", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
