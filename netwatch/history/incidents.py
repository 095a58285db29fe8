"""The read model of incidents: offline periods from `transitions`, with the events sent about them.

Reading a period takes the transitions inside it plus each host's last one before it (one
statement each), so an incident that began earlier is seen, with its real start. An incident
starts at a change to offline and ends at the host's next change (there is no change from offline
to offline). `downtime_sums` sums them per host in SQL, with the same rules, for the reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, case, func, literal, or_, select, type_coerce, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from netwatch.core.periods import Period
from netwatch.core.rollup import STATE_CODES, Incident, incidents_of
from netwatch.core.uptime import DowntimeSums
from netwatch.db.outbox import statuses_of
from netwatch.db.tables import hosts, targets, transitions

COLUMNS = ("host", "kind", "client", "account", "start", "end", "duration_s", "start_event", "start_event_status",
           "end_event", "end_event_status")
TABLE = ("host", "kind", "client", "account", "start", "end", "duration_s", "start_event_status", "end_event_status")
ONGOING = "ongoing"


@dataclass(frozen=True)
class Scope:
    """Which hosts and checks a report covers (by the current state's account, client and kind: one
    no longer monitored has none) and what one row stands for (by "host", "account" or "client")."""

    host: str | None = None
    account: str | None = None
    client: str | None = None
    kinds: Sequence[str] = ()
    by: str = "host"

    def filters(self) -> list[ColumnElement[bool]]:
        """Conditions on `targets` and `hosts` (outer-joined by name) that select the scope's hosts."""
        chosen = []
        if self.host is not None:
            chosen.append(targets.c.name == self.host)
        if self.account is not None:
            chosen.append(hosts.c.account == self.account)
        if self.client is not None:
            chosen.append(hosts.c.client == self.client)
        if self.kinds:
            chosen.append(hosts.c.kind.in_(self.kinds))
        return chosen


@dataclass(frozen=True)
class LocatedIncident:
    """An incident with its host's name, kind, client and account and the event keys of its start and end."""

    host: str
    kind: str | None
    client: str | None
    account: str | None
    incident: Incident
    start_key: str | None
    end_key: str | None


def _changes(conn: Connection, condition: ColumnElement[bool], scope: Scope) -> list[Any]:
    return list(conn.execute(
        select(transitions.c.target_id, type_coerce(transitions.c.at, Integer).label("at"), transitions.c.to_state,
               transitions.c.event_key, targets.c.name, hosts.c.kind, hosts.c.client, hosts.c.account)
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
    where = {row.target_id: (row.name, row.kind, row.client, row.account) for row in rows}
    located = []
    for incident in incidents_of((row.target_id, row.at, row.to_state) for row in rows):
        if incident.end_s is not None and incident.end_s <= start_s:
            continue
        end_key = None if incident.end_s is None else keys[(incident.target_id, incident.end_s)]
        located.append(LocatedIncident(*where[incident.target_id], incident,
                                       keys[(incident.target_id, incident.start_s)], end_key))
    return located


def downtime_sums(conn: Connection, period: Period, scope: Scope) -> dict[str, tuple[str | None, DowntimeSums]]:
    """Per host (by name) of the scope with an incident ongoing at some time in the known part of
    `period`: its group (its account, or its client when scope.by is "client") and its incidents
    summed (one statement, a row per host).

    The transitions read are those of `incidents_in`; each change to offline meets the host's next
    change and is clipped to [start, until): an incident still open at `until` counts up to it and
    has not ended. A change inside the period finds its next with a window function over the
    period's changes alone (straight from the table, nothing gathered first); the host's last change
    before the period (the latest of those at its time) meets its first change inside it.
    """
    t = transitions.c
    at = type_coerce(t.at, Integer)
    latest = (select(t.target_id, func.max(at).label("at")).where(at < period.start_s)
              .group_by(t.target_id).subquery("latest"))
    later, tied = transitions.alias("later"), transitions.alias("tied")
    later_at = type_coerce(later.c.at, Integer)
    first_inside = (select(func.min(later_at))
                    .where(later.c.target_id == t.target_id, later_at >= period.start_s, later_at < period.until_s)
                    .scalar_subquery())
    last_tied = select(func.max(tied.c.id)).where(tied.c.target_id == t.target_id, tied.c.at == t.at).scalar_subquery()
    spans = union_all(
        select(t.target_id, at.label("start"),
               func.lead(at).over(partition_by=t.target_id, order_by=(at, t.id)).label("end"), t.to_state)
        .where(at >= period.start_s, at < period.until_s),
        select(t.target_id, at.label("start"), first_inside.label("end"), t.to_state)
        .join(latest, and_(latest.c.target_id == t.target_id, latest.c.at == at))
        .where(t.id == last_tied),
    ).subquery("spans")
    until, start = literal(period.until_s, Integer), literal(period.start_s, Integer)
    end = case((or_(spans.c.end.is_(None), spans.c.end > until), until), else_=spans.c.end)
    inside = end - case((spans.c.start > start, spans.c.start), else_=start)
    ended = and_(spans.c.end.is_not(None), spans.c.end <= until)
    # Summed per host id first: the names and the scope's filters then meet a row per host, not per incident.
    per_host = (
        select(spans.c.target_id, func.count().label("incidents"),
               func.sum(inside).label("total"), func.max(inside).label("longest"),
               func.sum(case((ended, 1), else_=0)).label("ended"),
               func.sum(case((ended, spans.c.end - spans.c.start), else_=0)).label("ended_s"))
        .where(spans.c.to_state == STATE_CODES["offline"], or_(spans.c.end.is_(None), spans.c.end > start))
        .group_by(spans.c.target_id)
        .subquery("per_host")
    )
    rows = conn.execute(
        select(targets.c.name, (hosts.c.client if scope.by == "client" else hosts.c.account).label("group"),
               per_host.c.incidents, per_host.c.total, per_host.c.longest, per_host.c.ended, per_host.c.ended_s)
        .select_from(per_host.join(targets, targets.c.id == per_host.c.target_id)
                     .outerjoin(hosts, hosts.c.name == targets.c.name))
        .where(*scope.filters())
    )
    return {row.name: (row.group, DowntimeSums(int(row.incidents), int(row.total), int(row.longest),
                                                 int(row.ended), int(row.ended_s)))
            for row in rows}


def _time(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def incident_rows(conn: Connection, start_s: int, now_s: int, scope: Scope, open_only: bool) -> list[dict[str, Any]]:
    """`report incidents`: each incident ongoing at some time since `start_s`, grouped by client (hosts and
    checks without one first), oldest first in each group."""
    found = [item for item in incidents_in(conn, start_s, now_s + 1, scope)
             if not open_only or item.incident.end_s is None]
    statuses = statuses_of(conn, {key for item in found for key in (item.start_key, item.end_key) if key})
    return [
        {"host": item.host, "kind": item.kind, "client": item.client, "account": item.account,
         "start": _time(item.incident.start_s),
         "end": ONGOING if item.incident.end_s is None else _time(item.incident.end_s),
         "duration_s": item.incident.duration_s(now_s),
         "start_event": item.start_key, "start_event_status": statuses.get(item.start_key or ""),
         "end_event": item.end_key, "end_event_status": statuses.get(item.end_key or "")}
        for item in sorted(found, key=lambda i: (i.client is not None, i.client or "", i.incident.start_s, i.host))
    ]

