"""Secrets from mounted files: the database URL (NETWATCH_DATABASE_URL_FILE, database.url_file) and the SMTP
password (notifications.email.password_file), as a Kubernetes Secret volume gives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy.engine import make_url

from netwatch.config import load_config
from netwatch.errors import ConfigError, ExitCode
from netwatch.tokens import read_password

HOSTS = [{"name": "lo", "address": "127.0.0.1"}]


def secret(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o440)
    return path


def test_the_database_url_comes_from_the_file_the_variable_names(nwi: InProcess, db_url: str) -> None:
    nwi.write_config(HOSTS, database={"url": "sqlite:///not-this-one.db"})
    nwi.env["NETWATCH_DATABASE_URL_FILE"] = str(secret(nwi.tmp_path, "database-url", db_url + "\n"))
    done = nwi.sweep()
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in nwi.rows("hosts")] == ["lo"]
    assert not (nwi.tmp_path / "not-this-one.db").exists()
    password = make_url(db_url).password
    assert password is None or str(password) not in done.stderr


def test_the_config_file_can_name_the_url_file(nwi: InProcess, db_url: str) -> None:
    path = secret(nwi.tmp_path, "database-url", db_url)
    config = nwi.write_config(HOSTS)
    text = config.read_text(encoding="utf-8").replace(f"url: {db_url}", f"url_file: {path}")
    config.write_text(text, encoding="utf-8")
    assert nwi.sweep().returncode == 0
    assert load_config(config, {}).database_key == "database.url_file"


@pytest.mark.parametrize(("content", "problem"), [
    ("", "must hold the database URL on one line"),
    ("sqlite:///a.db\nsqlite:///b.db\n", "must hold the database URL on one line"),
    ("mysql+pymysql://netwatch:short@127.0.0.1/nw", "NETWATCH_DATABASE_URL_FILE: "),
])
def test_a_bad_url_file_is_a_config_error_naming_the_variable(tmp_path: Path, content: str, problem: str) -> None:
    nwi = InProcess(tmp_path, "sqlite:///unused.db", {"NETWATCH_DATABASE_URL_FILE": str(
        secret(tmp_path, "database-url", content))})
    nwi.write_config(HOSTS)
    done = nwi.sweep()
    assert done.returncode == ExitCode.CONFIG
    [line] = log_lines(done.stderr)
    assert problem in line and line.startswith("error: NETWATCH_DATABASE_URL_FILE")
    assert "short@" not in line


def test_two_sources_of_the_url_are_refused(tmp_path: Path) -> None:
    url_file = secret(tmp_path, "database-url", "sqlite:///x.db")
    both_env = InProcess(tmp_path, "sqlite:///x.db", {"NETWATCH_DATABASE_URL": "sqlite:///y.db",
                                                      "NETWATCH_DATABASE_URL_FILE": str(url_file)})
    both_env.write_config(HOSTS)
    assert "NETWATCH_DATABASE_URL and NETWATCH_DATABASE_URL_FILE are both set: give one" in both_env.sweep().stderr
    both_keys = InProcess(tmp_path, "sqlite:///x.db", {})
    both_keys.write_config(HOSTS, database={"url_file": str(url_file)})
    done = both_keys.sweep()
    assert done.returncode == ExitCode.CONFIG
    assert "database.url_file: give database.url or database.url_file, not both" in done.stderr
    missing = InProcess(tmp_path, "sqlite:///x.db", {"NETWATCH_DATABASE_URL_FILE": str(tmp_path / "none")})
    missing.write_config(HOSTS)
    assert "NETWATCH_DATABASE_URL_FILE: cannot read " in missing.sweep().stderr


def test_the_smtp_password_comes_from_its_file(nwi: InProcess) -> None:
    password = "pässwörd with spaces"
    path = secret(nwi.tmp_path, "smtp-password", password + "\n")
    email = {"host": "smtp.example.invalid", "from": "nw@example.invalid", "to": ["noc@example.invalid"],
             "username": "netwatch", "password_file": str(path)}
    config = load_config(nwi.write_config(HOSTS, notifications={"email": email}), {})
    assert config.notifications.email is not None
    assert read_password(config.notifications.email, {"NETWATCH_SMTP_PASSWORD": "ignored-password"}) == password
    secret(nwi.tmp_path, "smtp-password", "short\n")
    with pytest.raises(ConfigError, match=r"notifications\.email\.password_file: the password in .* is shorter"):
        read_password(config.notifications.email, {})
