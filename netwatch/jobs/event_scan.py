"""`netwatch run event-scan`: count the window's alarm events per group and raise alerts once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from netwatch.alerts.messages import account_labels, alert_fields, alert_key, subject
from netwatch.alerts.window import (
    ALERT_VOLUME,
    read_window,
    require_segware,
    segware_problems,
    volume_rules,
)
from netwatch.config import Config
from netwatch.core.volume import GroupCount, GroupKey, Raise, Rules, Update, decide_scan
from netwatch.db.register import RegisterEntry, append_entries
from netwatch.db.scan_counts import record_counts
from netwatch.db.triggers import ACTIVE, TriggerRow, load_triggers, save_triggers
from netwatch.delivery.dispatch import dispatch
from netwatch.delivery.notices import make_notice, queue_notices
from netwatch.deps import Deps
from netwatch.enrichment.accounts import look_up_accounts
from netwatch.errors import LeaseHeld
from netwatch.notify.kinds import Kind
from netwatch.running.runner import JobOutcome, RunContext, refuse_unready, run_job

log = logging.getLogger(__name__)

JOB = "event-scan"


def config_problems(config: Config) -> list[str]:
    """What event-scan needs from the config and lacks, each as "key: problem" (empty: ready)."""
    codes = [] if config.event_scan.codes else ["event_scan.codes: no alarm codes configured to watch"]
    return codes + segware_problems(config, JOB)


def run_event_scan(config: Config, deps: Deps) -> int:
    """One scan under the job's lease; returns the exit code."""
    refuse_unready(config, config_problems(config))
    rules = volume_rules(config)
    return run_job(JOB, "0/1", config.run, deps, lambda run: event_scan(config, deps, rules, run),
                   group=ALERT_VOLUME)


def event_scan(config: Config, deps: Deps, rules: Rules, run: RunContext) -> JobOutcome:
    """Reads the whole window first; only a complete read leads to one transaction of changes."""
    segware = require_segware(deps.segware, JOB)
    # The triggers come first: the read counts a cleared group's events after its clear apart.
    with deps.engine.begin() as conn:
        known = load_triggers(conn)
    clears = _clears(known)
    counts = read_window(segware, rules.thresholds, run.now, config, deps.stop, clears)
    # Accounts to enrich: those of the alerts this scan will raise, and of active alerts raised while
    # the account API was unavailable (their enrichment is filled in once it answers).
    planned, _ = _decide(counts, known, rules)
    candidates = {r.key.account for r in planned} | {row.key.account for row in known.values()
                                                     if row.status == ACTIVE and not _enriched(row)}
    lookup = look_up_accounts(deps.engine, segware, candidates, run.now, config.segware.cache_ttl_seconds,
                              deps.stop)
    if lookup.refused is not None:
        raise lookup.refused
    with deps.engine.begin() as conn:
        known = load_triggers(conn)
        if _clears(known) != clears:
            # Only a run that took our lease could have cleared or raised a group meanwhile; the
            # counts were made against the old clears, so deciding on them could re-raise old events.
            raise LeaseHeld("the triggers changed while the window was read: another run took the "
                            f"{ALERT_VOLUME.name} lease; nothing committed")
        raises, updates = _decide(counts, known, rules)
        raised = [_raised_row(decision, counts[decision.key], known.get(decision.key),
                              lookup.found.get(decision.key.account), run) for decision in raises]
        updated = [_updated_row(known[u.key], u, counts.get(u.key), lookup.found.get(u.key.account), run)
                   for u in updates]
        save_triggers(conn, raised + updated)
        append_entries(conn, [_entry(row, config, run) for row in raised])
        recorded = record_counts(conn, run.run_id, run.now - _window(config), run.now, counts,
                                 config.event_scan.record_floor)
        notices = [make_notice(Kind.ALERT_RAISED, alert_key(row, "raised"), subject(row.key), run.now,
                               alert_fields(row, config, run.now), config.notifications, account=row.key.account,
                               partition=row.partition, zone=row.zone, code=row.key.code) for row in raised]
        queued = queue_notices(conn, notices, config.notifications, run.now, run.run_id)
        deps.stop.check()
        run.lease.fence(conn)
    for row in raised:
        log.warning("alert raised: %s count %d >= %d", subject(row.key), row.count, row.threshold)
    return dispatch(deps, config, run.now).outcome({
        "events": sum(g.count for g in counts.values()),
        "groups": len(counts),
        "raised": len(raised),
        "updated": len(updated),
        "recorded": recorded,
        "notifications": queued,
    })


def _decide(counts: Mapping[GroupKey, GroupCount], known: Mapping[GroupKey, TriggerRow],
            rules: Rules) -> tuple[list[Raise], list[Update]]:
    active = {key: row.active() for key, row in known.items() if row.status == ACTIVE}
    return decide_scan(counts, active, rules, _clears(known))


def _clears(known: Mapping[GroupKey, TriggerRow]) -> dict[GroupKey, datetime]:
    """When each group that is not active had its last alert cleared."""
    return {key: row.cleared_at for key, row in known.items() if row.status != ACTIVE and row.cleared_at}


def _enriched(row: TriggerRow) -> bool:
    return any((row.account_name, row.company, row.client_group))


def _updated_row(row: TriggerRow, update: Update, group: GroupCount | None, account: Mapping[str, object] | None,
                 run: RunContext) -> TriggerRow:
    row = replace(row, count=update.count, peak=update.peak, last_seen=update.last_seen, updated_at=run.now)
    if group is not None and group.last_seen >= update.last_seen:
        row = replace(row, partition=group.partition or None, zone=group.zone or None)
    if _enriched(row) or not account:
        return row
    name, company, client_group = account_labels(account)
    return replace(row, account_name=name, company=company, client_group=client_group)


def _window(config: Config) -> timedelta:
    return timedelta(minutes=config.event_scan.window_minutes)


def _raised_row(
    decision: Raise, group: GroupCount, previous: TriggerRow | None, account: Mapping[str, object] | None,
    run: RunContext,
) -> TriggerRow:
    name, company, client_group = account_labels(account)
    return TriggerRow(
        key=decision.key, status=ACTIVE, generation=(previous.generation + 1) if previous else 1,
        count=decision.count, peak=decision.count, threshold=decision.threshold, first_seen=decision.first_seen,
        last_seen=decision.last_seen, raised_at=run.now, cleared_at=None, clear_reason=None, account_name=name,
        company=company, client_group=client_group, updated_at=run.now, partition=group.partition or None,
        zone=group.zone or None,
    )


def _entry(row: TriggerRow, config: Config, run: RunContext) -> RegisterEntry:
    return RegisterEntry(
        at=run.now, action="raised", account=row.key.account, cuc=row.key.cuc, code=row.key.code,
        generation=row.generation, count=row.count, threshold=row.threshold,
        window_minutes=config.event_scan.window_minutes, reason=None, active_seconds=None,
        account_name=row.account_name, company=row.company, client_group=row.client_group, run_id=run.run_id,
    )
