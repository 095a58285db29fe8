"""`hosts`: what is checked (hosts, HTTP and TCP checks) as last seen, plus each one's threshold state.

Each checking job reads, writes and removes only the rows of its own kinds (`kind`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection

from netwatch.core.hoststate import HostState, Status
from netwatch.db.tables import hosts
from netwatch.db.upsert import upsert_rows

_UPDATED_COLUMNS = [column.name for column in hosts.columns if column.name != "name"]
# Names per DELETE: under SQLite's 32,766 bound parameters; a whole 10,000-host inventory in one.
_DELETE_BATCH = 10_000


HOST = "host"
HTTP = "http"
TCP = "tcp"
KINDS = (HOST, HTTP, TCP)


@dataclass(frozen=True)
class LastAnswer:
    """An HTTP check's last answer: status code, body bytes read, the quotable start of a failed one's body."""

    status_code: int | None = None
    size_bytes: int | None = None
    excerpt: str | None = None


@dataclass(frozen=True)
class HostRow:
    name: str
    address: str
    account: str | None
    partition: str | None
    zone: str | None
    state: HostState
    last_check_at: datetime | None
    last_check_status: str | None
    last_run_id: int | None
    kind: str = HOST
    client: str | None = None
    answer: LastAnswer = LastAnswer()


@dataclass(frozen=True)
class StoredHost:
    """What the last run stored of a host: where and when it was checked, and its threshold state."""

    address: str
    account: str | None
    partition: str | None
    zone: str | None
    state: HostState
    last_check_at: datetime | None = None
    kind: str = HOST
    client: str | None = None


def load_host_states(conn: Connection, kinds: Collection[str]) -> dict[str, StoredHost]:
    """The address and state of every stored row of `kinds`, by name, in one query."""
    rows = conn.execute(
        select(
            hosts.c.name,
            hosts.c.address,
            hosts.c.account,
            hosts.c.partition_code,
            hosts.c.zone_code,
            hosts.c.status,
            hosts.c.consecutive_failures,
            hosts.c.consecutive_successes,
            hosts.c.last_transition_at,
            hosts.c.held,
            hosts.c.held_since,
            hosts.c.last_check_at,
            hosts.c.kind,
            hosts.c.client,
        ).where(hosts.c.kind.in_(sorted(kinds)))
    )
    return {
        row.name: StoredHost(
            address=row.address,
            account=row.account,
            partition=row.partition_code,
            zone=row.zone_code,
            state=HostState(
                status=Status(row.status),
                consecutive_failures=row.consecutive_failures,
                consecutive_successes=row.consecutive_successes,
                last_transition_at=row.last_transition_at,
                held=bool(row.held),
                held_since=row.held_since,
            ),
            last_check_at=row.last_check_at,
            kind=row.kind,
            client=row.client,
        )
        for row in rows
    }


def save_hosts(conn: Connection, rows: Sequence[HostRow]) -> None:
    """Upserts every row (inventory fields and state) in one statement."""
    values = [
        {
            "name": row.name,
            "address": row.address,
            "account": row.account,
            "partition_code": row.partition,
            "zone_code": row.zone,
            "status": str(row.state.status),
            "consecutive_failures": row.state.consecutive_failures,
            "consecutive_successes": row.state.consecutive_successes,
            "last_transition_at": row.state.last_transition_at,
            "held": row.state.held,
            "held_since": row.state.held_since,
            "last_check_at": row.last_check_at,
            "last_check_status": row.last_check_status,
            "last_run_id": row.last_run_id,
            "kind": row.kind,
            "client": row.client,
            "last_status_code": row.answer.status_code,
            "last_size_bytes": row.answer.size_bytes,
            "last_excerpt": row.answer.excerpt,
        }
        for row in rows
    ]
    upsert_rows(conn, hosts, values, key=["name"], update=_UPDATED_COLUMNS)


def delete_hosts(conn: Connection, names: Collection[str], kinds: Collection[str]) -> int:
    """Deletes the rows of `names` that are of `kinds`, one `IN` statement per 10,000 names; returns how many went.

    Not an executemany: PyMySQL batches only INSERT, so that would be one round trip per name.
    """
    ordered = sorted(names)
    kind = hosts.c.kind.in_(sorted(kinds))
    return sum(conn.execute(delete(hosts).where(and_(kind, hosts.c.name.in_(ordered[start : start + _DELETE_BATCH]))))
               .rowcount
               for start in range(0, len(ordered), _DELETE_BATCH))


def list_hosts(conn: Connection, kinds: Collection[str] = KINDS) -> list[HostRow]:
    """Every stored row of `kinds`, ordered by name (for `netwatch status`)."""
    rows = conn.execute(select(hosts).where(hosts.c.kind.in_(sorted(kinds))).order_by(hosts.c.name)).mappings()
    return [
        HostRow(
            name=row["name"],
            address=row["address"],
            account=row["account"],
            partition=row["partition_code"],
            zone=row["zone_code"],
            state=HostState(
                status=Status(row["status"]),
                consecutive_failures=row["consecutive_failures"],
                consecutive_successes=row["consecutive_successes"],
                last_transition_at=row["last_transition_at"],
                held=bool(row["held"]),
                held_since=row["held_since"],
            ),
            last_check_at=row["last_check_at"],
            last_check_status=row["last_check_status"],
            last_run_id=row["last_run_id"],
            kind=row["kind"],
            client=row["client"],
            answer=LastAnswer(row["last_status_code"], row["last_size_bytes"], row["last_excerpt"]),
        )
        for row in rows
    ]
