"""The read model of `report uptime` and `report daily`: counters summed in SQL, then figures per row.

The counters come from `rollups_daily` (whole UTC days; works after raw checks are gone) or, with
`from_raw`, from the raw `checks` rows, each check's gap split at the period's edges and its RTT
bucket counted into the same histogram: both give the same figures for the same data. Either way
the sums are one GROUP BY statement (a row per host or account, never per host-day), plus one
statement each for the incidents and the account names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, func, literal, literal_column, or_, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, FromClause

from netwatch.core.periods import Period
from netwatch.core.rollup import CHECK_CODES, RTT_BUCKETS, STATE_CODES
from netwatch.core.uptime import Totals, downtime, uptime_figures
from netwatch.db.accounts import account_names
from netwatch.db.tables import checks, hosts, rollups_daily, targets
from netwatch.history.incidents import Scope, incidents_in

FIGURES = ("uptime_pct", "online_s", "offline_s", "unknown_s", "checks", "good_checks", "check_success_pct",
           "incidents", "downtime_s", "longest_downtime_s", "mttr_s", "loss_pct", "latency_avg_ms",
           "latency_p95_ms", "latency_max_ms")
HOST_COLUMNS = ("host", "account", "account_name", "from", "to", *FIGURES)
ACCOUNT_COLUMNS = ("account", "account_name", "hosts", "from", "to", *FIGURES)
HOST_TABLE = ("host", "account", "uptime_pct", "unknown_s", "check_success_pct", "incidents", "downtime_s",
              "longest_downtime_s", "mttr_s", "loss_pct", "latency_avg_ms", "latency_p95_ms", "latency_max_ms")
ACCOUNT_TABLE = ("account", "account_name", "hosts", *HOST_TABLE[2:])
DAILY_COLUMNS = ("host", "account", "date", "checks", "good_checks", "uptime_pct", "latency_avg_ms", "incidents")


@dataclass(frozen=True)
class _Sums:
    """One source's counters as SQL expressions, over rows of `source` in the period."""

    source: FromClause
    target_id: ColumnElement[int]
    where: ColumnElement[bool]
    columns: dict[str, ColumnElement[Any]]


def _epoch(column: ColumnElement[Any]) -> ColumnElement[int]:
    # EpochSeconds columns as the integers they are stored as: plain arithmetic and comparisons.
    return type_coerce(column, Integer)


