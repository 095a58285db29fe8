"""The whole reliability matrix: every job under every disturbance, printed as a table.

    .venv/bin/python bench/reliability.py [--jobs ping-sweep,event-scan] [--only SIGKILL] [--workers 2]

Each cell (tests/reliability.py, where the cells, their hooks and their verdicts are described)
runs `netwatch run JOB` as real processes on a MariaDB database of its own on 127.0.0.1:3306
(`nw_reliability_<pid>_<n>`, dropped afterwards); the database restart and outage cells use a private
mariadbd started for this run (tests/privatedb.py), never the shared server. It prints one line
per cell (job, disturbance, exit code of the disturbed run, runs until converged, events
expected / delivered, keys sent more than once, keys sent with two bodies, events accepted twice,
verdict) and exits 1 when a cell failed. The suite runs a few of these cells
(tests/test_reliability_matrix.py); this runs all 72.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import privatedb
import pymysql
import reliability
from _databases import mysql_available, mysql_connect
from reliability import CellResult, Databases, Disturbance, Snapshot


def _shared(made: list[str]) -> Databases:
    def create(name: str) -> str:
        conn = mysql_connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        finally:
            conn.close()
        made.append(name)
        return f"mysql+pymysql://root@127.0.0.1:3306/{name}"

    return Databases(create, f"nw_reliability_{os.getpid()}")


def _drop(made: list[str]) -> None:
    """Drops the cells' databases; a server that does not answer then is named with what it keeps."""
    try:
        conn = mysql_connect()
        try:
            with conn.cursor() as cursor:
                for name in made:
                    cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            conn.close()
    except pymysql.MySQLError as exc:
        print(f"could not drop {', '.join(made)}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default=",".join(reliability.SCENARIOS), help="comma-separated jobs")
    parser.add_argument("--only", default="", help="only disturbances whose name contains this text")
    parser.add_argument("--workers", type=int, default=2, help="cells at once (the database cells run alone)")
    args = parser.parse_args(argv)
    problem = mysql_available()
    if problem is not None:
        print(f"MariaDB at 127.0.0.1:3306 is needed: {problem}", file=sys.stderr)
        return 1
    jobs = [job for job in args.jobs.split(",") if job]
    cells = [(job, d) for job, d in reliability.all_cells() if job in jobs and args.only in d.name]
    restarts = [cell for cell in cells if cell[1].private_server]
    if restarts and privatedb.unavailable_reason() is not None:
        print(f"database restart and outage cells skipped: {privatedb.unavailable_reason()}", file=sys.stderr)
        cells = [cell for cell in cells if cell not in restarts]
        restarts = []
    print(f"reliability matrix: {len(cells)} cells, load average {os.getloadavg()[0]:.2f}", flush=True)
    started = time.monotonic()
    made: list[str] = []
    databases = _shared(made)
    try:
        with tempfile.TemporaryDirectory(prefix="nw-reliability-") as tmp:
            root = Path(tmp)
            results = _run(cells, restarts, root, databases, args.workers)
    finally:
        _drop(made)
    print()
    print(reliability.matrix_table(results))
    print(f"took {time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.2f}")
    return 0 if all(r.ok for r in results) else 1


def _run(cells: list[tuple[str, Disturbance]], restarts: list[tuple[str, Disturbance]], root: Path,
         databases: Databases, workers: int) -> list[CellResult]:
    jobs = sorted({job for job, _ in cells}, key=list(reliability.SCENARIOS).index)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        refs: dict[str, Snapshot] = dict(zip(jobs, pool.map(
            lambda job: reliability.reference(reliability.SCENARIOS[job], root / f"ref-{job}",
                                              databases.new(on_private=False)), jobs), strict=True))

        def one(n: int, job: str, disturbance: Disturbance, dbs: Databases) -> CellResult:
            result = reliability.run_cell(reliability.SCENARIOS[job], disturbance, root / f"cell-{n}", dbs, refs[job])
            print(result.line(), flush=True)
            return result

        parallel = {n: pool.submit(one, n, job, d, databases)
                    for n, (job, d) in enumerate(cells) if (job, d) not in restarts}
        done = {n: future.result() for n, future in parallel.items()}
    if restarts:
        with privatedb.PrivateMariaDB(root / "private-mariadb") as server:
            private = Databases(databases.shared, databases.prefix, server)
            for n, (job, d) in enumerate(cells):
                if (job, d) in restarts:
                    done[n] = one(n, job, d, private)
    return [done[n] for n in sorted(done)]


if __name__ == "__main__":
    sys.exit(main())
