"""`netwatch run event-scan`: count the window's alarm events per group and raise alerts once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from netwatch.config import Config
from netwatch.core.volume import Raise, Rules, decide_scan
from netwatch.db.register import RegisterEntry, append_entries
from netwatch.db.scan_counts import record_counts
from netwatch.db.triggers import ACTIVE, TriggerRow, load_triggers, save_triggers
from netwatch.deps import Deps
from netwatch.errors import ConfigError
from netwatch.jobs.dispatch import dispatch
from netwatch.jobs.enrichment import look_up_accounts
from netwatch.jobs.notifications import make_notice, queue_notices
from netwatch.jobs.runner import JobOutcome, RunContext, run_job
from netwatch.jobs.volume_window import (
    LEASE_GROUP,
    alert_fields,
    alert_key,
    enrichment,
    read_window,
    require_segware,
    subject,
    volume_rules,
)

log = logging.getLogger(__name__)

JOB = "event-scan"


def run_event_scan(config: Config, deps: Deps) -> int:
    """One scan under the job's lease; returns the exit code."""
    if not config.event_scan.codes:
        raise ConfigError(f"{config.source}: event_scan.codes: no alarm codes configured to watch")
    require_segware(deps.segware, JOB)
    rules = volume_rules(config)
    return run_job(JOB, "0/1", config.run.lease_seconds, deps, lambda run: event_scan(config, deps, rules, run),
                   lease_group=LEASE_GROUP)


def event_scan(config: Config, deps: Deps, rules: Rules, run: RunContext) -> JobOutcome:
    """Reads the whole window first; only a complete read leads to one transaction of changes."""
    segware = require_segware(deps.segware, JOB)
    counts = read_window(segware, rules.thresholds, run.now, config, deps.stop)
    with deps.engine.begin() as conn:
        known = load_triggers(conn)
    candidates = {
        key.account for key, group in counts.items()
        if group.count >= rules.threshold(key.code) and (key not in known or known[key].status != ACTIVE)
    }
    lookup = look_up_accounts(deps.engine, segware, candidates, run.now, config.segware.cache_ttl_seconds,
                              deps.stop)
    with deps.engine.begin() as conn:
        known = load_triggers(conn)
        active = {key: row.active() for key, row in known.items() if row.status == ACTIVE}
        cleared_at = {key: row.cleared_at for key, row in known.items() if row.status != ACTIVE and row.cleared_at}
        raises, updates = decide_scan(counts, active, rules, cleared_at)
        raised = [_raised_row(decision, known.get(decision.key), lookup.found.get(decision.key.account), run)
                  for decision in raises]
        updated = [replace(known[u.key], count=u.count, peak=u.peak, last_seen=u.last_seen, updated_at=run.now)
                   for u in updates]
        save_triggers(conn, raised + updated)
        append_entries(conn, [_entry(row, config, run) for row in raised])
        recorded = record_counts(conn, run.run_id, run.now - _window(config), run.now, counts,
                                 config.event_scan.record_floor)
        notices = [make_notice("alert_raised", alert_key(row, "raised"), subject(row.key), run.now,
                               alert_fields(row, config, run.now), config.notifications, account=row.key.account,
                               code=row.key.code) for row in raised]
        queued = queue_notices(conn, notices, config.notifications, run.now, run.run_id)
        deps.stop.check()
        run.lease.fence(conn)
    for row in raised:
        log.warning("alert raised: %s count %d >= %d", subject(row.key), row.count, row.threshold)
    report = dispatch(deps, config, run.now)
    return JobOutcome(
        counts={"events": sum(g.count for g in counts.values()), "groups": len(counts), "raised": len(raised),
                "updated": len(updated), "recorded": recorded, "notifications": queued, "sent": report.sent,
                "delivery_failed": report.failed, "pending": report.pending, "dead": report.dead},
        delivery_failed=report.trouble,
    )


def _window(config: Config) -> timedelta:
    return timedelta(minutes=config.event_scan.window_minutes)


def _raised_row(
    decision: Raise, previous: TriggerRow | None, account: Mapping[str, object] | None, run: RunContext
) -> TriggerRow:
    name, company, group = enrichment(account)
    return TriggerRow(
        key=decision.key, status=ACTIVE, generation=(previous.generation + 1) if previous else 1,
        count=decision.count, peak=decision.count, threshold=decision.threshold, first_seen=decision.first_seen,
        last_seen=decision.last_seen, raised_at=run.now, cleared_at=None, clear_reason=None, account_name=name,
        company=company, client_group=group, updated_at=run.now,
    )


def _entry(row: TriggerRow, config: Config, run: RunContext) -> RegisterEntry:
    return RegisterEntry(
        at=run.now, action="raised", account=row.key.account, cuc=row.key.cuc, code=row.key.code,
        generation=row.generation, count=row.count, threshold=row.threshold,
        window_minutes=config.event_scan.window_minutes, reason=None, active_seconds=None,
        account_name=row.account_name, company=row.company, client_group=row.client_group, run_id=run.run_id,
    )
