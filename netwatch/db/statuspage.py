"""The reads behind the status page: a fixed number of queries, whatever the number of hosts and checks.

History times are returned as whole epoch seconds (the history tables' unit), so the page's
arithmetic (netwatch/core/statuspage.py) works on plain integers.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, and_, case, func, literal, not_, select, type_coerce
from sqlalchemy.engine import Connection

from netwatch.core.rollup import DAY
from netwatch.core.statuspage import DAYS, HOST_KIND, MASK_DAYS, DailyUptime
from netwatch.db.runs import COMMITTED
from netwatch.db.tables import account_cache, hosts, job_runs, rollups_daily, rollups_hourly, targets, transitions


@dataclass(frozen=True)
class PageHost:
    """A host or an HTTP or TCP check (`kind`) of the current inventory; `target_id` None while it has no
    history yet. Never its address: a check's URL is not for a public page."""

    name: str
    account: str | None
    status: str
    since: datetime | None
    target_id: int | None
    kind: str
    client: str | None


def load_page_hosts(conn: Connection) -> list[PageHost]:
    """Every host and check with its state, since when, kind, client and history id (one query)."""
    rows = conn.execute(
        select(hosts.c.name, hosts.c.account, hosts.c.status, hosts.c.last_transition_at, targets.c.id,
               hosts.c.kind, hosts.c.client)
        .select_from(hosts.outerjoin(targets, targets.c.name == hosts.c.name))
    )
    return [PageHost(r.name, r.account, r.status, r.last_transition_at, r.id, r.kind, r.client) for r in rows]


def load_account_names(conn: Connection) -> dict[str, str]:
    """The cached name of every account of the hosts that Segware knows (one query, any age).

    An old name is better than none on a status page, so the enrichment TTL does not apply here. Checks
    are shown by client, so their accounts need no name.
    """
    of_hosts = select(hosts.c.account).where(and_(hosts.c.kind == HOST_KIND, hosts.c.account.is_not(None)))
    rows = conn.execute(
        select(account_cache.c.account, account_cache.c.payload).where(
            and_(account_cache.c.found.is_(True), account_cache.c.account.in_(of_hosts)))
    )
    names = {}
    for row in rows:
        name = json.loads(row.payload).get("name") if row.payload else None
        if isinstance(name, str) and name.strip():
            names[row.account] = name.strip()
    return names


def _epoch(column: object) -> object:
    # The raw integer: no datetime per row for hundreds of thousands of rows.
    return type_coerce(column, Integer)


def load_daily_uptime(conn: Connection, first_day_s: int, recent_from_s: int) -> DailyUptime:
    """The daily rollups from `first_day_s` on, in two queries returning about one row per host.

    A day fully online (the usual day) comes back as a bit in its host's masks (`MASK_DAYS` days a
    mask, portable 64-bit sums of `1 << index`); only the other days come back as rows. 900,000 rows
    for 10,000 hosts cost seconds to fetch; a row per host and the rare partial days do not.
    """
    day = _epoch(rollups_daily.c.day)
    index = (day - first_day_s) // DAY  # type: ignore[operator]
    full = and_(rollups_daily.c.offline_s == 0, rollups_daily.c.online_s > 0)
    masks = [
        func.sum(case((and_(full, index >= part * MASK_DAYS, index < (part + 1) * MASK_DAYS),
                       literal(1, Integer).op("<<")(index - part * MASK_DAYS)), else_=0))
        for part in range(DAYS // MASK_DAYS)
    ]
    recent = day >= recent_from_s  # type: ignore[operator]
    totals = [func.sum(case((recent, rollups_daily.c.online_s), else_=0)),
              func.sum(case((recent, rollups_daily.c.offline_s), else_=0))]
    since = day >= first_day_s  # type: ignore[operator]
    per_target = conn.execute(
        select(rollups_daily.c.target_id, *masks, *totals).where(since).group_by(rollups_daily.c.target_id))
    partial = conn.execute(
        select(rollups_daily.c.target_id, day, rollups_daily.c.online_s, rollups_daily.c.offline_s)
        .where(and_(since, not_(full)))
    )
    # MariaDB sums to DECIMAL: the masks and totals are whole numbers either way.
    return DailyUptime(full=[(row[0], *map(int, row[1:])) for row in per_target],  # type: ignore[misc]
                       partial=partial.all())  # type: ignore[arg-type]


def load_hourly_rtt(conn: Connection, first_hour_s: int) -> list[tuple[int, int, int, int]]:
    """(target id, hour, rtt_sum_us, rtt_samples) of every hourly rollup with replies from `first_hour_s` on
    (one query); the hour's average is the sum over the samples."""
    hour = _epoch(rollups_hourly.c.hour)
    r = rollups_hourly.c
    rows = conn.execute(
        select(r.target_id, hour, r.rtt_sum_us, r.rtt_samples)
        .where(and_(hour >= first_hour_s, r.rtt_samples > 0))  # type: ignore[operator]
    )
    return rows.all()  # type: ignore[return-value]


def load_changes(conn: Connection, since_s: int) -> list[tuple[int, int, int]]:
    """(target id, at, to-state code) of the transitions from `since_s` on, and of each host's last one
    before it (the state it entered the period in, so an outage that began earlier is seen). Two queries."""
    at = _epoch(transitions.c.at)
    before = (
        select(transitions.c.target_id, func.max(at).label("at"))
        .where(at < since_s)  # type: ignore[operator]
        .group_by(transitions.c.target_id)
        .subquery()
    )
    last_before = conn.execute(
        select(transitions.c.target_id, at, transitions.c.to_state).join(
            before, and_(before.c.target_id == transitions.c.target_id, before.c.at == at))
    )
    recent = conn.execute(
        select(transitions.c.target_id, at, transitions.c.to_state).where(at >= since_s)  # type: ignore[operator]
    )
    return [*last_before.all(), *recent.all()]  # type: ignore[list-item]


def last_successes(conn: Connection, jobs: Collection[str]) -> dict[str, datetime | None]:
    """The start of each job's latest committed run, any shard (None: it never succeeded).

    One query per job, each answered by the (job, started_at) index at once.
    """
    found: dict[str, datetime | None] = {}
    for job in sorted(jobs):
        found[job] = conn.execute(
            select(job_runs.c.started_at)
            .where(and_(job_runs.c.job == job, job_runs.c.outcome.in_(COMMITTED)))
            .order_by(job_runs.c.started_at.desc())
            .limit(1)
        ).scalar()
    return found
