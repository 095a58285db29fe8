"""`netwatch run alert-clear`: clear active alerts whose volume fell back or that expired."""

from __future__ import annotations

import logging
from dataclasses import replace

from netwatch.alerts.messages import alert_fields, alert_key, subject
from netwatch.alerts.window import (
    ALERT_VOLUME,
    read_window,
    require_segware,
    segware_problems,
    volume_rules,
)
from netwatch.config import Config
from netwatch.core.volume import Clear, Rules, decide_clear, format_duration
from netwatch.db.register import RegisterEntry, append_entries
from netwatch.db.triggers import CLEARED, TriggerRow, load_triggers, save_triggers
from netwatch.delivery.dispatch import dispatch
from netwatch.delivery.notices import make_notice, queue_notices
from netwatch.deps import Deps
from netwatch.notify.kinds import Kind
from netwatch.running.runner import JobOutcome, RunContext, refuse_unready, run_job

log = logging.getLogger(__name__)

JOB = "alert-clear"


def config_problems(config: Config) -> list[str]:
    """What alert-clear needs from the config and lacks, each as "key: problem" (empty: ready)."""
    return segware_problems(config, JOB)


def run_alert_clear(config: Config, deps: Deps) -> int:
    """One pass under the job's lease; returns the exit code."""
    refuse_unready(config, config_problems(config))
    rules = volume_rules(config)
    return run_job(JOB, "0/1", config.run, deps, lambda run: alert_clear(config, deps, rules, run),
                   group=ALERT_VOLUME)


def alert_clear(config: Config, deps: Deps, rules: Rules, run: RunContext) -> JobOutcome:
    """A fresh complete read of the window for the active triggers' codes, then one transaction."""
    with deps.engine.begin() as conn:
        active = load_triggers(conn, only_active=True)
    codes = {key.code for key in active if key.code in rules.thresholds}
    counts = read_window(require_segware(deps.segware, JOB), codes, run.now, config, deps.stop) if active else {}
    with deps.engine.begin() as conn:
        active = load_triggers(conn, only_active=True)
        clears = decide_clear(counts, {key: row.active() for key, row in active.items()}, rules, run.now)
        cleared = [_cleared_row(active[c.key], c, run) for c in clears]
        save_triggers(conn, cleared)
        append_entries(conn, [_entry(row, c, config, run) for row, c in zip(cleared, clears, strict=True)])
        notices = [
            make_notice(Kind.ALERT_CLEARED, alert_key(row, "cleared"), subject(row.key), run.now,
                        {**alert_fields(row, config, run.now), "reason": str(c.reason), "last_count": str(c.last_count),
                         "duration": format_duration(c.active_seconds)},
                        config.notifications, account=row.key.account, partition=row.partition, zone=row.zone,
                        code=row.key.code)
            for row, c in zip(cleared, clears, strict=True)
        ]
        queued = queue_notices(conn, notices, config.notifications, run.now, run.run_id)
        deps.stop.check()
        run.lease.fence(conn)
    for row, c in zip(cleared, clears, strict=True):
        log.info("alert cleared: %s (%s, last count %d, active %s)", subject(row.key), c.reason, c.last_count,
                 format_duration(c.active_seconds))
    return dispatch(deps, config, run.now).outcome({
        "active": len(active),
        "cleared": len(cleared),
        "events": sum(g.count for g in counts.values()),
        "notifications": queued,
    })


def _cleared_row(row: TriggerRow, clear: Clear, run: RunContext) -> TriggerRow:
    return replace(row, status=CLEARED, count=clear.last_count, cleared_at=run.now, clear_reason=str(clear.reason),
                   updated_at=run.now)


def _entry(row: TriggerRow, clear: Clear, config: Config, run: RunContext) -> RegisterEntry:
    return RegisterEntry(
        at=run.now, action="cleared", account=row.key.account, cuc=row.key.cuc, code=row.key.code,
        generation=row.generation, count=clear.last_count, threshold=row.threshold,
        window_minutes=config.event_scan.window_minutes, reason=str(clear.reason),
        active_seconds=clear.active_seconds, account_name=row.account_name, company=row.company,
        client_group=row.client_group, run_id=run.run_id,
    )
