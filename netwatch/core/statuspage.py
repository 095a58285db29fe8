"""What the status page shows, from plain values: pure code, no I/O, no clock reads.

Hosts are grouped by account, HTTP and TCP checks (kinds other than `host`) by client; each host or
check is in one group only (a check's account names it in Sigma events, it is not where it is shown).

- 90 daily bars per host (the last 90 UTC days, today included), each with a colour class from
  its uptime (`uptime_class`) and a text title (date, uptime %, incidents that overlap the day);
  a day without known time is `nodata`.
- A 24 h latency line per host (the last 24 UTC hours, this one included) from each hour's
  average RTT (rtt_sum_us / rtt_samples), broken where an hour has no reply.
- The banner: stale jobs (last success older than their age, or none), else offline hosts and
  checks, else all up.
- Accounts and clients ordered offline first, hosts and checks in them by state (offline, unknown,
  online) then since.
- File names from names: a slug of [a-z0-9-] and a hash of the whole name, so any account, client,
  host or check name gives one safe, distinct file name and none can climb out of its folder.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from netwatch.core.rollup import DAY, HOUR, Incident, bucket_start, incidents_of, uptime_percent

DAYS = 90
HOURS = 24
# Days per bit mask of fully online days (DailyUptime.full): 30 bits, well inside a 64-bit sum.
MASK_DAYS = 30
BADGE_DAYS = 30
HOSTS_PER_PAGE = 200
RECENT_INCIDENTS = 100
# The kind of a host (`hosts.kind`); every other kind (http, tcp) is a check, shown by client.
HOST_KIND = "host"
STATE_ORDER = {"offline": 0, "unknown": 1, "online": 2}
# Lower bounds of each colour class, best first; below the last one a day is "down".
UPTIME_CLASSES = ((99.9, "up"), (99.0, "minor"), (95.0, "major"))
CHART_WIDTH = 240
CHART_HEIGHT = 40
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_SLUG_LENGTH = 40


def safe_name(name: str) -> str:
    """A file name stem for any text: a readable slug plus 10 hex digits of its SHA-256."""
    slug = _SLUG_CHARS.sub("-", name.lower()).strip("-")[:_SLUG_LENGTH].strip("-") or "x"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def uptime_class(uptime: float | None) -> str:
    """The colour class of a bar or badge: up, minor, major, down, or nodata."""
    if uptime is None:
        return "nodata"
    return next((name for floor, name in UPTIME_CLASSES if uptime >= floor), "down")


@dataclass(frozen=True)
class HostInput:
    name: str
    account: str | None
    status: str
    since: datetime | None
    target_id: int | None
    kind: str = HOST_KIND
    client: str | None = None


@dataclass(frozen=True)
class DailyUptime:
    """The daily rollups of the period, compactly.

    `full`: per target (id, mask, mask, mask, online_s, offline_s): bit i of mask k set when day
    k * MASK_DAYS + i was fully online (no offline time, some online time), and the online and
    offline seconds of the last BADGE_DAYS days. `partial`: (id, day, online_s, offline_s) of every
    other day with a row. A day with no row has no data.
    """

    full: Sequence[tuple[int, int, int, int, int, int]]
    partial: Sequence[tuple[int, int, int, int]]


@dataclass(frozen=True)
class StaleJob:
    job: str
    last_success: datetime | None
    stale_after_minutes: int


@dataclass(frozen=True)
class Latency:
    """The 24 h chart: `path` an SVG path in the chart's viewBox ("" when no hour had replies)."""

    path: str
    max_ms: float | None
    values_ms: tuple[float | None, ...]


@dataclass(frozen=True)
class HostView:
    """A host or a check (`kind`) as its group's page shows it."""

    name: str
    kind: str
    account: str | None
    state: str
    since: datetime | None
    uptime_30d: float | None
    daily_uptime: tuple[float | None, ...]
    daily_incidents: tuple[int, ...]
    latency: Latency
    badge: str
    page: str


@dataclass(frozen=True)
class Counts:
    total: int
    online: int
    offline: int
    unknown: int


NO_COUNTS = Counts(0, 0, 0, 0)


@dataclass(frozen=True)
class GroupView:
    """An account's hosts or a client's checks; `key` the account or client (None: hosts or checks without)."""

    key: str | None
    label: str
    counts: Counts
    uptime_30d: float | None
    members: tuple[HostView, ...]
    pages: tuple[str, ...]
    badge: str


