"""Where the database URL came from, and where its relative paths are taken from.

An error about a URL that NETWATCH_DATABASE_URL supplied names that variable, not the config file's
`database.url`. Relative paths in a URL (a SQLite file, a MySQL URL's ssl_ca / ssl_cert / ssl_key)
are the config file's neighbours when the file holds the URL, and the current directory's when
the environment does; either way the URL is shown, and used, with absolute paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from inproc import InProcess, run_command
from jobkit import log_lines
from sqlalchemy.engine import make_url

from netwatch.config import load_config

MYSQL = "mysql+pymysql://netwatch:db-password-1@127.0.0.1:1/netwatch"
HOSTS = [{"name": "lo", "address": "127.0.0.1"}]


def test_check_config_names_the_variable_without_the_config_file_before_it(nwi: InProcess) -> None:
    config = nwi.write_config(HOSTS)
    nwi.env["NETWATCH_DATABASE_URL"] = f"{MYSQL}?read_timeout=-1"

    done = nwi.run("check-config")

    problem = "read_timeout must be a whole number of seconds from 1 to 3600, got '-1'"
    assert done.returncode == 78
    assert log_lines(done.stderr) == [f"error: NETWATCH_DATABASE_URL: {problem}"]
    assert done.stdout.splitlines()[2] == f"ping-sweep: not ready: NETWATCH_DATABASE_URL: {problem}"
    nwi.env.pop("NETWATCH_DATABASE_URL")
    nwi.write_config(HOSTS, database={"url": f"{MYSQL}?read_timeout=-1"})
    assert log_lines(nwi.run("check-config").stderr) == [f"error: {config}: database.url: {problem}"]


@pytest.mark.mysql
@pytest.mark.parametrize("from_env", [True, False], ids=["environment", "file"])
def test_a_database_the_server_does_not_know_names_where_its_url_came_from(
        tmp_path: Path, mysql_url: str, from_env: bool) -> None:
    unknown = make_url(mysql_url).set(database="nw_no_such_database").render_as_string(hide_password=False)
    nwi = InProcess(tmp_path, unknown, {})
    if from_env:
        nwi.write_config(HOSTS)
        nwi.env["NETWATCH_DATABASE_URL"] = unknown
    else:
        nwi.write_config(HOSTS, database={"url": unknown})

    for done in (nwi.sweep(), nwi.run("status")):
        assert done.returncode == 78, done.stderr
        key = "NETWATCH_DATABASE_URL" if from_env else "database.url"
        assert log_lines(done.stderr)[-1].startswith(f"error: {key}: the server refused it: (1049, ")


def test_check_config_shows_the_absolute_path_an_environment_url_resolves_to(
        nwi: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    nwi.write_config(HOSTS)
    nwi.env["NETWATCH_DATABASE_URL"] = "sqlite:///state/nw.db"
    (here / "state").mkdir()
    monkeypatch.chdir(here)

    done = nwi.run("check-config", "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["database"] == f"sqlite:///{here / 'state' / 'nw.db'}"


def test_relative_ssl_files_are_taken_from_the_config_files_folder(tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (site / "certs").mkdir(parents=True)
    elsewhere.mkdir()
    for name in ("ca.pem", "client.pem", "client.key"):
        (site / "certs" / name).write_text("not parsed before a connection\n", encoding="utf-8")
    config = site / "netwatch.yaml"
    config.write_text(f"database: {{url: '{MYSQL}?ssl_ca=certs/ca.pem&ssl_cert=certs/client.pem"
                      "&ssl_key=certs/client.key'}\nhosts: []\n", encoding="utf-8")

    done = run_command(["check-config", "--json", "--config", str(config)], dict(os.environ), cwd=elsewhere)

    assert done.returncode == 0, done.stderr
    certs = site / "certs"
    assert json.loads(done.stdout)["database"] == (
        f"mysql+pymysql://netwatch:***@127.0.0.1:1/netwatch?ssl_ca={certs}/ca.pem&ssl_cert={certs}/client.pem"
        f"&ssl_key={certs}/client.key")
    assert make_url(load_config(config, {}).database_url).query["ssl_key"] == str(certs / "client.key")


def test_relative_ssl_files_from_the_environment_are_taken_from_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_text("x\n", encoding="utf-8")
    config = tmp_path / "site" / "netwatch.yaml"
    config.parent.mkdir()
    config.write_text("hosts: []\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    loaded = load_config(config, {"NETWATCH_DATABASE_URL": f"{MYSQL}?ssl_ca=ca.pem"})

    assert make_url(loaded.database_url).query["ssl_ca"] == str(tmp_path / "ca.pem")
    assert loaded.database_key == "NETWATCH_DATABASE_URL"
