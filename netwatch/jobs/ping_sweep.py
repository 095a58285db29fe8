"""`netwatch run ping-sweep`: ping every host once, apply thresholds, queue and deliver events."""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from sqlalchemy.engine import Connection

from netwatch.clients import sigma
from netwatch.clients.sigma import SigmaEvent
from netwatch.config import Config
from netwatch.core import rollup
from netwatch.core.addresses import is_ipv4
from netwatch.core.checks import CheckResult, evaluate_check
from netwatch.core.history import check_entry
from netwatch.core.hoststate import HostState, Status, Transition, advance, moved
from netwatch.db import history, outbox
from netwatch.db.hosts import HostRow, StoredHost, delete_hosts, load_host_states, save_hosts
from netwatch.db.outbox import OutboxItem
from netwatch.db.rollups import update_rollups
from netwatch.delivery.dispatch import dispatch
from netwatch.delivery.notices import Notice, make_notice, queue_notices
from netwatch.delivery.sigma import CHANNEL
from netwatch.deps import Deps
from netwatch.inventory import HostSpec
from netwatch.notify.kinds import Kind
from netwatch.probes.icmp import PingSettings, ProbeResult, Target
from netwatch.running.runner import JobOutcome, RunContext, run_job
from netwatch.shard import Shard

log = logging.getLogger(__name__)

JOB = "ping-sweep"
_LOGGED_NAMES = 10  # removed hosts named in the log line; the count is always complete


def run_ping_sweep(config: Config, deps: Deps, shard: Shard) -> int:
    """One pass of the job under its lease; returns the exit code (77 at once without raw ICMP rights)."""
    deps.check_ping_permission()
    return run_job(JOB, str(shard), config.run, deps,
                   lambda run: ping_sweep(config, deps, shard, run))


def ping_sweep(config: Config, deps: Deps, shard: Shard, run: RunContext) -> JobOutcome:
    """Sweep, then commit states, removals, new events and history in one transaction, then deliver."""
    hosts = [host for host in config.hosts if shard.owns(host.name)]
    results = _probe(hosts, config, deps)
    deps.stop.check()
    checks = {host.name: _evaluate(results[host.name], config) for host in hosts}
    with deps.engine.begin() as conn:
        previous = load_host_states(conn)
        rows, applied = _advance_all(hosts, checks, previous, config, run)
        changes = [(host, transition) for host, transition in applied if transition.notify]
        save_hosts(conn, rows)
        departed = _remove_departed(conn, previous, hosts, shard)
        _write_history(conn, hosts, checks, previous, rows, applied, departed, config, run)
        events = [_event_item(host, transition, config, deps.sigma is not None, run) for host, transition in changes]
        outbox.enqueue(conn, events)
        notices = [_change_notice(host, transition, config) for host, transition in changes]
        notices += [_removal_notice(name, previous[name], config, run) for name in departed
                    if previous[name].state.status is Status.OFFLINE]
        queued = queue_notices(conn, notices, config.notifications, run.now, run.run_id)
        deps.stop.check()
        run.lease.fence(conn)
    for event in events:
        if event.status == outbox.UNDELIVERED:
            log.warning("undelivered: no sink configured", extra={"fields": {"host": event.subject,
                                                                             "type": event.kind}})
    statuses = Counter(str(check.status) for check in checks.values())
    return dispatch(deps, config, run.now).outcome({
        "hosts": len(hosts),
        "ok": statuses["ok"],
        "degraded": statuses["degraded"],
        "failed": statuses["failed"],
        "transitions": len(applied),
        "removed": len(departed),
        "events": len(events),
        "notifications": queued,
    })


def departed_hosts(stored: Iterable[str], inventory: Collection[str], shard: Shard) -> list[str]:
    """Stored hosts of this shard that the inventory no longer lists, sorted.

    Another shard's hosts are never returned: that shard alone decides about them.
    """
    return sorted(name for name in stored if shard.owns(name) and name not in inventory)


def _remove_departed(conn: Connection, previous: Mapping[str, StoredHost], hosts: list[HostSpec],
                     shard: Shard) -> list[str]:
    """Deletes the state of hosts gone from the inventory (returned); their check history and events stay."""
    departed = departed_hosts(previous, {host.name for host in hosts}, shard)
    if not departed:
        return []
    removed = delete_hosts(conn, departed)
    shown = ", ".join(departed[:_LOGGED_NAMES]) + (", ..." if len(departed) > _LOGGED_NAMES else "")
    log.info("removed %d hosts no longer in the inventory: %s", removed, shown)
    return departed


