"""Passwords short enough to poison the redactor are refused; secrets are masked longest first.

Every password is masked in logs and stored errors: the database password `e` masked every "e".
A database or SMTP password shorter than limits.PASSWORD_MIN_CHARS is a config error (78) naming
database.url (or NETWATCH_DATABASE_URL) or the password variable, never the value.
"""

from __future__ import annotations

import itertools

import pytest
from inproc import InProcess
from jobkit import log_lines

from netwatch.db.url import check_database_url
from netwatch.errors import ConfigError
from netwatch.limits import PASSWORD_MIN_CHARS
from netwatch.logs import Redactor

SHORT = "Zq7#Xw9"  # one character too short
RULE = (f"is shorter than {PASSWORD_MIN_CHARS} characters (netwatch masks it in every log line and stored error, "
        "where a short one would hide ordinary text)")
HOSTS = [{"name": "lo", "address": "127.0.0.1"}]
EMAIL = {"host": "127.0.0.1", "port": 1, "from": "nw@example.invalid", "to": "noc@example.invalid",
         "username": "nw", "password_env": "NW_TEST_SMTP_PASSWORD"}


def test_the_minimum_is_eight() -> None:
    assert len(SHORT) == PASSWORD_MIN_CHARS - 1 == 7


def test_a_short_database_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        check_database_url(f"mysql+pymysql://netwatch:{SHORT}@127.0.0.1:1/netwatch")
    assert caught.value.message == f"database.url: the password {RULE}"
    assert check_database_url(f"mysql+pymysql://netwatch:{SHORT}8@127.0.0.1:1/netwatch").url.password == SHORT + "8"
    assert check_database_url("mysql+pymysql://root@127.0.0.1:1/netwatch").url.password is None  # no password


def test_a_job_and_check_config_refuse_a_short_database_password_from_the_environment(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    nwi.env["NETWATCH_DATABASE_URL"] = f"mysql+pymysql://netwatch:{SHORT}@127.0.0.1:1/netwatch"

    for done in (nwi.sweep(), nwi.run("check-config")):
        assert done.returncode == 78, done.stderr
        assert log_lines(done.stderr) == [f"error: NETWATCH_DATABASE_URL: the password {RULE}"]
        assert SHORT not in done.stdout + done.stderr


def test_a_short_smtp_password_is_refused_naming_its_variable(nwi: InProcess) -> None:
    nwi.write_config(HOSTS, notifications={"email": EMAIL})
    nwi.env["NW_TEST_SMTP_PASSWORD"] = SHORT

    swept, checked = nwi.sweep(), nwi.run("check-config")

    problem = f"notifications.email.password_env: the password in NW_TEST_SMTP_PASSWORD {RULE}"
    assert swept.returncode == checked.returncode == 78
    assert log_lines(swept.stderr) == [f"error: {problem}"]
    assert log_lines(checked.stderr) == [f"error: {nwi.tmp_path / 'netwatch.yaml'}: {problem}"]
    assert SHORT not in swept.stderr + checked.stdout + checked.stderr


def test_a_secret_inside_a_longer_one_leaves_nothing_of_the_longer_one_visible() -> None:
    # Each secret holds the one before it; in whatever order they were added, the line shows none of them.
    secrets = ["core-secret"]
    for prefix in "abcde":
        secrets.append(f"{prefix}-{secrets[-1]}-{prefix}")
    line = f"token={secrets[-1]}; password={secrets[2]}; the word core alone stays"
    for order in itertools.islice(itertools.permutations(secrets), 0, None, 37):
        redactor = Redactor()
        for secret in order:
            redactor.add(secret)
        assert redactor.mask(line) == "token=***; password=***; the word core alone stays", order
