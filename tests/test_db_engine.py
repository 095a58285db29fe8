"""build_engine's URL checks and is_db_unavailable's split of database errors into outages (69) and bugs."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pymysql
import pytest
from inproc import run_command
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    CompileError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    NoSuchColumnError,
    OperationalError,
    ResourceClosedError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from netwatch.db import migrate, tables
from netwatch.db.engine import build_engine, describe_db_error, is_db_unavailable, safe_url
from netwatch.db.url import check_database_url
from netwatch.errors import ConfigError, ExitCode, ServiceUnavailable

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
# A statement whose text and parameters must never reach the one-line error.
SECRET_SQL = "UPDATE leases SET holder = %(holder)s"
SECRET_PARAMS = {"holder": "statement-param-secret"}


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("mysql+pymysql://u:p@ss@host/db", "ss@host"),
        ("mysql+pymysql://netwatch:hunter2@x@127.0.0.1:3306/netwatch", "hunter2"),
        ("mysql+pymysql://netwatch:pa/ss@w0rd@127.0.0.1/netwatch", "w0rd"),
        ("mysql+pymysql://netwatch:pa?ss@w0rd@127.0.0.1/netwatch", "w0rd"),
        ("mysql+pymysql://user@corp:hunter2@127.0.0.1/netwatch", "hunter2"),
        # No password: make_url would take "root@127.0.0.1" as the user and "test" as the host.
        ("mysql+pymysql://root@127.0.0.1:3306/netwatch?program_name=nw@test", "3306/netwatch"),
    ],
)
def test_unencoded_at_in_the_credentials_exits_78_without_the_password(url: str, secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_engine(url)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "user:password" in caught.value.message and "%40" in caught.value.message
    assert secret not in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("mysql+pymysql://root:pa@TOPSECRET99@127.0.0.1:3306/nwuser", "TOPSECRET99",
         "mysql+pymysql://***@127.0.0.1:3306/nwuser"),
        ("mysql+pymysql://user@corp:hunter2@127.0.0.1/netwatch", "hunter2", "mysql+pymysql://***@127.0.0.1/netwatch"),
        ("mysql+pymysql://netwatch:hunter2@127.0.0.1/netwatch", "hunter2",
         "mysql+pymysql://netwatch:***@127.0.0.1/netwatch"),
    ],
)
def test_a_shown_url_never_holds_the_password_even_with_an_unencoded_at(url: str, secret: str, shown: str) -> None:
    assert safe_url(url) == shown
    assert secret not in safe_url(url)


def test_check_config_never_shows_a_password_with_an_unencoded_at(tmp_path: Path) -> None:
    config = tmp_path / "netwatch.yaml"
    config.write_text("hosts: []\n", encoding="utf-8")
    url = "mysql+pymysql://root:pa@TOPSECRET99@127.0.0.1:3306/nwuser"
    for args in (["check-config"], ["check-config", "--json"]):
        done = run_command([*args, "--config", str(config)], {**os.environ, "NETWATCH_DATABASE_URL": url})
        assert "TOPSECRET99" not in done.stdout + done.stderr, (args, done.stdout, done.stderr)


def test_unencoded_at_before_a_port_exits_78_without_the_password() -> None:
    # make_url gives up on the non-numeric port "w0rd@host" with a ValueError, not an ArgumentError.
    with pytest.raises(ConfigError) as caught:
        build_engine("mysql+pymysql://netwatch:p@ss:w0rd@host/netwatch")
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "not a database URL" in caught.value.message
    assert "w0rd" not in caught.value.message


def test_percent_encoded_at_in_the_credentials_is_accepted() -> None:
    engine = build_engine("mysql+pymysql://user%40corp:p%40ss-w0rd@127.0.0.1:1/netwatch")
    try:
        assert (engine.url.username, engine.url.password, engine.url.host) == ("user@corp", "p@ss-w0rd", "127.0.0.1")
    finally:
        engine.dispose()


def test_at_in_the_query_string_is_accepted_without_a_connection(tmp_path: Path) -> None:
    ca = tmp_path / "ca@corp.pem"
    ca.write_text("not parsed before a connection\n", encoding="utf-8")

    target = check_database_url(f"mysql+pymysql://u:pw-of-u-1@127.0.0.1:1/netwatch?ssl_ca={ca}")

    assert target.options["ssl"] == {"ca": str(ca)}
    assert (target.url.username, target.url.password, target.url.host) == ("u", "pw-of-u-1", "127.0.0.1")


def test_at_outside_the_credentials_is_accepted_and_connects(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        folder = tmp_path / "ops@site" / "db@2026"
        folder.mkdir(parents=True)
        url = f"sqlite:///{folder / 'netwatch.db'}"
    else:
        server = make_url(db_url)
        if server.password is None:  # "root:@host": with no ':' make_url would end the user at the last '@'
            server = server.set(password="")
        assert not server.query
        url = f"{server.render_as_string(hide_password=False)}?program_name=netwatch@test"
    engine = build_engine(url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, T0)
        with engine.begin() as conn:
            assert migrate.current_version(conn) == migrate.LATEST
    finally:
        engine.dispose()


def test_missing_sqlite_folder_exits_78_naming_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "sub"
    with pytest.raises(ConfigError) as caught:
        build_engine(f"sqlite:///{missing / 'netwatch.db'}")
    assert caught.value.exit_code == ExitCode.CONFIG
    assert caught.value.message == f"database.url: the folder of the SQLite file does not exist: {missing}"
    assert not missing.exists()


def test_missing_relative_sqlite_folder_is_named_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        build_engine("sqlite:///data/netwatch.db")
    assert caught.value.message.endswith(": data")


def test_sqlite_file_in_an_existing_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "netwatch.db"
    engine = build_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert path.is_file()


def _wrapped(orig: Exception, base: type[Exception]) -> DBAPIError:
    """The SQLAlchemy exception the engine raises for driver error `orig` (the same class mapping)."""
    return DBAPIError.instance(SECRET_SQL, SECRET_PARAMS, orig, base)


UNAVAILABLE = [
    pytest.param(_wrapped(pymysql.err.OperationalError(2006, "MySQL server has gone away"), pymysql.err.Error),
                 "MySQL server has gone away", id="mysql-gone"),
    pytest.param(_wrapped(pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
                          pymysql.err.Error), "Lost connection", id="mysql-lost"),
    pytest.param(_wrapped(pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1'"),
                          pymysql.err.Error), "Can't connect", id="mysql-refused"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction"),
                          pymysql.err.Error), "Lock wait timeout", id="mysql-lock-wait"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
                          pymysql.err.Error), "Deadlock", id="mysql-deadlock"),
    pytest.param(_wrapped(pymysql.err.InterfaceError(0, ""), pymysql.err.Error), "(0, '')", id="mysql-interface"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1040, "Too many connections"), pymysql.err.Error),
                 "Too many connections", id="mysql-too-many"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1927, "Connection was killed"), pymysql.err.Error),
                 "killed", id="mysql-killed"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1317, "Query execution was interrupted"), pymysql.err.Error),
                 "interrupted", id="mysql-interrupted"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1021, "Disk full (/tmp/#sql-1.MAI); waiting for someone "
                                                             "to free some space..."), pymysql.err.Error),
                 "Disk full", id="mysql-disk-full"),
    pytest.param(_wrapped(pymysql.err.OperationalError(1290, "The MariaDB server is running with the --read-only "
                                                             "option so it cannot execute this statement"),
                          pymysql.err.Error), "--read-only", id="mysql-read-only"),
    pytest.param(_wrapped(sqlite3.OperationalError("database is locked"), sqlite3.Error), "database is locked",
                 id="sqlite-locked"),
    pytest.param(_wrapped(sqlite3.OperationalError("database table is locked: hosts"), sqlite3.Error),
                 "table is locked", id="sqlite-table-locked"),
    pytest.param(_wrapped(sqlite3.OperationalError("database or disk is full"), sqlite3.Error), "disk is full",
                 id="sqlite-full"),
    pytest.param(_wrapped(sqlite3.OperationalError("attempt to write a readonly database"), sqlite3.Error),
                 "readonly", id="sqlite-read-only"),
    pytest.param(_wrapped(sqlite3.DatabaseError("database disk image is malformed"), sqlite3.Error), "malformed",
                 id="sqlite-malformed"),
    pytest.param(_wrapped(sqlite3.OperationalError("disk I/O error"), sqlite3.Error), "disk I/O error",
                 id="sqlite-io"),
    pytest.param(_wrapped(sqlite3.DatabaseError("file is not a database"), sqlite3.Error), "not a database",
                 id="sqlite-damaged"),
    pytest.param(PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection timed out"), "QueuePool",
                 id="pool-timeout"),
    pytest.param(DisconnectionError("connection was closed by the server"), "closed by the server",
                 id="disconnection"),
]


@pytest.mark.parametrize(("error", "fragment"), UNAVAILABLE)
def test_outages_are_69_unavailable_in_one_line_without_sql(error: SQLAlchemyError, fragment: str) -> None:
    assert is_db_unavailable(error)
    described = describe_db_error(error)
    assert isinstance(described, ServiceUnavailable)
    assert described.exit_code == ExitCode.UNAVAILABLE
    assert described.message.startswith("database unavailable: ")
    assert fragment in described.message
    assert "\n" not in described.message
    assert "statement-param-secret" not in described.message and "UPDATE" not in described.message


@pytest.mark.parametrize("errno", [1044, 1045, 1698, 1049])
def test_a_refused_login_or_unknown_database_is_a_config_error(errno: int) -> None:
    error = _wrapped(pymysql.err.OperationalError(errno, "Access denied for user 'netwatch'@'10.0.0.5'"),
                     pymysql.err.Error)
    assert is_db_unavailable(error)
    described = describe_db_error(error)
    assert described.exit_code == ExitCode.CONFIG
    assert described.message == (
        f"database.url: the server refused it: ({errno}, \"Access denied for user 'netwatch'@'10.0.0.5'\")")


BUGS = [
    pytest.param(_wrapped(pymysql.err.IntegrityError(1062, "Duplicate entry 'x' for key 'PRIMARY'"),
                          pymysql.err.Error), id="mysql-duplicate"),
    pytest.param(_wrapped(pymysql.err.DataError(1406, "Data too long for column 'name' at row 1"),
                          pymysql.err.Error), id="mysql-too-long"),
    pytest.param(_wrapped(pymysql.err.ProgrammingError(1146, "Table 'netwatch.nope' doesn't exist"),
                          pymysql.err.Error), id="mysql-no-table"),
    pytest.param(_wrapped(pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"),
                          pymysql.err.Error), id="mysql-syntax"),
    pytest.param(_wrapped(pymysql.err.NotSupportedError(1235, "This version doesn't yet support it"),
                          pymysql.err.Error), id="mysql-not-supported"),
    # PyMySQL maps server errors it does not list to OperationalError: the class alone says nothing.
    pytest.param(_wrapped(pymysql.err.OperationalError(1054, "Unknown column 'nope' in 'SELECT'"),
                          pymysql.err.Error), id="mysql-unknown-column"),
    # A protocol desync, e.g. a connection shared between threads.
    pytest.param(_wrapped(pymysql.err.InternalError("Packet sequence number wrong - got 1 expected 2"),
                          pymysql.err.Error), id="mysql-packet-sequence"),
    pytest.param(_wrapped(sqlite3.OperationalError("no such table: hosts"), sqlite3.Error), id="sqlite-no-table"),
    pytest.param(_wrapped(sqlite3.OperationalError("no such column: nope"), sqlite3.Error), id="sqlite-no-column"),
    pytest.param(_wrapped(sqlite3.OperationalError('near "SELEC": syntax error'), sqlite3.Error),
                 id="sqlite-syntax"),
    pytest.param(_wrapped(sqlite3.InterfaceError("Error binding parameter 1: type 'dict' is not supported"),
                          sqlite3.Error), id="sqlite-interface"),
    pytest.param(_wrapped(sqlite3.IntegrityError("UNIQUE constraint failed: leases.name"), sqlite3.Error),
                 id="sqlite-unique"),
    pytest.param(_wrapped(sqlite3.ProgrammingError("Incorrect number of bindings supplied"), sqlite3.Error),
                 id="sqlite-bindings"),
    pytest.param(CompileError("Unconsumed column names: nope"), id="compile"),
    pytest.param(NoSuchColumnError("Could not locate column in row for column 'nope'"), id="no-such-column"),
    pytest.param(ResourceClosedError("This result object is closed."), id="resource-closed"),
]


@pytest.mark.parametrize("error", BUGS)
def test_errors_in_what_netwatch_sent_or_its_schema_are_bugs(error: SQLAlchemyError) -> None:
    assert not is_db_unavailable(error)


def test_bug_class_error_on_an_invalidated_connection_counts_as_an_outage() -> None:
    orig = pymysql.err.ProgrammingError(0, "connection closed while the statement ran")
    error = DBAPIError.instance(SECRET_SQL, SECRET_PARAMS, orig, pymysql.err.Error, connection_invalidated=True)
    assert describe_db_error(error).exit_code == ExitCode.UNAVAILABLE


def test_a_real_duplicate_key_is_a_bug_not_an_outage(engine: Engine) -> None:
    row = {"name": "dup:0/1", "holder": None, "acquired_at": None, "expires_at": None}
    with engine.begin() as conn:
        conn.execute(tables.leases.insert().values(**row))
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(tables.leases.insert().values(**row))
    assert not is_db_unavailable(caught.value)


@pytest.mark.parametrize("statement", ["SELECT * FROM no_such_table", "SELECT no_such_column FROM hosts"])
def test_a_real_missing_table_or_column_is_a_bug_not_an_outage(engine: Engine, statement: str) -> None:
    # SQLite raises OperationalError for both, MariaDB for the unknown column (1054).
    with pytest.raises(SQLAlchemyError) as caught, engine.begin() as conn:
        conn.execute(text(statement))
    assert not is_db_unavailable(caught.value), caught.value


@pytest.mark.mysql
def test_a_real_database_that_cannot_be_opened_is_refused_by_the_server(mysql_url: str) -> None:
    # A SQLite URL naming a folder never gets this far: see tests/test_database_url.py.
    url = make_url(mysql_url).set(database="nwt_no_such_database").render_as_string(hide_password=False)
    fragment = "the server refused it: (1049, \"Unknown database"
    engine = build_engine(url)
    try:
        with pytest.raises(OperationalError) as caught, engine.begin() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert is_db_unavailable(caught.value)
    assert fragment in describe_db_error(caught.value).message


@pytest.mark.mysql
def test_real_mariadb_data_and_sql_errors_are_bugs(mysql_url: str) -> None:
    engine = build_engine(mysql_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, T0)
        statements = [
            (tables.leases.insert().values(name="x" * 101, holder=None), 1406),  # String(100), strict mode
            (text("SELECT * FROM no_such_table"), 1146),  # "Table '...' doesn't exist"
            (text("SELECT nope FROM hosts"), 1054),  # "Unknown column": an OperationalError in PyMySQL
        ]
        for statement, errno in statements:
            with pytest.raises(SQLAlchemyError) as caught, engine.begin() as conn:
                conn.execute(statement)
            error = caught.value
            assert isinstance(error, DBAPIError) and error.orig is not None and error.orig.args[0] == errno, error
            assert not is_db_unavailable(error), error
    finally:
        engine.dispose()