def _probe(hosts: list[HostSpec], config: Config, deps: Deps) -> dict[str, ProbeResult]:
    """Resolves names once (concurrently), then sweeps every resolved host in one pass."""
    names = sorted({h.address for h in hosts if not is_ipv4(h.address)})
    resolved = deps.resolve(names, config.ping.resolve_concurrency) if names else {}
    results: dict[str, ProbeResult] = {}
    targets = []
    for host in hosts:
        resolution = resolved.get(host.address)
        address = resolution.address if resolution else host.address
        if address is None:
            error = resolution.error if resolution else "unresolved"
            results[host.name] = ProbeResult(sent=0, received=0, rtts_ms=(), attempts=0, error=error)
        else:
            targets.append(Target(key=host.name, address=address))
    settings = PingSettings(
        count=config.ping.count,
        interval_s=config.ping.interval_ms / 1000,
        timeout_s=config.ping.timeout_seconds,
        retries=config.ping.retries,
        rate_pps=config.ping.rate_limit_pps,
    )
    deps.stop.check()
    results.update(deps.sweep(targets, settings, deps.stop.check))
    return results


def _evaluate(result: ProbeResult, config: Config) -> CheckResult:
    return evaluate_check(
        sent=result.sent,
        received=result.received,
        rtts_ms=result.rtts_ms,
        attempts=result.attempts,
        error=result.error,
        loss_degraded_percent=config.ping.loss_degraded_percent,
        latency_degraded_ms=config.ping.latency_degraded_ms,
    )


def _advance_all(
    hosts: list[HostSpec],
    checks: dict[str, CheckResult],
    previous: Mapping[str, StoredHost],
    config: Config,
    run: RunContext,
) -> tuple[list[HostRow], list[tuple[HostSpec, Transition]]]:
    """Every host's new row (in the order of `hosts`), and every confirmed change with its host."""
    rows: list[HostRow] = []
    changes: list[tuple[HostSpec, Transition]] = []
    for host in hosts:
        check = checks[host.name]
        state, transition = advance(_start_state(host, previous.get(host.name)), check.check_ok, run.now,
                                    config.thresholds)
        rows.append(
            HostRow(
                name=host.name,
                address=host.address,
                account=host.account,
                partition=host.partition,
                zone=host.zone,
                state=state,
                last_check_at=run.now,
                last_check_status=str(check.status),
                last_run_id=run.run_id,
            )
        )
        if transition is not None:
            level = logging.DEBUG if transition.initial else logging.INFO
            log.log(level, "host %s is %s (was %s)", host.name, transition.current, transition.previous)
            changes.append((host, transition))
    return rows, changes


def _write_history(conn: Connection, hosts: list[HostSpec], checks: Mapping[str, CheckResult],
                   previous: Mapping[str, StoredHost], rows: list[HostRow],
                   applied: list[tuple[HostSpec, Transition]], departed: list[str], config: Config,
                   run: RunContext) -> None:
    """The run's raw checks, confirmed changes (removals among them) and rollups.

    A host that already has a check at this second (the clock stepped back onto an earlier run) keeps
    that one: its new check updates its state but not its history.
    """
    now_s = _epoch(run.now)
    ids = history.target_ids(conn, [host.name for host in hosts] + departed, run.now)
    taken = history.checked_targets(conn, now_s)
    last_checks = {ids[host.name]: _epoch(previous[host.name].last_check_at) if host.name in previous else None
                   for host in hosts}
    entries = []
    for host, row in zip(hosts, rows, strict=True):
        stored = previous.get(host.name)
        if ids[host.name] in taken:
            continue
        entries.append(check_entry(ids[host.name], now_s, last_checks[ids[host.name]],
                                   stored.state.status if stored else Status.UNKNOWN, row.state.status,
                                   checks[host.name], config.history.gap_limit_seconds))
    errors = history.error_ids(conn, {entry.error for entry in entries if entry.error is not None})
    history.insert_checks(conn, entries, errors)
    state = rollup.STATE_CODES
    changes = [history.TransitionRow(ids[host.name], t.at, state[str(t.previous)], state[str(t.current)], t.streak,
                                     t.held_s, run.run_id, _event_key(host.name, t) if t.notify else None)
               for host, t in applied]
    changes += [history.TransitionRow(ids[name], run.now, state[str(previous[name].state.status)], state["unknown"],
                                      0, 0, run.run_id, None)
                for name in departed if previous[name].state.status is not Status.UNKNOWN]
    history.insert_transitions(conn, changes)
    update_rollups(conn, entries, last_checks)


