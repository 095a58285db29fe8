"""The read model of incidents: offline periods from `transitions`, with the events sent about them.

Reading a period takes the transitions inside it plus each host's last one before it (one
statement each), so an incident that began earlier is seen, with its real start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, func, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from netwatch.core.rollup import Incident, incidents_of
from netwatch.db.outbox import statuses_of
from netwatch.db.tables import hosts, targets, transitions

COLUMNS = ("host", "account", "start", "end", "duration_s", "start_event", "start_event_status", "end_event",
           "end_event_status")
TABLE = ("host", "account", "start", "end", "duration_s", "start_event_status", "end_event_status")
ONGOING = "ongoing"


@dataclass(frozen=True)
class Scope:
    """Which hosts a report covers (by current inventory account) and what one row stands for."""

    host: str | None = None
    account: str | None = None
    by: str = "host"

    def filters(self) -> list[ColumnElement[bool]]:
        """Conditions on `targets` and `hosts` (outer-joined by name) that select the scope's hosts."""
        chosen = []
        if self.host is not None:
            chosen.append(targets.c.name == self.host)
        if self.account is not None:
            chosen.append(hosts.c.account == self.account)
        return chosen


@dataclass(frozen=True)
class LocatedIncident:
    """An incident with its host's name and account and the event keys of its start and end."""

    host: str
    account: str | None
    incident: Incident
    start_key: str | None
    end_key: str | None


def _changes(conn: Connection, condition: ColumnElement[bool], scope: Scope) -> list[Any]:
    return list(conn.execute(
        select(transitions.c.target_id, type_coerce(transitions.c.at, Integer).label("at"), transitions.c.to_state,
               transitions.c.event_key, targets.c.name, hosts.c.account)
        .select_from(transitions.join(targets, targets.c.id == transitions.c.target_id)
                     .outerjoin(hosts, hosts.c.name == targets.c.name))
        .where(and_(condition, *scope.filters()))
    ))


def incidents_in(conn: Connection, start_s: int, until_s: int, scope: Scope) -> list[LocatedIncident]:
    """Incidents of the scope's hosts that were ongoing at some time in [start_s, until_s)."""
    at = type_coerce(transitions.c.at, Integer)
    inside = _changes(conn, and_(at >= start_s, at < until_s), scope)
    rows = inside
    if start_s > 0:
        latest = (select(transitions.c.target_id, func.max(at).label("at"))
                  .where(at < start_s).group_by(transitions.c.target_id).subquery())
        rows += _changes(conn, and_(transitions.c.target_id == latest.c.target_id, at == latest.c.at), scope)
    keys = {(row.target_id, row.at): row.event_key for row in rows}
    where = {row.target_id: (row.name, row.account) for row in rows}
    located = []
    for incident in incidents_of((row.target_id, row.at, row.to_state) for row in rows):
        if incident.end_s is not None and incident.end_s <= start_s:
            continue
        name, account = where[incident.target_id]
        end_key = None if incident.end_s is None else keys[(incident.target_id, incident.end_s)]
        located.append(LocatedIncident(name, account, incident, keys[(incident.target_id, incident.start_s)], end_key))
    return located


def _time(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def incident_rows(conn: Connection, start_s: int, now_s: int, scope: Scope, open_only: bool) -> list[dict[str, Any]]:
    """`report incidents`: each incident ongoing at some time since `start_s`, oldest first."""
    found = [item for item in incidents_in(conn, start_s, now_s + 1, scope)
             if not open_only or item.incident.end_s is None]
    statuses = statuses_of(conn, {key for item in found for key in (item.start_key, item.end_key) if key})
    return [
        {"host": item.host, "account": item.account, "start": _time(item.incident.start_s),
         "end": ONGOING if item.incident.end_s is None else _time(item.incident.end_s),
         "duration_s": item.incident.duration_s(now_s),
         "start_event": item.start_key, "start_event_status": statuses.get(item.start_key or ""),
         "end_event": item.end_key, "end_event_status": statuses.get(item.end_key or "")}
        for item in sorted(found, key=lambda i: (i.incident.start_s, i.host))
    ]

