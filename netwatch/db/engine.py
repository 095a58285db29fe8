"""Engine construction: the only place that knows per-dialect connection settings."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from netwatch.db.url import DEFAULT_SQLITE_FILE, FILE_KEY, ambiguous_credentials, check_database_url, render_url
from netwatch.errors import ConfigError, NetwatchError, ServiceUnavailable
from netwatch.excerpt import clip

log = logging.getLogger(__name__)


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs and error messages.

    With an unencoded '@' in the credentials the parser cannot tell where the password ends, so
    everything before the last '@' of the host part is masked.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable database url>"
    if ambiguous_credentials(url, parsed):
        scheme, _, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"
    return render_url(parsed, hide_password=True)


def build_engine(url: str, key: str = FILE_KEY, read_only: bool = False) -> Engine:
    """An engine for `url`: MySQL/MariaDB via PyMySQL in UTC, or SQLite in WAL mode (file created 0600).

    `check_database_url` refuses a URL a run would trip over (exit 78, naming `key`) before anything
    connects. `read_only` (reports): a SQLite file must exist and is opened with writes refused, so
    a report never creates or changes one.
    """
    target = check_database_url(url, key, read_only)
    if target.sqlite_path is None:
        # The URL's own connect_timeout, if any, wins over the default. READ COMMITTED: shards commit at
        # the same time, and under InnoDB's REPEATABLE READ the rollups' INSERT ... SELECT from `checks`
        # took shared next-key locks on the rows and gaps of the other shards' uncommitted checks of the
        # same second: four shards at 10,000 hosts deadlocked (exit 69) in most rounds. Every change is a
        # conditional write or a leased one, so no run relies on a repeatable snapshot.
        options = {"init_command": "SET time_zone = '+00:00'", "connect_timeout": 10, **target.options}
        return create_engine(target.url, pool_pre_ping=True, pool_recycle=3600, connect_args=options,
                             isolation_level="READ COMMITTED")
    _warn_of_another_database(target.sqlite_path, Path.cwd())
    if read_only:
        # mode=rw never creates the file; query_only (below) refuses writes. Not mode=ro: a read-only
        # connection cannot remove the -wal and -shm files it opened, so it would leave them behind.
        uri = f"file:{quote(str(target.sqlite_path))}?mode=rw"
        engine = create_engine(target.url, creator=lambda: sqlite3.connect(uri, uri=True, timeout=30,
                                                                           check_same_thread=False))
    else:
        engine = create_engine(target.url, connect_args={"timeout": 30})
    _sqlite_setup(engine, target.sqlite_path, key, read_only)
    return engine


def _warn_of_another_database(path: Path, cwd: Path) -> None:
    """Warns when `cwd` holds a netwatch.db that is not `path`: the database an older netwatch opened.

    Before relative SQLite paths followed the config file, the default sqlite:///netwatch.db was
    the current directory's; a cron or systemd set-up upgraded without naming its database would
    otherwise start a new, empty one in silence (no queued events, no active alerts).
    """
    here = cwd / DEFAULT_SQLITE_FILE
    if not here.is_file() or (path.exists() and os.path.samefile(path, here)):
        return
    log.warning("the database is %s, but the current directory holds another %s, %s: relative SQLite paths "
                "(the default sqlite:///%s too) are taken from the config file's folder; to use that one, set "
                "NETWATCH_DATABASE_URL or database.url to sqlite:///%s", clip(str(path)), DEFAULT_SQLITE_FILE,
                clip(str(here.absolute())), DEFAULT_SQLITE_FILE, clip(str(here.absolute())))


def _create_private_file(path: Path, key: str) -> None:
    """Creates the SQLite file 0600 if it is missing; SQLite gives its -wal and -shm files the same mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"{key}: cannot create {clip(str(path))}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask took away
    finally:
        os.close(fd)


def _sqlite_setup(engine: Engine, path: Path, key: str, read_only: bool) -> None:
    if not read_only:
        @event.listens_for(engine, "do_connect")
        def _before_connect(*_args: Any) -> None:
            # Only on a connection: a run refused before it starts (77) leaves no file behind.
            _create_private_file(path, key)

    # pysqlite's own deferred BEGIN lets two writers deadlock on lock upgrade; take the write lock
    # at BEGIN instead, as SQLAlchemy's documentation recommends for concurrent writers. A reader
    # changes nothing (not even the journal mode of an empty file) and takes no write lock: its
    # deferred BEGIN still reads one snapshot, and a running job does not hold it up.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if read_only:
            cur.execute("PRAGMA query_only=ON")
        else:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


