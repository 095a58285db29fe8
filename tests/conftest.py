"""Shared fixtures: a fresh database on SQLite and on MariaDB/MySQL for every test that asks.

MySQL: NETWATCH_TEST_MYSQL_URL names a server database to use as the admin connection (CI sets it
to a throwaway database); without it the local default below is tried. Each test gets its own
database, dropped afterwards. Without a server the MySQL cases skip with the reason, unless
NETWATCH_REQUIRE_MYSQL=1 (set by .ci/run), where they fail.

Network namespaces: tests marked `netns` (tests/netns.py `requires_netns`) skip with the reason where
namespace test hosts cannot be built, unless NETWATCH_REQUIRE_NETNS=1 (set by .ci/run): then they fail.

Reliability matrix: the cells tests/test_reliability_matrix.py ran (on any worker) are printed as a
table at the end of the session, `reliability matrix` (see tests/reliability.py).

Chromium: tests marked `chromium` (the status page in a real browser) skip without a `chromium`
on the PATH, unless NETWATCH_REQUIRE_CHROMIUM=1 (set by .ci/run, which installs Debian's package).
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import ACCOUNT, TOKEN, Netwatch
from netns import netns_unavailable_reason
from reliability import HEADER as RELIABILITY_HEADER
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from netwatch.db import migrate
from netwatch.db.engine import build_engine

LOCAL_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"
_counter = itertools.count()
# Asked once per session and only when a netns test is about to run.
_netns_reason = functools.cache(netns_unavailable_reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skips a `netns` or `chromium` test where it cannot run; fails it instead when CI requires it."""
    if item.get_closest_marker("chromium") is not None and shutil.which("chromium") is None:
        reason = "no chromium on the PATH (Debian: apt-get install chromium)"
        if os.environ.get("NETWATCH_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason} (NETWATCH_REQUIRE_CHROMIUM=1: Chromium tests must run)", pytrace=False)
        pytest.skip(reason)
    if item.get_closest_marker("netns") is None:
        return
    reason = _netns_reason()
    if reason is None:
        return
    if os.environ.get("NETWATCH_REQUIRE_NETNS") == "1":
        pytest.fail(f"{reason} (NETWATCH_REQUIRE_NETNS=1: network-namespace tests must run)", pytrace=False)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Prints the reliability matrix cells of this session, one line each (xdist passes user_properties on)."""
    lines = sorted({value for reports in terminalreporter.stats.values() for report in reports
                    for name, value in getattr(report, "user_properties", ()) if name == "reliability_cell"})
    if lines:
        terminalreporter.section("reliability matrix")
        for line in [RELIABILITY_HEADER, *lines]:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def mysql_admin() -> Iterator[Engine]:
    url = os.environ.get("NETWATCH_TEST_MYSQL_URL", LOCAL_MYSQL)
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = f"MariaDB/MySQL not reachable at {make_url(url).render_as_string(hide_password=True)}: {exc.orig}"
        if os.environ.get("NETWATCH_REQUIRE_MYSQL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def mysql_url(mysql_admin: Engine) -> Iterator[str]:
    # .ci/run sets the prefix to its run database's name, so its cleanup finds what a crash left.
    name = f"{os.environ.get('NETWATCH_TEST_DB_PREFIX', 'nwt')}_{os.getpid()}_{next(_counter)}"
    with mysql_admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    url = mysql_admin.url.set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with mysql_admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL, once for SQLite and once for MariaDB/MySQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'netwatch.db'}"
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database with the current schema."""
    engine = build_engine(db_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, datetime(2026, 11, 22, tzinfo=UTC))
    yield engine
    engine.dispose()


@pytest.fixture
def fake() -> Iterator[FakeApis]:
    """Loopback Segware and Sigma APIs that know account 1234 and want jobkit.TOKEN."""
    with FakeApis(accounts={"1234": ACCOUNT}, token=TOKEN) as apis:
        yield apis


@pytest.fixture
def nw(tmp_path: Path, engine: Engine, db_url: str) -> Netwatch:
    """A netwatch set-up (config file, environment with both tokens) on a database with the schema."""
    return Netwatch(tmp_path, db_url, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})


@pytest.fixture
def nwi(tmp_path: Path, engine: Engine, db_url: str) -> InProcess:
    """As `nw`, but its commands run in this process with a planned sweep (see tests/inproc.py)."""
    return InProcess(tmp_path, db_url, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})
