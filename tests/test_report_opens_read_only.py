"""Reports (`status`, `alerts`, `report ...`, `history`, `runs`, `outbox`) only read: they never create a database.

They used to open a missing SQLite file read-write, which created it empty, and then advised
`netwatch db init` without naming the database: wrong on SQLite, where the first job run creates
the schema. Now a report never creates the SQLite file and refuses to write to it, a missing one
is one line naming it and what creates it (78), and every schema message names the database.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inproc import InProcess, run_command
from jobkit import log_lines
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from netwatch.db.engine import build_engine

REPORTS = [["status"], ["alerts"], ["alerts", "log"], ["report", "uptime"], ["report", "incidents"],
           ["report", "daily"], ["history", "lo"], ["runs"], ["outbox"]]
CREATES_IT = "the first job run (`netwatch run ping-sweep`, `event-scan` or `alert-clear`) creates it"


def config_in(folder: Path, url: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    config = folder / "netwatch.yaml"
    database = f"database: {{url: '{url}'}}\n" if url else ""
    config.write_text(f"{database}hosts: [{{name: lo, address: 127.0.0.1}}]\n", encoding="utf-8")
    return config


@pytest.mark.parametrize("report", REPORTS, ids=" ".join)
def test_a_report_on_a_missing_sqlite_file_names_it_and_creates_nothing(tmp_path: Path, report: list[str]) -> None:
    config = config_in(tmp_path / "site")  # the default database: sqlite:///netwatch.db beside it

    done = run_command([*report, "--config", str(config)], dict(os.environ), cwd=tmp_path)

    assert done.returncode == 78
    assert log_lines(done.stderr) == [
        f"error: database.url: sqlite:///{tmp_path / 'site' / 'netwatch.db'}: no such database file; {CREATES_IT}"]
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["netwatch.yaml"]


def test_a_missing_file_named_by_the_environment_names_the_variable(tmp_path: Path) -> None:
    config = config_in(tmp_path / "site")
    env = {**os.environ, "NETWATCH_DATABASE_URL": "sqlite:///elsewhere.db"}

    done = run_command(["status", "--config", str(config)], env, cwd=tmp_path)

    assert done.returncode == 78
    assert log_lines(done.stderr) == [
        f"error: NETWATCH_DATABASE_URL: sqlite:///{tmp_path / 'elsewhere.db'}: no such database file; {CREATES_IT}"]
    assert not (tmp_path / "elsewhere.db").exists()


def test_an_empty_sqlite_file_is_left_empty_and_the_advice_fits_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "nw.db"
    database.touch(mode=0o600)
    config = config_in(tmp_path, f"sqlite:///{database}")

    done = run_command(["alerts", "--config", str(config)], dict(os.environ))

    assert done.returncode == 78
    assert log_lines(done.stderr) == [f"error: database sqlite:///{database} has no netwatch schema: the first job "
                                      "run creates it, or run `netwatch db init`"]
    assert database.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["netwatch.yaml", "nw.db"]


@pytest.mark.mysql
def test_a_mysql_database_without_the_schema_is_named_with_the_command_that_creates_it(
        tmp_path: Path, mysql_url: str) -> None:
    config = config_in(tmp_path)

    done = run_command(["status", "--config", str(config)], {**os.environ, "NETWATCH_DATABASE_URL": mysql_url})

    assert done.returncode == 78
    assert log_lines(done.stderr) == [f"error: database {mysql_url} has no netwatch schema: run `netwatch db init`"]


def test_a_report_reads_what_a_job_wrote_through_its_read_only_connection(nwi: InProcess) -> None:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}])
    assert nwi.sweep().returncode == 0

    status = nwi.run("status", "--json")
    alerts = nwi.run("alerts", "--json")

    assert status.returncode == 0 and alerts.returncode == 0, status.stderr + alerts.stderr
    assert '"name": "lo"' in status.stdout
    assert alerts.stdout == "[]\n"


def test_the_engine_of_a_report_cannot_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    writer = build_engine(url)
    with writer.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    writer.dispose()
    reader = build_engine(url, read_only=True)
    try:
        with pytest.raises(OperationalError, match="readonly database"), reader.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with reader.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        reader.dispose()


def test_a_report_leaves_no_file_behind(tmp_path: Path) -> None:
    """Not even SQLite's -wal and -shm files, which a connection opened with mode=ro could not remove."""
    config = config_in(tmp_path)
    assert run_command(["db", "init", "--config", str(config)], dict(os.environ)).returncode == 0
    before = sorted(p.name for p in tmp_path.iterdir())

    done = run_command(["alerts", "log", "--config", str(config)], dict(os.environ))

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["netwatch.db", "netwatch.yaml"]
