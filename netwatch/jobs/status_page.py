"""`netwatch run status-page --out DIR`: write the static status page of the stored state and history."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from netwatch.collector import collector_paused
from netwatch.config import Config
from netwatch.core.rollup import DAY, HOUR, bucket_start
from netwatch.core.statuspage import BADGE_DAYS, DAYS, HOURS, AlertView, HostInput, build_page, stale_jobs
from netwatch.db import statuspage
from netwatch.db.triggers import load_triggers
from netwatch.deps import Deps
from netwatch.running.runner import JobOutcome, RunContext, run_job
from netwatch.statuspage.publish import prepare_out, publish
from netwatch.statuspage.render import render_site

log = logging.getLogger(__name__)

JOB = "status-page"


def run_status_page(config: Config, deps: Deps, out: Path) -> int:
    """One page under the job's lease; returns the exit code."""
    out = prepare_out(out)
    # At 10,000 hosts the page takes millions of objects (rows, views, markup) that form no cycles;
    # the collector's passes over them cost about a second of CPU even at netwatch's raised threshold.
    with collector_paused():
        return run_job(JOB, "0/1", config.run, deps, lambda run: status_page(config, deps, out, run))


def status_page(config: Config, deps: Deps, out: Path, run: RunContext) -> JobOutcome:
    """Reads everything in one transaction (one consistent snapshot), then renders and swaps DIR.

    The "status page written" line's `read_s`, `model_s`, `render_s` and `write_s` say where the time went.
    """
    started = time.monotonic()
    now_s = int(run.now.timestamp())
    first_day_s = bucket_start(now_s, DAY) - (DAYS - 1) * DAY
    settings = config.status_page
    with deps.engine.begin() as conn:
        hosts = statuspage.load_page_hosts(conn)
        names = statuspage.load_account_names(conn)
        daily = statuspage.load_daily_uptime(conn, first_day_s, first_day_s + (DAYS - BADGE_DAYS) * DAY)
        hourly = statuspage.load_hourly_rtt(conn, bucket_start(now_s, HOUR) - (HOURS - 1) * HOUR)
        changes = statuspage.load_changes(conn, first_day_s)
        last = statuspage.last_successes(conn, [job for job, age in settings.stale_after_minutes.items() if age])
        active = load_triggers(conn, only_active=True)
    read_s = time.monotonic() - started
    alerts = [AlertView(row.key.account, row.account_name, row.key.cuc, row.key.code, row.count, row.threshold,
                        row.raised_at, row.last_seen)
              for row in sorted(active.values(), key=lambda r: (r.raised_at, r.key))]
    model = build_page(
        settings.title, run.now,
        [HostInput(h.name, h.account, h.status, h.since, h.target_id, h.kind, h.client) for h in hosts],
        names, daily, hourly, changes, stale_jobs(run.now, last, settings.stale_after_minutes), alerts,
    )
    model_s = time.monotonic() - started - read_s
    deps.stop.check()
    render_s = [0.0]
    published = publish(out, _timed(render_site(model), render_s), f"{run.now:%Y%m%dT%H%M%SZ}-{run.run_id}")
    log.info("status page written to %s", out, extra={"fields": {
        "largest": published.largest[0], "largest_bytes": published.largest[1], "read_s": round(read_s, 3),
        "model_s": round(model_s, 3), "render_s": round(render_s[0], 3),
        "write_s": round(time.monotonic() - started - read_s - model_s - render_s[0], 3)}})
    return JobOutcome(counts={
        "hosts": model.counts.total, "offline": model.counts.offline, "accounts": len(model.accounts),
        "checks": model.check_counts.total, "checks_offline": model.check_counts.offline,
        "clients": len(model.clients),
        "stale_jobs": len(model.stale), "alerts": len(model.alerts), "files": published.files,
        "reused": published.reused, "bytes": published.bytes,
    })


def _timed(files: Iterable[tuple[str, bytes]], spent: list[float]) -> Iterator[tuple[str, bytes]]:
    """`files` as they come, adding the seconds spent making each to spent[0]."""
    iterator = iter(files)
    while True:
        started = time.monotonic()
        item = next(iterator, None)
        spent[0] += time.monotonic() - started
        if item is None:
            return
        yield item
