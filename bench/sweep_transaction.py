"""Benchmark of the ping-sweep transaction (issue 11): whole `netwatch run ping-sweep` processes over N
loopback hosts (127.x.y.z), this tree beside another checkout (`--before TREE`), rounds alternating.

Each (backend, tree) gets a fresh database and that tree's own `netwatch db init`; round 1 creates the
host rows, round 2 confirms every host's first status (up_after 2: 10,000 transitions, events and
notifications), and the rounds after it with no transition (the summary line's `transitions` is 0)
are the steady state cron repeats: the medians are over those, the table shows every round. Every run
is one process, `TREE/.venv/bin/python bench/_transaction_probe.py run ping-sweep --config FILE`:
netwatch.entry.main of that tree's venv (so its own netwatch, console-script behaviour included),
with two SQLAlchemy hooks that time every transaction from its BEGIN to its COMMIT done and count
its statements. The pass's transaction is the run's transaction with the most statements (the
lease, run-row and delivery ones have a handful). That outside clock is the same for every tree,
so it is the before/after comparison ("txn ms"); a tree that logs `commit_ms` (this one: the
transaction up to its COMMIT, README "commit_ms") has it printed beside, and it also counts the
connection checkout, so it reads a little higher. Commits before issue 11's work (4199dff) have no
`commit_ms` of their own: job duration minus sweep time is no substitute, because they log no
sweep time either.

Also per run: the job's `duration_s` from its JSON summary line, and the wall time of the process
from spawn to exit. The load average is printed with the numbers; other work on the machine slows
both trees alike, since the rounds alternate. PASS/MISS against the issue's target at 10,000 hosts:
the transaction under 0.5 s on SQLite and under 0.8 s on MariaDB. Nothing is asserted.

Needs root or a ping group (ICMP) and, for mysql, MariaDB on 127.0.0.1:3306. Sends only to
127.0.0.0/8. A before tree is a checkout with its own venv:

    git worktree add --detach /tmp/nw-before 4199dff && make -C /tmp/nw-before install
    sudo .venv/bin/python bench/sweep_transaction.py --before /tmp/nw-before --hosts 10000 --rounds 5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import yaml
from _databases import MYSQL_HOST, MYSQL_PORT, mysql_available, throwaway_database
from _process import child_env, failure, run_timed, summary_fields

PROBE = Path(__file__).with_name("_transaction_probe.py")
BACKENDS = ("sqlite", "mysql")
TARGET_N = 10_000
TARGET_S = {"sqlite": 0.5, "mysql": 0.8}
PING = {"count": 3, "interval_ms": 10, "timeout_seconds": 1.0, "rate_limit_pps": 10_000, "retries": 1}
SUMMARY = "ping-sweep finished"


@dataclass(frozen=True)
class Round:
    backend: str
    tree: str
    number: int
    txn_ms: float | None  # the probe's clock: the pass's transaction, BEGIN to COMMIT done
    statements: int | None
    commit_ms: float | None  # the run's own count, where the tree has it
    transitions: int | None
    job_s: float | None
    wall_s: float
    ok: int
    failed: int


def loopback_address(index: int) -> str:
    """127.1.0.1, ..., 127.1.0.254, 127.1.1.1, ... (no .0 or .255), as bench/ping_sweep.py's."""
    block, host = divmod(index, 254)
    return f"127.{1 + block // 256}.{block % 256}.{host + 1}"


def write_hosts(directory: Path, n: int) -> Path:
    path = directory / f"hosts-{n}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "address", "account", "partition", "zone"])
        for i in range(n):
            writer.writerow([f"bench-{i:05d}", loopback_address(i), str(1000 + i % 500), "01", f"{i % 1000:03d}"])
    return path


def write_config(directory: Path, name: str, url: str, hosts_csv: Path) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": url}, "ping": PING, "hosts_file": str(hosts_csv)},
                                   sort_keys=False), encoding="utf-8")
    return path


def run_round(python: str, config: Path, backend: str, tree: str, number: int, directory: Path,
              timeout_s: float, notes: list[str]) -> Round:
    tag = f"{backend}-{tree}-{number}"
    transactions = directory / f"{tag}.transactions"
    env = {**child_env(), "NETWATCH_BENCH_TRANSACTIONS": str(transactions)}
    timed = run_timed([python, str(PROBE), "run", "ping-sweep", "--config", str(config), "--log-format", "json"],
                      env, timeout_s, directory, tag)
    fields = summary_fields(timed.stderr, SUMMARY) or {}
    if timed.exit_code != 0 or not fields:
        notes.append(failure(f"{backend} {tree} round {number}", timed))
    lines = transactions.read_text(encoding="utf-8").splitlines() if transactions.exists() else []
    biggest = max((json.loads(line) for line in lines), key=lambda t: t["statements"], default=None)
    number_of = {key: value for key, value in fields.items() if isinstance(value, int | float)}
    return Round(backend, tree, number, biggest["ms"] if biggest else None,
                 biggest["statements"] if biggest else None, number_of.get("commit_ms"),
                 number_of.get("transitions"), number_of.get("duration_s"), timed.wall_s,
                 int(number_of.get("ok", 0)), int(number_of.get("failed", 0)))


