"""Schema creation and versioned upgrades, tracked in `schema_version`.

Each migration is a function of a connection, applied in order inside the caller's transaction.
A new table or column goes into `tables.py` and gets a migration here that creates or alters it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection

from netwatch.db import tables
from netwatch.errors import ConfigError


def _v1_ping_sweep(conn: Connection) -> None:
    tables.metadata.create_all(
        conn,
        tables=[
            tables.leases,
            tables.job_runs,
            tables.hosts,
            tables.check_results,
            tables.outbox,
            tables.account_cache,
        ],
    )


def _v2_event_scan(conn: Connection) -> None:
    tables.metadata.create_all(conn, tables=[tables.triggers, tables.register_log, tables.scan_counts])


def _v3_trigger_location(conn: Connection) -> None:
    # A database created at version 2 by this code already has the columns (create_all above).
    present = {column["name"] for column in inspect(conn).get_columns(tables.triggers.name)}
    for name in ("partition_code", "zone_code"):
        if name not in present:
            column = tables.triggers.c[name]
            conn.execute(text(f"ALTER TABLE {tables.triggers.name} ADD COLUMN {name}"
                              f" {column.type.compile(dialect=conn.dialect)} NULL"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_ping_sweep, 2: _v2_event_scan,
                                                       3: _v3_trigger_location}
LATEST = max(MIGRATIONS)


def current_version(conn: Connection) -> int | None:
    """The applied schema version, or None when the database has no netwatch schema."""
    if not inspect(conn).has_table(tables.schema_version.name):
        return None
    return conn.execute(select(func.max(tables.schema_version.c.version))).scalar() or 0


def upgrade(conn: Connection, now: datetime) -> list[int]:
    """Creates `schema_version` if needed and applies every pending migration; returns those applied."""
    version = current_version(conn)
    if version is None:
        tables.schema_version.create(conn)
        version = 0
    applied = []
    for number in sorted(n for n in MIGRATIONS if n > version):
        MIGRATIONS[number](conn)
        conn.execute(tables.schema_version.insert().values(version=number, applied_at=now))
        applied.append(number)
    return applied


def require_current(conn: Connection) -> None:
    """Raises a ConfigError naming the database and the command to run when the schema is missing or behind."""
    require_version(conn, current_version(conn))


def require_version(conn: Connection, version: int | None) -> None:
    """As `require_current`, for a version already read on `conn`."""
    database = conn.engine.url.render_as_string(hide_password=True)
    if version is None:
        # A job run initialises an empty SQLite file itself; a MySQL database is set up once by hand.
        create = ("the first job run creates it, or run `netwatch db init`" if conn.dialect.name == "sqlite"
                  else "run `netwatch db init`")
        raise ConfigError(f"database {database} has no netwatch schema: {create}")
    if version < LATEST:
        raise ConfigError(f"database {database} has schema version {version}, this netwatch needs {LATEST}: "
                          "run `netwatch db upgrade`")
    if version > LATEST:
        raise ConfigError(f"database {database} has schema version {version}, newer than this netwatch "
                          f"({LATEST}): upgrade netwatch")
