"""Benchmark of the ICMP sweep engine alone: `sweep()` in process, loopback hosts, several packet rates.

Each measurement is one fresh worker interpreter (this file with `--worker`) that builds N loopback
targets (127.1.x.y, as bench/ping_sweep.py's `loopback_address`) and times one `sweep()` over a raw
socket: wall time around the call, and the process's CPU (user + sys, getrusage) spent inside it.
`--before TREE` (repeatable) also times the engine of another checkout (TREE/.venv/bin/python runs this
same file, so it imports TREE's netwatch, which that venv installed in editable mode), named by its
folder: the rounds alternate between the trees so all see the same load. Medians of `--repeat` rounds (at least 3).

The physical limit of a sweep is the time its packets need at the rate: N x count / rate (or
(count - 1) x interval when that is longer), plus, when a request went unanswered, its timeout and
the engine's 2 ms grace (the engine ends when every request is answered or expired; on loopback all
are answered, so it ends on the last reply). ratio = wall / limit.

Needs root (raw ICMP socket). Sends only to 127.0.0.0/8. The machine's load average is printed with
the numbers; CPU time per packet is the figure least disturbed by other work on the machine.

    sudo .venv/bin/python bench/sweep_engine.py --before /work/wt-engine-before --rates 10000,25000,50000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

COUNT, INTERVAL_S, TIMEOUT_S = 3, 0.01, 1.0
EXPIRY_GRACE_S = 0.002  # the engine's _EXPIRY_GRACE_S: a lost request ends the sweep this long after its timeout
TARGET_RATIO_RATE, TARGET_RATIO = 10_000, 1.05
TARGET_RATE, TARGET_CPU_PERCENT = 50_000, 90.0  # "CPU to spare": clearly below one core
HERE = Path(__file__).resolve()
AFTER = HERE.parents[1]


@dataclass(frozen=True)
class Measurement:
    tree: str
    rate: int
    hosts: int
    wall_s: float
    cpu_s: float
    sent: int
    received: int
    hosts_ok: int
    hosts_lost: int

    @property
    def limit_s(self) -> float:
        return physical_limit_s(self.hosts, self.rate, lost=self.sent > self.received)

    @property
    def pps(self) -> float:
        return self.sent / self.wall_s

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_s / self.wall_s

    @property
    def cpu_us_per_packet(self) -> float:
        return 1e6 * self.cpu_s / max(self.sent, 1)


def physical_limit_s(hosts: int, rate: int, lost: bool) -> float:
    """The least time a sweep of `hosts` x COUNT requests at `rate` packets/s can take (see the module text)."""
    sending = max(hosts * COUNT / rate, (COUNT - 1) * INTERVAL_S)
    return sending + (TIMEOUT_S + EXPIRY_GRACE_S if lost else 0.0)


def loopback_address(index: int) -> str:
    """The index-th bench address: 127.1.0.1, ..., 127.1.0.254, 127.1.1.1, ... (bench/ping_sweep.py's)."""
    block, host = divmod(index, 254)
    return f"127.{1 + block // 256}.{block % 256}.{host + 1}"


def work(hosts: int, rate: int) -> dict[str, float | int]:
    """One sweep in this interpreter (the worker): its wall and CPU time and what came back."""
    from netwatch.probes.icmp import RAW, PingSettings, Target, sweep

    targets = [Target(f"bench-{i}", loopback_address(i)) for i in range(hosts)]
    settings = PingSettings(count=COUNT, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S, retries=0, rate_pps=rate,
                            socket=RAW)
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    results = sweep(targets, settings)
    wall_s = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall_s, "cpu_s": cpu_s, "sent": sum(r.sent for r in results.values()),
            "received": sum(r.received for r in results.values()),
            "hosts_ok": sum(1 for r in results.values() if r.received == r.sent == COUNT),
            "hosts_lost": sum(1 for r in results.values() if r.received < COUNT)}