@dataclass
class StatementCount:
    """Cursor executions seen on an engine (an executemany counts once)."""

    value: int = 0


@contextmanager
def count_statements(engine: Engine) -> Iterator[StatementCount]:
    """Counts statements sent through `engine` inside the block."""
    counter = StatementCount()

    def _count(*_args: Any) -> None:
        counter.value += 1

    event.listen(engine, "before_cursor_execute", _count)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", _count)


# Outages are listed and every other database error is a bug. The driver's error class cannot tell
# them apart: PyMySQL raises OperationalError for "Unknown column" and sqlite3 for "no such table",
# the shapes of a bug or of a schema that does not match. Those must show their traceback (70)
# instead of sending an operator after a database that is fine.
# The server refused the login or does not know the database: database.url is wrong (78).
_MYSQL_REFUSALS = frozenset({1044, 1045, 1698, 1049})
_MYSQL_OUTAGES = _MYSQL_REFUSALS | frozenset({  # MySQL/MariaDB error numbers: exc.orig.args[0]
    2002, 2003, 2005, 2006, 2013, 2026, 2055,  # cannot connect, unknown host, gone, lost, TLS failed
    1040, 1203, 1226, 1053, 1927,  # too many connections (server, user), shutting down, killed
    1129, 1130,  # this host is blocked or not allowed
    1158, 1159, 1160, 1161,  # network read/write errors
    1205, 1213, 1317, 1969, 3024,  # lock wait timeout, deadlock, query interrupted or timed out
    1037, 1041, 1047,  # out of memory or resources, Galera node not ready
    1021, 1114,  # disk full, table full
    1290, 1836,  # server read-only
})
_SQLITE_OUTAGES = (  # how sqlite3's messages begin ("database table is locked: name")
    "database is locked", "database table is locked", "database schema is locked", "disk I/O error",
    "unable to open database file", "database or disk is full", "attempt to write a readonly database",
    "database disk image is malformed", "file is not a database", "out of memory", "locking protocol",
)


def is_db_unavailable(exc: SQLAlchemyError) -> bool:
    """True for a listed outage (69); False for anything else, a bug in netwatch or its schema (70)."""
    if isinstance(exc, DisconnectionError | PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or _is_driver_outage(exc.orig)


def _is_driver_outage(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.Error):
        return str(orig).startswith(_SQLITE_OUTAGES)
    pymysql = _loaded_pymysql()
    if pymysql is None:
        return False
    if isinstance(orig, pymysql.err.InterfaceError):
        return True  # PyMySQL's "(0, '')": the connection is already closed
    return isinstance(orig, pymysql.err.Error) and bool(orig.args) and orig.args[0] in _MYSQL_OUTAGES


def _loaded_pymysql() -> ModuleType | None:
    """PyMySQL if a MySQL engine has loaded it, else None: then no error is PyMySQL's.

    Never imported here, so that a run on SQLite, failing or not, loads neither it nor the
    cryptography it imports (27 ms).
    """
    return sys.modules.get("pymysql")


def db_error_line(exc: SQLAlchemyError) -> str:
    """The driver's own first line (no SQL, no parameters, no URL), at most 200 characters."""
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc).partition("\n")[0][:200]


def describe_db_error(exc: SQLAlchemyError, key: str = FILE_KEY) -> NetwatchError:
    """The one-line, secret-free error for what `is_db_unavailable` calls an outage.

    A refused login or an unknown database is a ConfigError naming `key`, where the URL came from
    (78); any other outage is ServiceUnavailable (69). Callers check `is_db_unavailable` first and
    re-raise anything else, so a bug keeps its traceback.
    """
    orig = getattr(exc, "orig", None)
    pymysql = _loaded_pymysql()
    if pymysql is not None and isinstance(orig, pymysql.err.Error) and orig.args and orig.args[0] in _MYSQL_REFUSALS:
        return ConfigError(f"{key}: the server refused it: {db_error_line(exc)}")
    return ServiceUnavailable(f"database unavailable: {db_error_line(exc)}")
