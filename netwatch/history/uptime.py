"""The read model of `report uptime` and `report daily`: counters summed in SQL, then figures per row.

The counters come from `rollups_daily` (whole UTC days; works after raw checks are gone): as
differences of month-to-date totals, a few rows per host whatever the period's length; or, with
`from_raw`, from the raw `checks` rows, each check's gap split at the period's edges and its RTT
bucket counted into the same histogram: both give the same figures for the same data. Either way
the sums are one statement (a row per host or account), plus one statement each for the incidents
and the account names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Subquery, and_, case, func, literal, or_, select, type_coerce, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from netwatch.core import mtd
from netwatch.core.mtd import HIST
from netwatch.core.periods import Period
from netwatch.core.rollup import CHECK_CODES, RTT_BUCKETS, STATE_CODES
from netwatch.core.uptime import DowntimeSums, Totals, downtime, uptime_figures
from netwatch.db.accounts import account_names
from netwatch.db.tables import checks, hosts, rollups_daily, targets
from netwatch.db.types import JoinedIntegers, split_integers
from netwatch.history.incidents import Scope, downtime_sums

FIGURES = ("uptime_pct", "online_s", "offline_s", "unknown_s", "checks", "good_checks", "check_success_pct",
           "incidents", "downtime_s", "longest_downtime_s", "mttr_s", "loss_pct", "latency_avg_ms",
           "latency_p95_ms", "latency_max_ms")
HOST_COLUMNS = ("host", "kind", "client", "account", "account_name", "from", "to", *FIGURES)
ACCOUNT_COLUMNS = ("account", "account_name", "hosts", "from", "to", *FIGURES)
CLIENT_COLUMNS = ("client", "hosts", "from", "to", *FIGURES)
_FIGURES_TABLE = ("uptime_pct", "unknown_s", "check_success_pct", "incidents", "downtime_s", "longest_downtime_s",
                  "mttr_s", "loss_pct", "latency_avg_ms", "latency_p95_ms", "latency_max_ms")
HOST_TABLE = ("host", "kind", "client", "account", *_FIGURES_TABLE)
ACCOUNT_TABLE = ("account", "account_name", "hosts", *_FIGURES_TABLE)
CLIENT_TABLE = ("client", "hosts", *_FIGURES_TABLE)
# Per `--by`: the columns of a row and those of the table.
COLUMNS_BY = {"host": (HOST_COLUMNS, HOST_TABLE), "account": (ACCOUNT_COLUMNS, ACCOUNT_TABLE),
              "client": (CLIENT_COLUMNS, CLIENT_TABLE)}
DAILY_COLUMNS = ("host", "kind", "client", "account", "date", "checks", "good_checks", "uptime_pct",
                 "latency_avg_ms", "incidents")


# The per-host counters both sources give, as columns of their per-host subquery.
_SUMMED = ("ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us", "online_s",
           "offline_s", *HIST)


def _epoch(column: ColumnElement[Any]) -> ColumnElement[int]:
    # EpochSeconds columns as the integers they are stored as: plain arithmetic and comparisons.
    return type_coerce(column, Integer)


def _rollup_per_host(period: Period) -> Subquery:
    """Per host with a daily row in the period: its counters as differences of month-to-date totals.

    Range scans of the covering index, one per piece of the period's windows (core.mtd.windows and
    pieces: a few per host, whatever the period's length), each grouped by host with nothing but
    MAX and MIN, find per host its latest row in each window and its RTT extremes; only those rows
    are then read whole, each counted with its window's sign.
    """
    r = rollups_daily.c
    day = _epoch(r.day)
    spans = mtd.windows(period.start_s, period.end_s)
    cut = mtd.pieces(spans, period.start_s)
    seen = union_all(*[
        select(r.target_id, literal(k, Integer).label("piece"), literal(int(first >= period.start_s), Integer)
               .label("inside"), func.max(day).label("day"), func.min(r.rtt_min_us).label("rtt_min_us"),
               func.max(r.rtt_max_us).label("rtt_max_us"))
        .where(day >= first, day <= last).group_by(r.target_id)
        for k, (first, last) in enumerate(cut)
    ]).subquery("seen")
    s = seen.c
    inside = s.inside == 1

    def latest_in(w: mtd.Window) -> ColumnElement[Any]:
        members = [k for k, (first, last) in enumerate(cut) if w.first_s <= first and last <= w.last_s]
        return func.max(case((s.piece.in_(members), s.day)))

    found = (
        select(s.target_id, *[latest_in(w).label(f"w{k}") for k, w in enumerate(spans)],
               func.min(case((inside, s.rtt_min_us))).label("rtt_min_us"),
               func.max(case((inside, s.rtt_max_us))).label("rtt_max_us"))
        .group_by(s.target_id)
        .having(func.max(s.inside) == 1)
        .subquery("found")
    )
    signs = union_all(*[select(literal(k, Integer).label("k"), literal(w.sign, Integer).label("sign"))
                        for k, w in enumerate(spans)]).subquery("signs")
    chosen = case(*[(signs.c.k == k, found.c[f"w{k}"]) for k in range(len(spans))])
    row = rollups_daily.alias("row")
    return (
        select(found.c.target_id.label("target_id"),
               *[func.sum(signs.c.sign * row.c[f"mtd_{name}"]).label(name) for name in _SUMMED],
               func.max(found.c.rtt_min_us).label("rtt_min_us"), func.max(found.c.rtt_max_us).label("rtt_max_us"))
        .select_from(found.join(signs, literal(True)).join(
            row, and_(row.c.target_id == found.c.target_id, _epoch(row.c.day) == chosen)))
        .group_by(found.c.target_id)
        .subquery("per_host")
    )


def _raw_per_host(period: Period) -> Subquery:
    """Per host with checks in the period: its counters summed from the raw checks, each check's gap
    split at the period's edges and its RTT bucket counted into the same histogram."""
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
        "ok": count_if(c.status == CHECK_CODES["ok"]),
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
    return (select(c.target_id.label("target_id"), *[column.label(name) for name, column in columns.items()])
            .where(where).group_by(c.target_id).subquery("per_host"))


