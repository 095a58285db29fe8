"""Run leases: one row per job and shard, claimed by a single conditional UPDATE.

Not GET_LOCK: that is per connection and misbehaves behind pools and proxies. The row works the
same on MySQL and SQLite, survives a crashed holder (it expires) and can fence a commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from netwatch.db.tables import leases
from netwatch.db.upsert import insert_missing


@dataclass(frozen=True)
class LeaseInfo:
    holder: str | None
    expires_at: datetime | None


def claim_lease(conn: Connection, name: str, holder: str, now: datetime, ttl_seconds: float) -> bool:
    """Claims `name` for `holder` in one conditional UPDATE if it is free, expired or already ours.

    False also when the row does not exist yet (see `ensure_lease_row`). Run it in a transaction of
    its own: an INSERT IGNORE and an UPDATE of the same row in one transaction deadlock on MariaDB
    when two runs start together (shared lock, then exclusive); one statement cannot wait in a cycle.
    """
    claim = (
        update(leases)
        .where(
            and_(
                leases.c.name == name,
                or_(leases.c.holder.is_(None), leases.c.expires_at < now, leases.c.holder == holder),
            )
        )
        .values(holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
    )
    return conn.execute(claim).rowcount == 1


def ensure_lease_row(conn: Connection, name: str) -> None:
    """Creates the free row of lease `name` unless it exists (insert-if-missing)."""
    insert_missing(conn, leases, [{"name": name, "holder": None, "acquired_at": None, "expires_at": None}])


def renew_lease(conn: Connection, name: str, holder: str, now: datetime, ttl_seconds: float) -> bool:
    """Extends our lease; False when another holder has taken it meanwhile."""
    result = conn.execute(
        update(leases)
        .where(and_(leases.c.name == name, leases.c.holder == holder))
        .values(expires_at=now + timedelta(seconds=ttl_seconds))
    )
    return result.rowcount == 1


def release_lease(conn: Connection, name: str, holder: str) -> None:
    """Frees our lease so the next run need not wait for it to expire."""
    conn.execute(
        update(leases)
        .where(and_(leases.c.name == name, leases.c.holder == holder))
        .values(holder=None, expires_at=None)
    )


def read_lease(conn: Connection, name: str) -> LeaseInfo:
    """Who holds `name` and until when (for the message of a run that could not get it)."""
    row = conn.execute(select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).first()
    return LeaseInfo(holder=row.holder, expires_at=row.expires_at) if row else LeaseInfo(None, None)
