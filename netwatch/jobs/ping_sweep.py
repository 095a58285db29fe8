"""`netwatch run ping-sweep`: ping every host once, apply thresholds, queue and deliver events."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy.engine import Connection

from netwatch.config import Config
from netwatch.core.checks import CheckResult, evaluate_check
from netwatch.core.hoststate import HostState, Status, Thresholds, Transition, advance
from netwatch.db import outbox
from netwatch.db.checks import CheckRow, insert_check_results
from netwatch.db.hosts import HostRow, delete_hosts, load_host_states, save_hosts
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.dispatch import dispatch
from netwatch.delivery.notices import Notice, make_notice, queue_notices
from netwatch.delivery.sigma import CHANNEL
from netwatch.deps import Deps
from netwatch.inventory import HostSpec
from netwatch.probes.icmp import PingSettings, ProbeResult, Target
from netwatch.running.runner import JobOutcome, RunContext, run_job
from netwatch.shard import Shard

log = logging.getLogger(__name__)

JOB = "ping-sweep"
_EVENT_TYPES = {Status.OFFLINE: "HOST_OFFLINE", Status.ONLINE: "HOST_ONLINE"}
_LOGGED_NAMES = 10  # removed hosts named in the log line; the count is always complete


def run_ping_sweep(config: Config, deps: Deps, shard: Shard) -> int:
    """One pass of the job under its lease; returns the exit code (77 at once without raw ICMP rights)."""
    deps.check_ping_permission()
    return run_job(JOB, str(shard), config.run.lease_seconds, deps,
                   lambda run: ping_sweep(config, deps, shard, run))


def ping_sweep(config: Config, deps: Deps, shard: Shard, run: RunContext) -> JobOutcome:
    """Sweep, then commit results, states, removals and new events in one transaction, then deliver."""
    hosts = [host for host in config.hosts if shard.owns(host.name)]
    addresses, results = _probe(hosts, config, deps)
    deps.stop.check()
    thresholds = Thresholds(
        down_after=config.thresholds.down_after,
        up_after=config.thresholds.up_after,
        min_transition_seconds=config.thresholds.min_transition_seconds,
        notify_initial=config.thresholds.notify_initial,
    )
    checks = {host.name: _evaluate(results[host.name], config) for host in hosts}
    with deps.engine.begin() as conn:
        previous = load_host_states(conn)
        rows, transitions, events = _advance_all(hosts, checks, previous, thresholds, config, deps, run)
        insert_check_results(
            conn,
            [CheckRow(run.run_id, h.name, run.now, addresses[h.name], checks[h.name]) for h in hosts],
        )
        save_hosts(conn, rows)
        removed = _remove_departed(conn, previous, hosts, shard)
        outbox.enqueue(conn, events)
        queued = queue_notices(conn, [_notice(event, config) for event in events], config.notifications, run.now,
                               run.run_id)
        deps.stop.check()
        run.lease.fence(conn)
    for event in events:
        if event.status == outbox.UNDELIVERED:
            log.warning("undelivered: no sink configured", extra={"fields": {"host": event.subject,
                                                                             "type": event.kind}})
    statuses = Counter(str(check.status) for check in checks.values())
    return JobOutcome(
        counts={
            "hosts": len(hosts),
            "ok": statuses["ok"],
            "degraded": statuses["degraded"],
            "failed": statuses["failed"],
            "transitions": transitions,
            "removed": removed,
            "events": len(events),
            "notifications": queued,
        },
        delivery=dispatch(deps, config, run.now),
    )


def departed_hosts(stored: Iterable[str], inventory: Collection[str], shard: Shard) -> list[str]:
    """Stored hosts of this shard that the inventory no longer lists, sorted.

    Another shard's hosts are never returned: that shard alone decides about them.
    """
    return sorted(name for name in stored if shard.owns(name) and name not in inventory)


def _remove_departed(conn: Connection, previous: dict[str, HostState], hosts: list[HostSpec], shard: Shard) -> int:
    """Deletes the state of hosts gone from the inventory; their check history and events stay."""
    departed = departed_hosts(previous, {host.name for host in hosts}, shard)
    if not departed:
        return 0
    removed = delete_hosts(conn, departed)
    shown = ", ".join(departed[:_LOGGED_NAMES]) + (", ..." if len(departed) > _LOGGED_NAMES else "")
    log.info("removed %d hosts no longer in the inventory: %s", removed, shown)
    return removed


def _probe(hosts: list[HostSpec], config: Config, deps: Deps) -> tuple[dict[str, str | None], dict[str, ProbeResult]]:
    """Resolves names once (concurrently), then sweeps every resolved host in one pass."""
    names = sorted({h.address for h in hosts if not _is_ipv4(h.address)})
    resolved = deps.resolve(names, config.ping.resolve_concurrency) if names else {}
    addresses: dict[str, str | None] = {}
    results: dict[str, ProbeResult] = {}
    targets = []
    for host in hosts:
        resolution = resolved.get(host.address)
        address = resolution.address if resolution else host.address
        addresses[host.name] = address
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
    results.update(deps.sweep(targets, settings, deps.stop.is_set))
    return addresses, results


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


def _is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def _advance_all(
    hosts: list[HostSpec],
    checks: dict[str, CheckResult],
    previous: dict[str, HostState],
    thresholds: Thresholds,
    config: Config,
    deps: Deps,
    run: RunContext,
) -> tuple[list[HostRow], int, list[OutboxItem]]:
    rows: list[HostRow] = []
    events: list[OutboxItem] = []
    transitions = 0
    for host in hosts:
        check = checks[host.name]
        state, transition = advance(previous.get(host.name, HostState()), check.check_ok, run.now, thresholds)
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
            transitions += 1
            level = logging.INFO if transition.previous != Status.UNKNOWN else logging.DEBUG
            log.log(level, "host %s is %s (was %s)", host.name, transition.current, transition.previous)
            if transition.notify:
                events.append(_event(host, transition, config, deps.sigma is not None, run))
    return rows, transitions, events


def _notice(event: OutboxItem, config: Config) -> Notice:
    p = event.payload
    kind = "host_offline" if event.kind == "HOST_OFFLINE" else "host_online"
    fields = {"host": p["host_name"], "address": p["host_address"], "account": p["account"] or "unknown",
              "partition": p["partition"] or "unknown", "zone": p["zone"] or "unknown", "streak": str(p["streak"]),
              "occurred_at": p["occurred_at"]}
    return make_notice(kind, event.idempotency_key, event.subject, datetime.fromisoformat(p["occurred_at"]), fields,
                       config.notifications, account=p["account"], partition=p["partition"], zone=p["zone"])


def _event(host: HostSpec, transition: Transition, config: Config, has_sink: bool, run: RunContext) -> OutboxItem:
    kind = _EVENT_TYPES[transition.current]
    offline = transition.current == Status.OFFLINE
    occurred_at = transition.at.isoformat()
    description = (
        f"{host.name} unreachable: {transition.streak} consecutive failed checks"
        if offline
        else f"{host.name} reachable again: {transition.streak} consecutive successful checks"
    )
    key = hashlib.sha256(f"{host.name}|{kind}|{occurred_at}".encode()).hexdigest()[:40]
    return OutboxItem(
        id=None,
        channel=CHANNEL,
        idempotency_key=f"nw-{key}",
        kind=kind,
        subject=host.name,
        payload={
            "type": kind,
            "code": config.sigma.offline_code if offline else config.sigma.online_code,
            "host_name": host.name,
            "host_address": host.address,
            "account": host.account,
            "partition": host.partition,
            "zone": host.zone,
            "occurred_at": occurred_at,
            "description": description,
            "streak": transition.streak,
        },
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