def measure(tree: str, python: str, hosts: int, rate: int) -> Measurement:
    done = subprocess.run([python, str(HERE), "--worker", "--hosts", str(hosts), "--rates", str(rate)],
                          capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{tree} worker at {rate}/s failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return Measurement(tree, rate, hosts, **json.loads(done.stdout))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def report(runs: list[Measurement], trees: list[str], rates: list[int], loads: list[tuple[str, tuple]]) -> None:
    print(f"sweep engine benchmark: sweep() in process, raw socket, loopback 127.1.x.y, count {COUNT}, interval "
          f"{INTERVAL_S * 1000:.0f} ms, timeout {TIMEOUT_S:.0f} s, retries 0; {os.cpu_count()} CPUs; "
          + "; ".join(f"load average at {when}: {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in loads))
    print("limit = N x count / rate (+ timeout + 2 ms grace if a request was lost); ratio = wall / limit; "
          "CPU = user + sys of the worker inside sweep(); medians over rounds, each round one fresh worker")
    rows = []
    for rate in rates:
        for tree in trees:
            mine = [r for r in runs if r.tree == tree and r.rate == rate]
            if not mine:
                continue
            rows.append([
                tree, f"{rate:,}", f"{mine[0].hosts:,}", str(len(mine)), f"{median([r.pps for r in mine]):,.0f}",
                f"{median([r.wall_s for r in mine]):.3f}", f"{median([r.limit_s for r in mine]):.3f}",
                f"{median([r.wall_s / r.limit_s for r in mine]):.3f}", f"{median([r.cpu_s for r in mine]):.3f}",
                f"{median([r.cpu_percent for r in mine]):.0f}", f"{median([r.cpu_us_per_packet for r in mine]):.1f}",
                f"{sum(r.received for r in mine)}/{sum(r.sent - r.received for r in mine)}",
                f"{max(r.hosts_lost for r in mine)}",
            ])
    header = ["tree", "rate/s", "N", "rounds", "achieved pps", "wall s", "limit s", "ratio", "CPU s", "CPU %core",
              "CPU us/pkt", "replies ok/lost", "hosts lost (max)"]
    print("\n".join(table(header, rows)))
    print()
    print("targets (medians):")
    for tree in trees:
        print("\n".join(f"  {line}" for line in verdicts(tree, runs)))


def verdicts(tree: str, runs: list[Measurement]) -> list[str]:
    lines = []
    paced = [r for r in runs if r.tree == tree and r.rate == TARGET_RATIO_RATE]
    if paced:
        ratio = median([r.wall_s / r.limit_s for r in paced])
        lines.append(f"{'PASS' if ratio <= TARGET_RATIO else 'MISS'} {tree}: at {TARGET_RATIO_RATE:,}/s within "
                     f"{100 * (TARGET_RATIO - 1):.0f} % of the physical limit: ratio {ratio:.3f}")
    fast = [r for r in runs if r.tree == tree and r.rate == TARGET_RATE]
    if fast:
        pps, cpu = median([r.pps for r in fast]), median([r.cpu_percent for r in fast])
        lost = sum(r.sent - r.received for r in fast)
        good = pps >= 0.95 * TARGET_RATE and cpu < TARGET_CPU_PERCENT and lost == 0
        lines.append(f"{'PASS' if good else 'MISS'} {tree}: {TARGET_RATE:,}/s sustained with CPU to spare "
                     f"(>= 95 % of the rate, under {TARGET_CPU_PERCENT:.0f} % of a core, no reply lost): "
                     f"{pps:,.0f} pps at {cpu:.0f} % of a core, {lost} lost")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="10000,25000,50000", help="packets/s (default 10000,25000,50000)")
    parser.add_argument("--hosts", type=int, default=0,
                        help="hosts per sweep (default: as many as the rate, so each sweep sends for 3 s)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per tree and rate (default 3, at least 3)")
    parser.add_argument("--before", type=Path, action="append", default=[],
                        help="another checkout with its own .venv, timed beside this one (repeatable)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.rates = [int(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: expected comma-separated numbers, got {args.rates!r}")
    if any(rate < 1 for rate in args.rates) or args.hosts < 0:
        parser.error("--rates must be positive and --hosts at least 0")
    if any((args.hosts or rate) > 254 * 256 * 254 for rate in args.rates):
        parser.error("too many hosts for 127.1.0.0 - 127.254.255.255")
    if args.repeat < 3 and not args.worker:
        parser.error("--repeat: at least 3")
    # Resolved, so that `--before .` or `..` is named by its folder, not "" or "..".
    args.before = [tree.resolve() for tree in args.before]
    for tree in args.before:
        if not (tree / ".venv" / "bin" / "python").exists():
            parser.error(f"--before: {tree}/.venv/bin/python not found (run make install there)")
    if len({tree.name for tree in args.before} | {"after"}) != len(args.before) + 1:
        parser.error("--before: each tree's folder needs a name of its own (and not \"after\")")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("needs root: raw ICMP sockets", file=sys.stderr)
        return 77
    if args.worker:
        print(json.dumps(work(args.hosts or args.rates[0], args.rates[0])))
        return 0
    trees = {tree.name: str(tree / ".venv" / "bin" / "python") for tree in args.before}
    trees["after"] = sys.executable
    loads = [("start", os.getloadavg())]
    runs = []
    for round_number in range(1, args.repeat + 1):
        for rate in args.rates:
            for tree, python in trees.items():
                print(f"... round {round_number}: {tree} at {rate:,}/s", file=sys.stderr, flush=True)
                runs.append(measure(tree, python, args.hosts or rate, rate))
    loads.append(("end", os.getloadavg()))
    report(runs, list(trees), args.rates, loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