def measure(args: argparse.Namespace, trees: dict[str, str], notes: list[str]) -> list[Round]:
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="nw-txn-bench-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        hosts_csv = write_hosts(directory, args.hosts)
        configs = {}
        for backend in args.backends:
            for tree, python in trees.items():
                url = stack.enter_context(throwaway_database(backend, directory, f"txn_{tree}", str(args.hosts)))
                config = write_config(directory, f"{backend}-{tree}", url, hosts_csv)
                netwatch = str(Path(python).with_name("netwatch"))
                init = run_timed([netwatch, "db", "init", "--config", str(config)], child_env(), args.timeout,
                                 directory, f"init-{backend}-{tree}")
                if init.exit_code != 0:
                    notes.append(failure(f"{backend} {tree}: netwatch db init", init))
                    continue
                configs[backend, tree] = config
        for number in range(1, args.rounds + 1):
            for backend in args.backends:
                for tree, python in trees.items():
                    if (backend, tree) not in configs:
                        continue
                    print(f"... round {number}: {backend}, {tree}", file=sys.stderr, flush=True)
                    rounds.append(run_round(python, configs[backend, tree], backend, tree, number, directory,
                                            args.timeout, notes))
    return rounds


def is_steady(run: Round) -> bool:
    """A round after the first that confirmed no change: what cron repeats."""
    return run.number > 1 and run.transitions == 0


def median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def number(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def report(args: argparse.Namespace, trees: dict[str, str], rounds: list[Round], notes: list[str],
           loads: list[tuple[str, tuple[float, float, float]]]) -> None:
    print(f"ping-sweep transaction benchmark: {args.hosts:,} loopback hosts, ping {PING}; {os.cpu_count()} CPUs; "
          + "; ".join(f"load average at {when}: {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in loads))
    print("trees: " + "; ".join(f"{tree} = {python}" for tree, python in trees.items()))
    print("txn s = the pass's transaction, BEGIN to COMMIT done (bench/_transaction_probe.py); commit_ms = the "
          "run's own count (where the tree has it); job s = summary duration_s; wall s = spawn to exit")
    rows = [[r.backend, r.tree, str(r.number), number(r.txn_ms, 1e-3), str(r.statements or "-"),
             number(r.commit_ms, 1e-3), number(r.job_s), number(r.wall_s), f"{r.ok}/{r.failed}",
             "-" if r.transitions is None else str(r.transitions)] for r in rounds]
    print("\n".join(table(["backend", "tree", "round", "txn s", "statements", "commit_ms s", "job s", "wall s",
                           "ok/failed", "transitions"], rows)))
    print()
    print("medians of the steady rounds (after the first, no transition):")
    rows = []
    for backend in args.backends:
        for tree in trees:
            steady = [r for r in rounds if r.backend == backend and r.tree == tree and is_steady(r)]
            rows.append([backend, tree, str(len(steady)), number(median([r.txn_ms for r in steady]), 1e-3),
                         number(median([r.commit_ms for r in steady]), 1e-3),
                         number(median([r.job_s for r in steady])), number(median([r.wall_s for r in steady]))])
    print("\n".join(table(["backend", "tree", "rounds", "txn s", "commit_ms s", "job s", "wall s"], rows)))
    print()
    print(f"target at {TARGET_N:,} hosts (median txn s of the steady rounds):")
    for backend in args.backends:
        for tree in trees:
            steady = [r.txn_ms for r in rounds if r.backend == backend and r.tree == tree and is_steady(r)]
            value = median(steady)
            if value is None or args.hosts != TARGET_N:
                print(f"  n/a  {backend} {tree}: not measured at {TARGET_N:,} hosts")
                continue
            verdict = "PASS" if value / 1000 < TARGET_S[backend] else "MISS"
            print(f"  {verdict} {backend} {tree}: transaction under {TARGET_S[backend]} s: {value / 1000:.3f} s")
    for r in rounds:
        if r.failed:
            print(f"WARN {r.backend} {r.tree} round {r.number}: {r.failed} hosts failed on loopback")
    for note in notes:
        print(f"NOTE {note}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=TARGET_N, help=f"loopback hosts (default {TARGET_N:,})")
    parser.add_argument("--rounds", type=int, default=5, help="runs per backend and tree; the first creates "
                        "the rows, the second confirms them (default 5, at least 3)")
    parser.add_argument("--backends", default="sqlite,mysql", help="sqlite and/or mysql (default both)")
    parser.add_argument("--before", type=Path, help="another checkout with its own .venv, timed beside this one")
    parser.add_argument("--timeout", type=float, default=120.0, help="limit per process, s (default 120)")
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or any(name not in BACKENDS for name in args.backends):
        parser.error(f"--backends: choose from {','.join(BACKENDS)}")
    if args.rounds < 3:
        parser.error("--rounds: at least 3 (round 1 creates the rows, round 2 confirms their first status)")
    if not 1 <= args.hosts <= 254 * 256 * 254:
        parser.error("--hosts: between 1 and 16,516,096")
    if args.before and not (args.before / ".venv" / "bin" / "python").exists():
        parser.error(f"--before: {args.before}/.venv/bin/python not found (run make install there)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    if "mysql" in args.backends and (problem := mysql_available()) is not None:
        notes.append(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} not reachable ({problem}): mysql skipped")
        args.backends.remove("mysql")
    trees = {"after": sys.executable}
    if args.before:
        trees = {"before": str(args.before / ".venv" / "bin" / "python"), **trees}
    loads = [("start", os.getloadavg())]
    rounds = measure(args, trees, notes)
    loads.append(("end", os.getloadavg()))
    report(args, trees, rounds, notes, loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