def _sum(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # A sum of doubles: MariaDB sums integers as DECIMAL, twice as slow over 900,000 host-days; a
    # double holds every integer up to 2**53 exactly, far above any of these sums.
    return func.sum(literal_column("1e0") * column)


def _rollup_sums(period: Period) -> _Sums:
    r = rollups_daily.c
    day = _epoch(r.day)
    columns = {
        "checks": _sum(r.checks), "ok": _sum(r.ok), "degraded": _sum(r.degraded),
        "failed": _sum(r.failed), "sent": _sum(r.sent), "received": _sum(r.received),
        "rtt_samples": _sum(r.rtt_samples), "rtt_min_us": func.min(r.rtt_min_us),
        "rtt_sum_us": _sum(r.rtt_sum_us), "rtt_max_us": func.max(r.rtt_max_us),
        "online_s": _sum(r.online_s), "offline_s": _sum(r.offline_s),
        **{f"h{k:02d}": _sum(r[f"h{k:02d}"]) for k in range(RTT_BUCKETS)},
    }
    return _Sums(rollups_daily, r.target_id, and_(day >= period.start_s, day < period.end_s), columns)


def _raw_sums(period: Period) -> _Sums:
    c = checks.c
    at = _epoch(c.checked_at)
    began = at - c.gap_s
    counted = at < period.end_s

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((and_(counted, condition), 1), else_=0))

    # The part of [checked_at - gap_s, checked_at) inside the period, credited to the prior state.
    inside = (case((at < period.end_s, at), else_=literal(period.end_s))
              - case((began > period.start_s, began), else_=literal(period.start_s)))

    def time_in(state: str) -> ColumnElement[Any]:
        return func.sum(case((c.prior == STATE_CODES[state], inside), else_=0))

    def in_period(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return case((counted, column), else_=None)

    columns = {
        "checks": count_if(literal(True)), "ok": count_if(c.status == CHECK_CODES["ok"]),
        "degraded": count_if(c.status == CHECK_CODES["degraded"]),
        "failed": count_if(c.status == CHECK_CODES["failed"]),
        "sent": func.sum(in_period(c.sent)), "received": func.sum(in_period(c.received)),
        "rtt_samples": count_if(c.rtt_avg_us.is_not(None)), "rtt_min_us": func.min(in_period(c.rtt_min_us)),
        "rtt_sum_us": func.sum(in_period(c.rtt_avg_us)), "rtt_max_us": func.max(in_period(c.rtt_max_us)),
        "online_s": time_in("online"), "offline_s": time_in("offline"),
        **{f"h{k:02d}": count_if(c.rtt_bucket == k) for k in range(RTT_BUCKETS)},
    }
    # Checks in the period, and the first ones after it whose gap reaches back into it.
    where = and_(at >= period.start_s, or_(counted, began < period.end_s))
    return _Sums(checks, c.target_id, where, columns)


def _totals(row: Any) -> Totals:
    def number(name: str) -> int:
        return int(getattr(row, name) or 0)

    return Totals(
        hosts=number("hosts"), checks=number("checks"), ok=number("ok"), degraded=number("degraded"),
        failed=number("failed"), sent=number("sent"), received=number("received"),
        rtt_samples=number("rtt_samples"),
        rtt_min_us=None if row.rtt_min_us is None else int(row.rtt_min_us),
        rtt_sum_us=number("rtt_sum_us"),
        rtt_max_us=None if row.rtt_max_us is None else int(row.rtt_max_us),
        online_s=number("online_s"), offline_s=number("offline_s"),
        histogram=tuple(number(f"h{k:02d}") for k in range(RTT_BUCKETS)),
    )


# How per-host sums combine into an account's: most add up, the RTT extremes do not.
_COMBINE = {"rtt_min_us": func.min, "rtt_max_us": func.max}


def uptime_rows(conn: Connection, period: Period, scope: Scope, from_raw: bool = False) -> list[dict[str, Any]]:
    """One row per host (scope.by "host") or account ("account") with data in the period, ordered by key."""
    sums = _raw_sums(period) if from_raw else _rollup_sums(period)
    # Summed per host first, from the one table: only those rows (a row per host) meet the joins.
    labelled = [column.label(name) for name, column in sums.columns.items()]
    per_host = (select(sums.target_id.label("target_id"), *labelled)
                .where(sums.where).group_by(sums.target_id).subquery())
    joined = (per_host.join(targets, targets.c.id == per_host.c.target_id)
              .outerjoin(hosts, hosts.c.name == targets.c.name))
    by_account = scope.by == "account"
    if by_account:
        statement = (
            select(hosts.c.account.label("key"), func.max(hosts.c.account).label("account"),
                   func.count().label("hosts"),
                   *[_COMBINE.get(name, func.sum)(per_host.c[name]).label(name) for name in sums.columns])
            .select_from(joined).where(*scope.filters()).group_by(hosts.c.account)
        )
    else:
        statement = (
            select(targets.c.name.label("key"), hosts.c.account, literal(1).label("hosts"),
                   *[per_host.c[name] for name in sums.columns])
            .select_from(joined).where(*scope.filters())
        )
    rows = list(conn.execute(statement))
    incidents: dict[str | None, list[Any]] = {}
    for located in incidents_in(conn, period.start_s, period.until_s, scope):
        incidents.setdefault(located.account if by_account else located.host, []).append(located.incident)
    names = account_names(conn, {row.account for row in rows if row.account is not None})
    result = []
    for row in sorted(rows, key=lambda r: (r.key is None, r.key or "")):
        figures = uptime_figures(_totals(row), period, downtime(incidents.get(row.key, []), period))
        label = {"account": row.key} if by_account else {"host": row.key, "account": row.account}
        result.append({**label, "account_name": names.get(row.account), "hosts": row.hosts,
                       "from": period.first_day.isoformat(), "to": period.last_day.isoformat(), **figures})
    return result


def daily_rows(conn: Connection, period: Period, scope: Scope) -> Sequence[dict[str, Any]]:
    """`report daily`: per host of the day, its checks, good checks, uptime, average latency, incidents."""
    return [{**row, "date": row["from"]} for row in uptime_rows(conn, period, scope)]
