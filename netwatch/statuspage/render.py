"""The status page's files from its model: Jinja2 templates (package data) with autoescaping on.

Every value from the inventory, the enrichment cache or an API goes through autoescaping: a host
named `<script>` is text on the page. The pages load nothing from anywhere (styles inline, no
script, no image, no font): they read the same without JavaScript and offline.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from netwatch.core.statuspage import (
    CHART_HEIGHT,
    CHART_WIDTH,
    HOSTS_PER_PAGE,
    HostView,
    PageModel,
    account_badge,
    day_title,
    host_badge,
    status_document,
    uptime_class,
)
from netwatch.core.volume import format_duration

_CHART = {"width": CHART_WIDTH, "height": CHART_HEIGHT}


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


class _Bars:
    """The 90 bars of a host as markup, each title escaped by markupsafe like any template value.

    900,000 bars at 10,000 hosts cost seconds through the template's loop, and most repeat (a fleet
    is mostly up): each distinct bar, and each distinct row of bars, is built once.
    """

    def __init__(self, model: PageModel) -> None:
        self.labels = [f"{day:%Y-%m-%d}" for day in model.days]
        self.bars: dict[tuple[int, float | None, int], str] = {}
        self.rows: dict[tuple[tuple[float | None, ...], tuple[int, ...]], Markup] = {}

    def __call__(self, host: HostView) -> Markup:
        key = (host.daily_uptime, host.daily_incidents)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Markup("".join(
                self._bar(index, uptime, incidents)
                for index, (uptime, incidents) in enumerate(zip(*key, strict=True))))
        return row

    def _bar(self, index: int, uptime: float | None, incidents: int) -> str:
        key = (index, uptime, incidents)
        bar = self.bars.get(key)
        if bar is None:
            title = escape(day_title(self.labels[index], uptime, incidents))
            bar = self.bars[key] = f'<i class="{escape(uptime_class(uptime))}" title="{title}"></i>'
        return bar


def render_site(model: PageModel) -> Iterator[tuple[str, bytes]]:
    """Every file of the page as (relative path, content), one at a time."""
    env = make_environment()
    env.globals["bars"] = _Bars(model)
    yield "index.html", env.get_template("index.html").render(model=model).encode()
    account_page = env.get_template("account.html")
    badge = env.get_template("badge.svg")
    for account in model.accounts:
        for number, page in enumerate(account.pages):
            hosts = account.hosts[number * HOSTS_PER_PAGE : (number + 1) * HOSTS_PER_PAGE]
            yield page, account_page.render(model=model, account=account, hosts=hosts, number=number,
                                            chart=_CHART).encode()
        yield account.badge, badge.render(badge=account_badge(account)).encode()
        for host in account.hosts:
            yield host.badge, badge.render(badge=host_badge(host)).encode()
    yield "status.json", (json.dumps(status_document(model), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