@dataclass(frozen=True)
class IncidentView:
    host: str
    kind: str
    account: str | None
    client: str | None
    start: datetime
    end: datetime | None
    duration_s: int


@dataclass(frozen=True)
class AlertView:
    account: str
    account_name: str | None
    cuc: str
    code: str
    count: int
    threshold: int
    raised_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Banner:
    """`state`: stale, offline or ok; `lines`: what the banner says."""

    state: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class PageModel:
    title: str
    generated_at: datetime
    banner: Banner
    stale: tuple[StaleJob, ...]
    counts: Counts
    check_counts: Counts
    days: tuple[datetime, ...]
    hours: tuple[datetime, ...]
    accounts: tuple[GroupView, ...]
    clients: tuple[GroupView, ...]
    alerts: tuple[AlertView, ...]
    incidents: tuple[IncidentView, ...]


def _at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def stale_jobs(now: datetime, last: Mapping[str, datetime | None],
               ages: Mapping[str, int | None]) -> tuple[StaleJob, ...]:
    """The watched jobs whose last success is older than their age (or that never succeeded)."""
    stale = []
    for job, minutes in ages.items():
        if minutes is None:
            continue
        success = last.get(job)
        if success is None or (now - success).total_seconds() > minutes * 60:
            stale.append(StaleJob(job, success, minutes))
    return tuple(stale)


def make_banner(stale: Sequence[StaleJob], hosts: Counts, checks: Counts) -> Banner:
    """Stale jobs first, then offline hosts and offline checks (a line each), else all up."""
    lines = [f"{s.job} is stale: " + (f"last successful run {s.last_success:%Y-%m-%d %H:%M} UTC, "
                                       f"more than {s.stale_after_minutes} min ago"
                                       if s.last_success else "no successful run recorded")
             for s in stale]
    if hosts.offline:
        lines.append(f"{hosts.offline} of {hosts.total} hosts offline")
    if checks.offline:
        lines.append(f"{checks.offline} of {checks.total} checks offline")
    if stale:
        return Banner("stale", tuple(lines))
    if hosts.offline or checks.offline:
        return Banner("offline", tuple(lines))
    if not checks.total:
        return Banner("ok", (f"all {hosts.total} hosts up" if hosts.unknown == 0
                             else f"no host offline ({hosts.unknown} unknown)",))
    unknown = hosts.unknown + checks.unknown
    if unknown:
        return Banner("ok", (f"no host or check offline ({unknown} unknown)",))
    return Banner("ok", (f"all {hosts.total} hosts and {checks.total} checks up" if hosts.total
                         else f"all {checks.total} checks up",))


def count_states(states: Iterable[str]) -> Counts:
    tally: dict[str, int] = defaultdict(int)
    total = 0
    for state in states:
        tally[state] += 1
        total += 1
    return Counts(total, tally["online"], tally["offline"], total - tally["online"] - tally["offline"])


@cache
def _chart_xs(points: int) -> tuple[str, ...]:
    """The x of each point of a chart of `points` hours, as the path writes it: the same for every host."""
    step = CHART_WIDTH / points
    return tuple(str(round(step * index + step / 2, 1)) for index in range(points))


def latency_chart(values_ms: Sequence[float | None]) -> Latency:
    """The SVG path of hourly averages: one point per hour, the line broken at hours without replies."""
    known = [v for v in values_ms if v is not None]
    if not known:
        return Latency("", None, tuple(values_ms))
    top = max(known) or 1.0
    parts = []
    move = "M"
    for x, value in zip(_chart_xs(len(values_ms)), values_ms, strict=True):
        if value is None:
            move = "M"
            continue
        # ".1f" writes the y that round(y, 1) would (both round the exact binary value) without a float per point.
        parts.append(f"{move}{x} {CHART_HEIGHT - 2 - (CHART_HEIGHT - 4) * value / top:.1f}")
        move = "L"
    return Latency(" ".join(parts), max(known), tuple(values_ms))


def day_title(date: str, uptime: float | None, incidents: int) -> str:
    """The text of a day's bar: its date, uptime and the incidents that overlap it."""
    if uptime is None:
        return f"{date}: no data"
    count = "1 incident" if incidents == 1 else f"{incidents} incidents"
    return f"{date}: {uptime:g} % up, {count}"


