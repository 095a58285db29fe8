"""The reliability matrix in the suite: a cell per job and per kind of disturbance (tests/reliability.py).

Each cell disturbs one real `netwatch run JOB` process on a MariaDB database of its own (SIGTERM,
SIGKILL, the database server killed and started again, an API answering 429 / 503 / slowly / not
at all), runs the job again until it converges, and compares with the job's undisturbed run: the
same state, every event delivered once, no Idempotency-Key with two bodies. The suite runs the
cells below (one of each kind, each job at least once) and prints them at the end of the session
(`reliability matrix`, tests/conftest.py); `bench/reliability.py` runs and prints all of them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import privatedb
import pytest
import reliability
from reliability import Databases, Disturbance, Snapshot
from sqlalchemy import text
from sqlalchemy.engine import Engine

SUITE_CELLS = [
    ("ping-sweep", "SIGKILL during delivery"),
    ("http-check", "SIGTERM before commit"),
    ("event-scan", "SIGKILL in commit"),
    ("alert-clear", "API 429 + Retry-After"),
    ("http-check", "db restart during delivery"),
]
_BY_NAME = {d.name: d for d in reliability.DISTURBANCES}
_counter = itertools.count()


@pytest.fixture(scope="module")
def shared_databases(mysql_admin: Engine) -> Iterator[Databases]:
    """Cells' databases on the shared server (named like conftest's), dropped when the module ends."""
    prefix = f"{os.environ.get('NETWATCH_TEST_DB_PREFIX', 'nwt')}_{os.getpid()}_rm{next(_counter)}"
    made: list[str] = []

    def create(name: str) -> str:
        with mysql_admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        made.append(name)
        return str(mysql_admin.url.set(database=name).render_as_string(hide_password=False))

    yield Databases(create, prefix)
    with mysql_admin.begin() as conn:
        for name in made:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[privatedb.PrivateMariaDB]:
    reason = privatedb.unavailable_reason()
    if reason is not None:
        if os.environ.get("NETWATCH_REQUIRE_MYSQL") == "1":
            pytest.fail(f"{reason} (NETWATCH_REQUIRE_MYSQL=1: the database restart and outage cells must run)")
        pytest.skip(reason)
    with privatedb.PrivateMariaDB(tmp_path_factory.mktemp("private-mariadb")) as server:
        yield server


@pytest.fixture(scope="module")
def references() -> dict[str, Snapshot]:
    """Each job's undisturbed snapshot, made once per module on first use."""
    return {}


@pytest.mark.mysql
@pytest.mark.parametrize(("job", "disturbance"), SUITE_CELLS, ids=[f"{j}/{d}" for j, d in SUITE_CELLS])
def test_a_disturbed_job_converges_to_its_undisturbed_state(
    job: str, disturbance: str, shared_databases: Databases, references: dict[str, Snapshot],
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None], tmp_path: Path,
) -> None:
    cell: Disturbance = _BY_NAME[disturbance]
    scenario = reliability.SCENARIOS[job]
    databases = shared_databases
    if cell.private_server:
        databases = Databases(shared_databases.shared, shared_databases.prefix,
                              request.getfixturevalue("private_server"))
    if job not in references:
        references[job] = reliability.reference(scenario, tmp_path / "reference", databases.new(on_private=False))

    result = reliability.run_cell(scenario, cell, tmp_path / "cell", databases, references[job])

    record_property("reliability_cell", result.line())
    assert result.ok, result.line()
    assert result.delivered >= result.expected > 0


def test_the_matrix_covers_every_job_and_disturbance() -> None:
    cells = reliability.all_cells()
    assert {job for job, _ in cells} == {"ping-sweep", "http-check", "event-scan", "alert-clear"}
    points = ("before commit", "in commit", "after commit", "during delivery")
    assert {d.name for _, d in cells} == (
        {f"{signal} {point}" for signal in ("SIGTERM", "SIGKILL") for point in points}
        | {f"db {what} {point}" for what in ("restart", "down") for point in points if point != "after commit"}
        | {"API 429 + Retry-After", "API 503", "API slow", "API refused"})
    assert len(cells) == len({(j, d.name) for j, d in cells}) == 4 * 18
    assert all(d in _BY_NAME for _, d in SUITE_CELLS)


def test_the_printed_line_names_a_failure_and_its_counts() -> None:
    failed = reliability.CellResult("ping-sweep", "SIGKILL during delivery", disturbed_exit=-9, runs_to_converge=None,
                                    expected=3, delivered=2, problems=["events lost: [x]"])
    table = reliability.matrix_table([failed])
    assert table.splitlines()[0] == reliability.HEADER
    line = table.splitlines()[1]
    assert "   -9 freed      -    3/2   " in line and line.endswith("FAIL: events lost: [x]")
    assert table.splitlines()[-1] == "1 cells, 0 converged, 1 failed"