def _totals(row: Any) -> Totals:
    ok, degraded, failed, sent, received, rtt_samples, rtt_sum_us, online_s, offline_s, *histogram = (
        split_integers(row.counters))
    return Totals(
        hosts=int(row.hosts), checks=ok + degraded + failed, ok=ok, degraded=degraded, failed=failed, sent=sent,
        received=received, rtt_samples=rtt_samples,
        rtt_min_us=None if row.rtt_min_us is None else int(row.rtt_min_us),
        rtt_sum_us=rtt_sum_us,
        rtt_max_us=None if row.rtt_max_us is None else int(row.rtt_max_us),
        online_s=online_s, offline_s=offline_s, histogram=tuple(histogram),
    )


# How per-host sums combine into an account's: most add up, the RTT extremes do not.
_COMBINE = {"rtt_min_us": func.min, "rtt_max_us": func.max}


def uptime_rows(conn: Connection, period: Period, scope: Scope, from_raw: bool = False) -> list[dict[str, Any]]:
    """One row per host or check (scope.by "host"), account ("account") or client ("client") with data
    in the period. Hosts and checks are grouped by client (none first), then ordered by name; accounts
    and clients are ordered by key, the rows of no account or client last."""
    per_host = _raw_per_host(period) if from_raw else _rollup_per_host(period)
    # Summed per host first: only those rows (a row per host) meet the joins.
    joined = (per_host.join(targets, targets.c.id == per_host.c.target_id)
              .outerjoin(hosts, hosts.c.name == targets.c.name))
    group = {"account": hosts.c.account, "client": hosts.c.client}.get(scope.by)
    if group is not None:
        extremes = [combine(per_host.c[name]).label(name) for name, combine in _COMBINE.items()]
        statement = (
            select(group.label("key"), func.max(hosts.c.account).label("account"), func.count().label("hosts"),
                   *extremes, JoinedIntegers(*[func.sum(per_host.c[name]) for name in _SUMMED]).label("counters"))
            .select_from(joined).where(*scope.filters()).group_by(group)
        )
    else:
        statement = (
            select(targets.c.name.label("key"), hosts.c.kind, hosts.c.client, hosts.c.account,
                   literal(1).label("hosts"), *[per_host.c[name] for name in _COMBINE],
                   JoinedIntegers(*[per_host.c[name] for name in _SUMMED]).label("counters"))
            .select_from(joined).where(*scope.filters())
        )
    rows = list(conn.execute(statement))
    incidents: dict[str | None, list[DowntimeSums]] = {}
    for host, (group_key, sums) in downtime_sums(conn, period, scope).items():
        incidents.setdefault(host if group is None else group_key, []).append(sums)
    names = account_names(conn, {row.account for row in rows if row.account is not None})
    if group is None:
        rows.sort(key=lambda r: (r.client is not None, r.client or "", r.key))
    else:
        rows.sort(key=lambda r: (r.key is None, r.key or ""))
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    result = []
    for row in rows:
        figures = uptime_figures(_totals(row), period, downtime(incidents.get(row.key, [])))
        label = ({scope.by: row.key} if group is not None
                 else {"host": row.key, "kind": row.kind, "client": row.client, "account": row.account})
        result.append({**label, "account_name": names.get(row.account), "hosts": row.hosts,
                       "from": first, "to": last, **figures})
    return result


def daily_rows(conn: Connection, period: Period, scope: Scope) -> Sequence[dict[str, Any]]:
    """`report daily`: per host of the day, its checks, good checks, uptime, average latency, incidents."""
    return [{**row, "date": row["from"]} for row in uptime_rows(conn, period, scope)]