def _epoch(at: datetime) -> int:
    """Whole epoch seconds, as the history tables store times (floor)."""
    return math.floor(at.timestamp())


def _start_state(host: HostSpec, stored: StoredHost | None) -> HostState:
    """The stored state, with its streaks started over when the host's address changed."""
    if stored is None:
        return HostState()
    if stored.address != host.address:
        log.info("host %s moved from %s to %s: its check streaks start over", host.name, stored.address,
                 host.address)
        return moved(stored.state)
    return stored.state


def _host_fields(name: str, address: str, account: str | None, partition: str | None, zone: str | None,
                 occurred_at: str) -> dict[str, str]:
    return {"host": name, "address": address, "account": account or "unknown", "partition": partition or "unknown",
            "zone": zone or "unknown", "occurred_at": occurred_at}


def _change_kind(transition: Transition) -> Kind:
    if transition.initial:
        return Kind.HOST_FIRST_STATUS
    return Kind.HOST_OFFLINE if transition.current is Status.OFFLINE else Kind.HOST_ONLINE


def _change_notice(host: HostSpec, transition: Transition, config: Config) -> Notice:
    fields = {**_host_fields(host.name, host.address, host.account, host.partition, host.zone,
                             transition.at.isoformat()),
              "streak": str(transition.streak), "status": str(transition.current)}
    kind = _change_kind(transition)
    return make_notice(kind, _event_key(host.name, transition), host.name, transition.at, fields,
                       config.notifications, account=host.account, partition=host.partition, zone=host.zone)


def _removal_notice(name: str, stored: StoredHost, config: Config, run: RunContext) -> Notice:
    """The last message about a host removed while offline: its incident ends without a recovery."""
    fields = {**_host_fields(name, stored.address, stored.account, stored.partition, stored.zone,
                             run.now.isoformat()), "status": str(stored.state.status)}
    key = "nw-" + hashlib.sha256(f"{name}|removed|{run.now.isoformat()}".encode()).hexdigest()[:40]
    return make_notice(Kind.HOST_REMOVED, key, name, run.now, fields, config.notifications, account=stored.account,
                       partition=stored.partition, zone=stored.zone)


def _event_key(name: str, transition: Transition) -> str:
    """Stable across retries and runs: the host, the change and when it was confirmed."""
    kind = sigma.HOST_OFFLINE if transition.current is Status.OFFLINE else sigma.HOST_ONLINE
    return "nw-" + hashlib.sha256(f"{name}|{kind}|{transition.at.isoformat()}".encode()).hexdigest()[:40]


def _description(host: HostSpec, transition: Transition) -> str:
    offline = transition.current is Status.OFFLINE
    checks = f"{transition.streak} consecutive {'failed' if offline else 'successful'} checks"
    if transition.initial:
        return f"{host.name} first confirmed status: {'unreachable' if offline else 'reachable'} ({checks})"
    return f"{host.name} unreachable: {checks}" if offline else f"{host.name} reachable again: {checks}"


def _event_item(host: HostSpec, transition: Transition, config: Config, has_sink: bool, run: RunContext) -> OutboxItem:
    offline = transition.current is Status.OFFLINE
    event = SigmaEvent(
        account=host.account,
        partition=host.partition,
        zone=host.zone,
        code=config.sigma.offline_code if offline else config.sigma.online_code,
        type=sigma.HOST_OFFLINE if offline else sigma.HOST_ONLINE,
        host_name=host.name,
        host_address=host.address,
        occurred_at=transition.at,
        description=_description(host, transition),
    )
    return OutboxItem(
        id=None,
        channel=CHANNEL,
        idempotency_key=_event_key(host.name, transition),
        kind=event.type,
        subject=host.name,
        payload=event.body(),
        status=outbox.PENDING if has_sink else outbox.UNDELIVERED,
        attempts=0,
        http_status=None,
        last_error=None if has_sink else "no sink configured",
        next_attempt_at=None,
        created_at=run.now,
        updated_at=run.now,
        delivered_at=None,
        run_id=run.run_id,
    )