def _daily_incidents(incidents: Iterable[Incident], first_day_s: int, now_s: int) -> dict[int, list[int]]:
    """Per target, the number of incidents overlapping each of the DAYS days."""
    per_target: dict[int, list[int]] = {}
    for incident in incidents:
        end_s = now_s if incident.end_s is None else incident.end_s
        start_s = max(incident.start_s, first_day_s)
        if end_s < first_day_s:
            continue
        counts = per_target.setdefault(incident.target_id, [0] * DAYS)
        last = min(DAYS - 1, (max(end_s - 1, start_s) - first_day_s) // DAY)
        for index in range((start_s - first_day_s) // DAY, last + 1):
            counts[index] += 1
    return per_target


def _from_masks(masks: tuple[int, ...]) -> tuple[float | None, ...]:
    return tuple(100.0 if masks[i // MASK_DAYS] >> (i % MASK_DAYS) & 1 else None for i in range(DAYS))


def _daily_uptimes(daily: DailyUptime, first_day_s: int) -> tuple[
        dict[int, tuple[float | None, ...]], dict[int, tuple[int, int]]]:
    """Per target its 90 daily uptimes and its last 30 days' (online_s, offline_s).

    Hosts mostly share their masks (every day up): each distinct set of masks is decoded once.
    """
    decoded: dict[tuple[int, ...], tuple[float | None, ...]] = {}
    uptimes: dict[int, tuple[float | None, ...]] = {}
    time_30d: dict[int, tuple[int, int]] = {}
    for target_id, *masks, online_s, offline_s in daily.full:
        key = tuple(masks)
        if key not in decoded:
            decoded[key] = _from_masks(key)
        uptimes[target_id] = decoded[key]
        time_30d[target_id] = (online_s, offline_s)
    changed: dict[int, list[float | None]] = {}
    for target_id, day_s, online_s, offline_s in daily.partial:
        index = (day_s - first_day_s) // DAY
        if 0 <= index < DAYS:
            days = changed.get(target_id)
            if days is None:
                days = changed[target_id] = list(uptimes.get(target_id, (None,) * DAYS))
            days[index] = uptime_percent(online_s, offline_s)
    uptimes.update((target_id, tuple(days)) for target_id, days in changed.items())
    return uptimes, time_30d


def _hourly_latency(hourly: Iterable[tuple[int, int, int, int]], first_hour_s: int) -> dict[int, list[float | None]]:
    """Per target the average RTT in ms of each of the HOURS hours (None: no reply that hour)."""
    per_target: dict[int, list[float | None]] = {}
    for target_id, hour_s, rtt_sum_us, samples in hourly:
        index = (hour_s - first_hour_s) // HOUR
        if 0 <= index < HOURS:
            values = per_target.get(target_id)
            if values is None:
                values = per_target[target_id] = [None] * HOURS
            values[index] = round(rtt_sum_us / samples / 1000, 3)
    return per_target


_NO_DATA: tuple[float | None, ...] = (None,) * DAYS
_NO_INCIDENTS = (0,) * DAYS
_NO_REPLIES: tuple[float | None, ...] = (None,) * HOURS
_NO_TIME = (0, 0)


@dataclass(frozen=True)
class _History:
    """What the reads say per target id, for the hosts' views."""

    uptimes: Mapping[int, tuple[float | None, ...]]
    time_30d: Mapping[int, tuple[int, int]]
    latency: Mapping[int, Sequence[float | None]]
    incidents: Mapping[int, Sequence[int]]

    def view(self, host: HostInput, page: str) -> HostView:
        target = host.target_id if host.target_id is not None else -1
        folder = "hosts" if host.kind == HOST_KIND else "checks"
        return HostView(
            name=host.name, kind=host.kind, account=host.account, state=host.status, since=host.since,
            uptime_30d=uptime_percent(*self.time_30d.get(target, _NO_TIME)),
            daily_uptime=self.uptimes.get(target, _NO_DATA),
            daily_incidents=tuple(self.incidents.get(target, _NO_INCIDENTS)),
            latency=latency_chart(self.latency.get(target, _NO_REPLIES)),
            badge=f"badges/{folder}/{safe_name(host.name)}.svg", page=page,
        )


def build_page(
    title: str,
    now: datetime,
    hosts: Sequence[HostInput],
    account_names: Mapping[str, str],
    daily: DailyUptime,
    hourly: Iterable[tuple[int, int, int, int]],
    changes: Iterable[tuple[int, int, int]],
    stale: Sequence[StaleJob],
    alerts: Sequence[AlertView],
) -> PageModel:
    """The whole page from the reads of netwatch/db/statuspage.py (rows of other targets are ignored).

    `hosts` holds hosts and checks alike (their `kind`): hosts go to their account, checks to their client.
    """
    now_s = int(now.timestamp())
    today_s = bucket_start(now_s, DAY)
    first_day_s = today_s - (DAYS - 1) * DAY
    first_hour_s = bucket_start(now_s, HOUR) - (HOURS - 1) * HOUR

    uptimes, time_30d = _daily_uptimes(daily, first_day_s)
    incidents = incidents_of(changes)
    history = _History(uptimes, time_30d, _hourly_latency(hourly, first_hour_s),
                       _daily_incidents(incidents, first_day_s, now_s))
    by_account: dict[str | None, list[HostInput]] = defaultdict(list)
    by_client: dict[str | None, list[HostInput]] = defaultdict(list)
    for host in hosts:
        if host.kind == HOST_KIND:
            by_account[host.account].append(host)
        else:
            by_client[host.client].append(host)
    accounts = _ordered(_group("accounts", "account", account, members, history, _account_label(account, account_names))
                        for account, members in by_account.items())
    clients = _ordered(_group("clients", "client", client, members, history,
                              "(no client)" if client is None else client)
                       for client, members in by_client.items())
    names = {host.target_id: host for host in hosts if host.target_id is not None}
    recent_incidents = sorted((i for i in incidents if i.target_id in names),
                              key=lambda i: (i.end_s is not None, -i.start_s, names[i.target_id].name))
    counts = count_states(host.status for host in hosts if host.kind == HOST_KIND)
    check_counts = count_states(host.status for host in hosts if host.kind != HOST_KIND)
    return PageModel(
        title=title, generated_at=now, banner=make_banner(stale, counts, check_counts), stale=tuple(stale),
        counts=counts, check_counts=check_counts,
        days=tuple(_at(first_day_s + i * DAY) for i in range(DAYS)),
        hours=tuple(_at(first_hour_s + i * HOUR) for i in range(HOURS)),
        accounts=accounts, clients=clients, alerts=tuple(alerts),
        incidents=tuple(
            IncidentView(names[i.target_id].name, names[i.target_id].kind, names[i.target_id].account,
                         names[i.target_id].client, _at(i.start_s), None if i.end_s is None else _at(i.end_s),
                         i.duration_s(now_s))
            for i in recent_incidents[:RECENT_INCIDENTS]
        ),
    )


_NEVER = datetime.max.replace(tzinfo=UTC)


def _account_label(account: str | None, account_names: Mapping[str, str]) -> str:
    name = account_names.get(account) if account is not None else None
    return "(no account)" if account is None else f"{name} ({account})" if name else account


def _ordered(groups: Iterable[GroupView]) -> tuple[GroupView, ...]:
    """Offline first, then unknown; the group without an account or client last among equals; then by label."""
    return tuple(sorted(groups, key=lambda g: (-g.counts.offline, -g.counts.unknown, g.key is None, g.label,
                                               g.key or "")))


def _group(folder: str, noun: str, key: str | None, members: list[HostInput], history: _History,
           label: str) -> GroupView:
    """A group's view: its members by state (offline, unknown, online), then since, then name, paged.

    Its pages are `<folder>/<safe name>.html` (`<folder>/no-<noun>.html` without a key: no safe name
    is that, as every one ends in a hash), its badge `badges/<folder>/` the same.
    """
    members.sort(key=lambda h: (STATE_ORDER.get(h.status, 1), h.since or _NEVER, h.name))
    stem = f"no-{noun}" if key is None else safe_name(key)
    pages = tuple(f"{folder}/{stem}.html" if n == 0 else f"{folder}/{stem}-{n + 1}.html"
                  for n in range(max(1, -(-len(members) // HOSTS_PER_PAGE))))
    views = tuple(history.view(host, pages[index // HOSTS_PER_PAGE]) for index, host in enumerate(members))
    online_s = offline_s = 0
    for host in members:
        online, offline = history.time_30d.get(host.target_id if host.target_id is not None else -1, _NO_TIME)
        online_s += online
        offline_s += offline
    return GroupView(
        key=key, label=label, counts=count_states(v.state for v in views),
        uptime_30d=uptime_percent(online_s, offline_s), members=views, pages=pages,
        badge=f"badges/{folder}/{stem}.svg",
    )


BADGE_COLOURS = {"online": "#2e7d32", "offline": "#c62828", "unknown": "#757575"}
_BADGE_LABEL = 32
_CHAR_PX = 7
_BADGE_PAD = 12


@dataclass(frozen=True)
class Badge:
    """A two-part badge: label (grey) and value (coloured by state); widths estimated from the text."""

    label: str
    value: str
    colour: str
    label_width: int
    width: int


def _badge(label: str, value: str, state: str) -> Badge:
    label = label if len(label) <= _BADGE_LABEL else label[: _BADGE_LABEL - 1] + "…"
    label_width = len(label) * _CHAR_PX + _BADGE_PAD
    return Badge(label, value, BADGE_COLOURS[state], label_width, label_width + len(value) * _CHAR_PX + _BADGE_PAD)


def _percent(uptime: float | None) -> str:
    return "no data" if uptime is None else f"{uptime:g} %"


def host_badge(host: HostView) -> Badge:
    """The host's state and 30-day uptime."""
    state = host.state if host.state in BADGE_COLOURS else "unknown"
    return _badge(host.name, f"{host.state} · {_percent(host.uptime_30d)}", state)


def group_badge(group: GroupView) -> Badge:
    """How many of the group's hosts or checks are offline (red), all online (green) or else (grey), and its
    30-day uptime."""
    counts = group.counts
    if counts.offline:
        state, text = "offline", f"{counts.offline} offline"
    elif counts.online == counts.total:
        state, text = "online", "all up"
    else:
        state, text = "unknown", f"{counts.unknown} unknown"
    return _badge(group.label, f"{text} · {_percent(group.uptime_30d)}", state)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _counted(noun: str, counts: Counts) -> dict[str, int]:
    return {noun: counts.total, "online": counts.online, "offline": counts.offline, "unknown": counts.unknown}


def _member(view: HostView) -> dict[str, object]:
    return {"name": view.name, "state": view.state, "since": _iso(view.since), "uptime_30d": view.uptime_30d,
            "daily_uptime": view.daily_uptime, "daily_incidents": view.daily_incidents,
            "latency_ms": view.latency.values_ms, "page": view.page, "badge": view.badge}


def status_document(model: PageModel) -> dict[str, object]:
    """status.json: the page's data (README "Status page" documents the schema)."""
    return {
        "schema": 1,
        "title": model.title,
        "generated_at": _iso(model.generated_at),
        "banner": {"state": model.banner.state, "lines": list(model.banner.lines)},
        "stale_jobs": [{"job": s.job, "last_success": _iso(s.last_success),
                        "stale_after_minutes": s.stale_after_minutes} for s in model.stale],
        "counts": _counted("hosts", model.counts),
        "check_counts": _counted("checks", model.check_counts),
        "days": [f"{day:%Y-%m-%d}" for day in model.days],
        "hours": [_iso(hour) for hour in model.hours],
        "accounts": [
            {"account": a.key, "label": a.label, "counts": _counted("hosts", a.counts), "uptime_30d": a.uptime_30d,
             "pages": list(a.pages), "badge": a.badge, "hosts": [_member(h) for h in a.members]}
            for a in model.accounts
        ],
        "clients": [
            {"client": c.key, "label": c.label, "counts": _counted("checks", c.counts), "uptime_30d": c.uptime_30d,
             "pages": list(c.pages), "badge": c.badge,
             "checks": [{"kind": check.kind, **_member(check)} for check in c.members]}
            for c in model.clients
        ],
        "alerts": [{"account": a.account, "account_name": a.account_name, "cuc": a.cuc, "code": a.code,
                    "count": a.count, "threshold": a.threshold, "raised_at": _iso(a.raised_at),
                    "last_seen": _iso(a.last_seen)} for a in model.alerts],
        "incidents": [{"host": i.host, "kind": i.kind, "account": i.account, "client": i.client,
                       "start": _iso(i.start), "end": _iso(i.end), "duration_s": i.duration_s}
                      for i in model.incidents],
    }
