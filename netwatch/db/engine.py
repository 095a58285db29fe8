"""Engine construction: the only place that knows per-dialect connection settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, SQLAlchemyError

from netwatch.errors import ConfigError, NetwatchError, ServiceUnavailable


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database url>"


def build_engine(url: str) -> Engine:
    """An engine for `url`: MySQL/MariaDB via PyMySQL in UTC, or SQLite in WAL mode."""
    try:
        parsed: URL = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url: not a database URL: {safe_url(url)}") from None
    backend = parsed.get_backend_name()
    if url.count("@") > 1:
        raise ConfigError("database.url: more than one '@': URL-encode '@' in the password as %40")
    if backend == "mysql":
        if parsed.get_driver_name() != "pymysql":
            raise ConfigError("database.url: MySQL URLs must use the PyMySQL driver (mysql+pymysql://...)")
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_recycle=3600,
            connect_args={"init_command": "SET time_zone = '+00:00'", "connect_timeout": 10},
        )
    if backend == "sqlite":
        folder = Path(parsed.database).parent if parsed.database and parsed.database != ":memory:" else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"database.url: the folder of the SQLite file does not exist: {folder}")
        engine = create_engine(parsed, connect_args={"timeout": 30})
        _sqlite_setup(engine)
        return engine
    raise ConfigError(f"database.url: unsupported database {backend!r} (use sqlite:/// or mysql+pymysql://)")


def _sqlite_setup(engine: Engine) -> None:
    # pysqlite's own deferred BEGIN lets two writers deadlock on lock upgrade; take the write lock
    # at BEGIN instead, as SQLAlchemy's documentation recommends for concurrent writers.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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


def describe_db_error(exc: SQLAlchemyError) -> NetwatchError:
    """A one-line, secret-free error for a database failure: unreachable (69) or otherwise."""
    original = getattr(exc, "orig", None)
    detail = str(original if original is not None else exc).splitlines()[0][:200]
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceUnavailable(f"database unavailable: {detail}")
    return ServiceUnavailable(f"database error ({type(original or exc).__name__}): {detail}")
