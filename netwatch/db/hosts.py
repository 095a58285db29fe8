"""`hosts`: what is checked (hosts, HTTP and TCP checks) as last seen, plus each one's threshold state.

Each checking job reads, writes and removes only the rows of its own kinds (`kind`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Update, and_, bindparam, case, delete, select, update
from sqlalchemy.engine import Connection

from netwatch.core.hoststate import HostState, Status
from netwatch.db.tables import hosts, targets
from netwatch.db.types import JoinedValues, UTCReader, split_values
from netwatch.db.upsert import upsert_rows

_UPDATED_COLUMNS = [column.name for column in hosts.columns if column.name != "name"]
# Names per DELETE or steady UPDATE: under SQLite's 32,766 bound parameters; a whole 10,000-host
# inventory in one.
_NAMES_BATCH = 10_000


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


# The answer of a subject that has none (hosts, TCP checks): one instance for them all.
NO_ANSWER = LastAnswer()


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
    answer: LastAnswer = NO_ANSWER


@dataclass(frozen=True)
class StoredHost:
    """What the last run stored of a host: where and when it was checked, its threshold state, the
    last check's status and answer, and its id in the history's `targets` (None while it has none)."""

    address: str
    account: str | None
    partition: str | None
    zone: str | None
    state: HostState
    last_check_at: datetime | None = None
    kind: str = HOST
    client: str | None = None
    last_check_status: str | None = None
    answer: LastAnswer = NO_ANSWER
    target_id: int | None = None


def load_host_states(conn: Connection, kinds: Collection[str]) -> dict[str, StoredHost]:
    """Every stored row of `kinds` (all that `save_hosts` compares), by name, with its target id, in one query.

    The few-valued columns (state, check time and status, kind, answer numbers) come as one text
    (`JoinedValues`), converted once per distinct text: a run's hosts share a handful (a steady
    inventory one or two), and equal stored states are one object. Per row the driver
    decodes 9 columns rather than 19, and no column type processes a value.
    """
    c = hosts.c
    query = (select(c.name, c.address, c.account, c.partition_code, c.zone_code,
                    JoinedValues(*[c[name] for name in _JOINED]), c.client, c.last_excerpt, targets.c.id)
             .select_from(hosts.outerjoin(targets, targets.c.name == c.name))
             .where(c.kind.in_(sorted(kinds))))
    utc = UTCReader()
    shared: dict[str, _Shared] = {}
    states: dict[HostState, HostState] = {}
    found: dict[str, StoredHost] = {}
    for name, address, account, partition, zone, joined, client, excerpt, target_id in conn.execute(query):
        fields = shared.get(joined)
        if fields is None:
            fields = shared[joined] = _shared_fields(joined, utc, states)
        answer = fields.answer if excerpt is None else replace(fields.answer, excerpt=excerpt)
        found[name] = StoredHost(address, account, partition, zone, fields.state, fields.last_check_at, fields.kind,
                                 client, fields.last_check_status, answer, target_id)
    return found


# The columns load_host_states reads joined, in the order `_shared_fields` reads them.
_JOINED = ("status", "consecutive_failures", "consecutive_successes", "last_transition_at", "held", "held_since",
           "last_check_at", "kind", "last_check_status", "last_status_code", "last_size_bytes")


@dataclass(frozen=True)
class _Shared:
    """What one `_JOINED` text gives: the fields of a StoredHost that hosts share."""

    state: HostState
    last_check_at: datetime | None
    kind: str
    last_check_status: str | None
    answer: LastAnswer


def _shared_fields(joined: str, utc: UTCReader, states: dict[HostState, HostState]) -> _Shared:
    """The fields of one `_JOINED` text; its state the one of `states` equal to it (added when new)."""
    (status, failures, successes, transition_at, held, held_since, checked_at, kind, check_status, status_code,
     size_bytes) = split_values(joined)
    state = HostState(Status(status), int(failures or 0), int(successes or 0), utc(transition_at), held == "1",
                      utc(held_since))
    state = states.setdefault(state, state)
    answer = (NO_ANSWER if status_code is None and size_bytes is None
              else LastAnswer(_integer(status_code), _integer(size_bytes)))
    return _Shared(state, utc(checked_at), kind or HOST, check_status, answer)


def _integer(text: str | None) -> int | None:
    return None if text is None else int(text)


def is_steady(row: HostRow, stored: StoredHost) -> bool:
    """Whether `row` is what the steady update (`_steady_update`) makes of `stored`: the same in all
    but the check time, the run and the streak counter that was running, one longer."""
    new, old = row.state, stored.state
    return (new.consecutive_successes == _one_longer(old.consecutive_successes)
            and new.consecutive_failures == _one_longer(old.consecutive_failures)
            and new.status == old.status and new.last_transition_at == old.last_transition_at
            and new.held == old.held and new.held_since == old.held_since
            and row.last_check_status == stored.last_check_status and row.answer == stored.answer
            and row.address == stored.address and row.account == stored.account
            and row.partition == stored.partition and row.zone == stored.zone
            and row.kind == stored.kind and row.client == stored.client)


def _one_longer(streak: int) -> int:
    """A streak counter after one more check of the same outcome, as the steady update's CASE computes it."""
    return streak + 1 if streak > 0 else 0


def save_hosts(conn: Connection, rows: Sequence[HostRow], stored: Mapping[str, StoredHost] | None = None) -> None:
    """Writes `rows` (inventory fields and state) over what `load_host_states` read as `stored`.

    A steady row (`is_steady`) gets the set-based update (one statement per 10,000 names and per
    check time and run, which a pass shares); every other row is upserted whole in one statement.
    The table ends as if every row had been upserted.
    """
    known = stored or {}
    steady: dict[tuple[datetime | None, int | None], list[str]] = {}
    changed = []
    for row in rows:
        before = known.get(row.name)
        if before is not None and is_steady(row, before):
            steady.setdefault((row.last_check_at, row.last_run_id), []).append(row.name)
        else:
            changed.append(row)
    _upsert_hosts(conn, changed)
    for (checked_at, run_id), names in steady.items():
        for start in range(0, len(names), _NAMES_BATCH):
            conn.execute(_steady_update(checked_at, run_id), {"names": names[start : start + _NAMES_BATCH]})


def _steady_update(checked_at: datetime | None, run_id: int | None) -> Update:
    """The running streak counter one longer, and the check time and run set, of the rows `names`."""
    c = hosts.c
    return (update(hosts).where(c.name.in_(bindparam("names", expanding=True)))
            .values(consecutive_successes=case((c.consecutive_successes > 0, c.consecutive_successes + 1), else_=0),
                    consecutive_failures=case((c.consecutive_failures > 0, c.consecutive_failures + 1), else_=0),
                    last_check_at=checked_at, last_run_id=run_id))


def _upsert_hosts(conn: Connection, rows: Sequence[HostRow]) -> None:
    """Upserts every row whole in one statement."""
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
    return sum(conn.execute(delete(hosts).where(and_(kind, hosts.c.name.in_(ordered[start : start + _NAMES_BATCH]))))
               .rowcount
               for start in range(0, len(ordered), _NAMES_BATCH))


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
