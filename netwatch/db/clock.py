"""The database server's clock: one clock for lease times, whatever node or pod a run is on."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection


def server_now(conn: Connection) -> datetime:
    """Now by the database server: UTC_TIMESTAMP(6) on MySQL/MariaDB.

    A SQLite file is only ever opened on this machine, so its server clock is this machine's.
    """
    if conn.dialect.name in ("mysql", "mariadb"):
        value = conn.execute(text("SELECT UTC_TIMESTAMP(6)")).scalar_one()
        return value.replace(tzinfo=UTC)
    return datetime.now(UTC)
