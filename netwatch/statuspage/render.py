"""The status page's files from its model: Jinja2 templates (package data) with autoescaping on.

Every value from the inventory, the enrichment cache or an API goes through autoescaping: a host
named `<script>` is text on the page. The pages load nothing from anywhere (styles inline, no
script, no image, no font): they read the same without JavaScript and offline.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import datetime

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from netwatch.core.statuspage import (
    CHART_HEIGHT,
    CHART_WIDTH,
    HOST_KIND,
    HOSTS_PER_PAGE,
    Badge,
    HostView,
    PageModel,
    day_title,
    group_badge,
    host_badge,
    status_document,
    uptime_class,
)
from netwatch.core.volume import format_duration

# One badge per host: 10,000 template renders cost about a second, one format string a tenth of it.
_BADGE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{label}: {value}">\n'
    "<title>{label}: {value}</title>\n"
    '<rect width="{label_width}" height="20" fill="#555"/>\n'
    '<rect x="{label_width}" width="{value_width}" height="20" fill="{colour}"/>\n'
    '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">\n'
    '<text x="{label_x}" y="14">{label}</text>\n'
    '<text x="{value_x}" y="14">{value}</text>\n'
    "</g>\n"
    "</svg>\n"
)


def _utc(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value:g} %"


def make_environment() -> Environment:
    """The template environment: autoescape for every template (all are HTML or SVG), undefined is an error."""
    env = Environment(loader=PackageLoader("netwatch", "statuspage/templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(utc=_utc, pct=_pct, duration=format_duration, basename=posixpath.basename,
                       day=lambda value: f"{value:%Y-%m-%d}")
    return env


_ROW_TAIL = (
    '<td class="state">{state}</td><td class="since">{since}</td><td>{uptime}</td>\n'
    '<td><div class="bars">{bars}</div></td>\n'
    '<td><svg class="latency" viewBox="0 0 {width} {height}" role="img"><title>{title}</title>{line}</svg></td></tr>'
)
_HOST_ROW = '<tr class="host state-{state}"><td class="name">{name}</td>' + _ROW_TAIL
_CHECK_ROW = ('<tr class="check kind-{kind} state-{state}"><td class="name">{name}</td><td class="kind">{kind}</td>'
              + _ROW_TAIL)
# A host's line is its ping RTT, a check's the time its answer (HTTP) or connection (TCP) took.
_LATENCY_WORDS = {True: ("RTT", "replies"), False: ("response time", "answers")}


class _HostRows:
    """The rows of the account and client pages as markup, each value escaped by markupsafe like any template value.

    10,000 rows of a dozen template expressions each cost more than the rest of the pages: a row is one
    format string. 900,000 bars cost seconds through a template's loop, and most repeat (a fleet is
    mostly up): each distinct bar, and each distinct set of 90 bars, is built once.
    """

    def __init__(self, model: PageModel) -> None:
        self.labels = [f"{day:%Y-%m-%d}" for day in model.days]
        self.bars: dict[tuple[int, float | None, int], str] = {}
        self.rows: dict[tuple[tuple[float | None, ...], tuple[int, ...]], str] = {}

    def __call__(self, host: HostView) -> Markup:
        latency = host.latency
        is_host = host.kind == HOST_KIND
        measure, answers = _LATENCY_WORDS[is_host]
        if latency.max_ms is None:
            title = f"no {answers} in the last 24 h"
        else:
            title = f"hourly average {measure}, last 24 h; highest {latency.max_ms} ms"
        if latency.path:
            line = f'<path d="{escape(latency.path)}"/><text x="2" y="9">{escape(latency.max_ms)} ms</text>'
        else:
            line = f'<text x="2" y="24">no {answers}</text>'
        return Markup((_HOST_ROW if is_host else _CHECK_ROW).format(
            kind=escape(host.kind), state=escape(host.state), name=escape(host.name), since=escape(_utc(host.since)),
            uptime=escape(_pct(host.uptime_30d)), bars=self._bars(host), width=CHART_WIDTH, height=CHART_HEIGHT,
            title=escape(title), line=line))

    def _bars(self, host: HostView) -> str:
        key = (host.daily_uptime, host.daily_incidents)
        bars = self.rows.get(key)
        if bars is None:
            bars = self.rows[key] = "".join(
                self._bar(index, uptime, incidents) for index, (uptime, incidents) in enumerate(zip(*key, strict=True)))
        return bars

    def _bar(self, index: int, uptime: float | None, incidents: int) -> str:
        key = (index, uptime, incidents)
        bar = self.bars.get(key)
        if bar is None:
            title = escape(day_title(self.labels[index], uptime, incidents))
            bar = self.bars[key] = f'<i class="{escape(uptime_class(uptime))}" title="{title}"></i>'
        return bar


def badge_svg(badge: Badge) -> bytes:
    """A badge as an SVG file; its texts escaped by markupsafe, as the templates' autoescaping does."""
    value_width = badge.width - badge.label_width
    return _BADGE_SVG.format(
        width=badge.width, label=escape(badge.label), value=escape(badge.value), colour=escape(badge.colour),
        label_width=badge.label_width, value_width=value_width, label_x=badge.label_width / 2,
        value_x=badge.label_width + value_width / 2,
    ).encode()


def render_site(model: PageModel) -> Iterator[tuple[str, bytes]]:
    """Every file of the page as (relative path, content), one at a time."""
    env = make_environment()
    env.globals["host_row"] = _HostRows(model)
    yield "index.html", env.get_template("index.html").render(model=model).encode()
    group_page = env.get_template("group.html")
    for section, groups in (("accounts", model.accounts), ("clients", model.clients)):
        for group in groups:
            for number, page in enumerate(group.pages):
                members = group.members[number * HOSTS_PER_PAGE : (number + 1) * HOSTS_PER_PAGE]
                yield page, group_page.render(model=model, group=group, members=members, number=number,
                                              section=section).encode()
            yield group.badge, badge_svg(group_badge(group))
            for member in group.members:
                yield member.badge, badge_svg(host_badge(member))
    # orjson writes the same compact UTF-8 JSON as json.dumps(ensure_ascii=False) in a fifth of the time.
    yield "status.json", orjson.dumps(status_document(model)) + b"\n"
