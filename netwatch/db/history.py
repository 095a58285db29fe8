"""The history a ping-sweep run writes: target ids, error texts, raw checks and confirmed transitions.

Each function is a fixed number of statements whatever the number of hosts (an executemany counts
once); the rollups are netwatch/db/rollups.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from netwatch import limits
from netwatch.core.history import CheckEntry
from netwatch.db.tables import check_errors, checks, targets, transitions
from netwatch.db.upsert import insert_integer_rows, insert_missing

# Target names looked up in one IN list at most (SQLite allows 32,766 bound parameters).
_LISTED_NAMES = 10_000


@dataclass(frozen=True)
class TransitionRow:
    """A confirmed change of one host's state (codes of core.rollup.STATE_CODES)."""

    target_id: int
    at: datetime
    from_state: int
    to_state: int
    streak: int
    held_s: int
    run_id: int | None
    event_key: str | None


def target_ids(conn: Connection, names: Collection[str], now: datetime,
               known: Mapping[str, int] | None = None) -> dict[str, int]:
    """The id of every name in `names`, creating the missing ones; `known`: ids the caller already read.

    No statement when `known` has every name (a steady run: load_host_states reads them with the
    hosts), else one SELECT of the others, two more when some are new. Existing names are never
    inserted again: an ignored INSERT still uses up auto-increment ids on InnoDB.
    """
    given = known or {}
    wanted = set(names) - given.keys()
    if not wanted:
        return {name: given[name] for name in names}
    # Many names (a first run) read the whole table: an IN list that long passes SQLite's parameter limit.
    only = wanted if len(wanted) <= _LISTED_NAMES else None
    found = _ids(conn, targets, targets.c.name, only)
    missing = sorted(wanted - found.keys())
    if missing:
        insert_missing(conn, targets, [{"name": name, "created_at": now} for name in missing])
        found = _ids(conn, targets, targets.c.name, only)
    return {name: given[name] if name in given else found[name] for name in names}


def error_ids(conn: Connection, texts: Collection[str]) -> dict[str, int]:
    """The id of every error text (cut to the column's length), creating the missing ones."""
    wanted = {_cut(text) for text in texts}
    if not wanted:
        return {}
    known = _ids(conn, check_errors, check_errors.c.text, wanted)
    missing = sorted(wanted - known.keys())
    if missing:
        insert_missing(conn, check_errors, [{"text": text} for text in missing])
        known = _ids(conn, check_errors, check_errors.c.text, wanted)
    return {text: known[_cut(text)] for text in texts}


def insert_checks(conn: Connection, entries: Sequence[CheckEntry], errors: dict[str, int]) -> None:
    """Inserts the raw rows, `errors` giving the id of each entry's error text; one batch."""
    # Tuples of driver values, all integers (checked_at as epoch seconds): SQLAlchemy's processing of
    # 10,000 rows of parameters cost more than the INSERT, and so did PyMySQL's escaping of them.
    insert_integer_rows(conn, checks, [column.name for column in checks.columns], [
        (e.checked_at, e.target_id, e.status, e.prior, e.state, e.gap_s, e.sent, e.received, e.attempts,
         e.rtt_min_us, e.rtt_avg_us, e.rtt_max_us, e.rtt_bucket, None if e.error is None else errors[e.error])
        for e in entries
    ])


def checked_targets(conn: Connection, checked_at: int) -> set[int]:
    """The targets that already have a check at `checked_at` (a clock stepped back onto an earlier run)."""
    at = datetime.fromtimestamp(checked_at, UTC)
    return set(conn.execute(select(checks.c.target_id).where(checks.c.checked_at == at)).scalars())


def insert_transitions(conn: Connection, rows: Sequence[TransitionRow]) -> None:
    """Inserts the confirmed changes in one batch."""
    if rows:
        conn.execute(transitions.insert(), [asdict(row) for row in rows])


def _ids(conn: Connection, table: Table, column: object, only: Collection[str] | None) -> dict[str, int]:
    query = select(table.c.id, column)
    if only is not None:
        query = query.where(column.in_(sorted(only)))  # type: ignore[attr-defined]
    return {value: id_ for id_, value in conn.execute(query)}


def _cut(text: str) -> str:
    return text[: limits.ERROR_TEXT]
