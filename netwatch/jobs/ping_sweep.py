"""`netwatch run ping-sweep`: ping every host once, apply thresholds, queue and deliver events."""

from __future__ import annotations

import logging
from datetime import datetime

from netwatch.config import Config
from netwatch.core.addresses import families_needed, ip_version
from netwatch.core.checks import CheckResult, evaluate_check
from netwatch.core.hoststate import Status, Transition
from netwatch.db.hosts import HOST, StoredHost
from netwatch.delivery.notices import Notice, make_notice
from netwatch.deps import Deps
from netwatch.inventory import HostSpec
from netwatch.jobs.confirm import Subject, Voice, finish_pass
from netwatch.notify.kinds import Kind
from netwatch.probes.icmp import DATAGRAM, PingSettings, ProbeResult, Target
from netwatch.running.runner import JobOutcome, RunContext, run_job
from netwatch.shard import Shard

log = logging.getLogger(__name__)

JOB = "ping-sweep"


def run_ping_sweep(config: Config, deps: Deps, shard: Shard) -> int:
    """One pass of the job under its lease; returns the exit code (77 at once without ICMP socket rights).

    The permission covers ICMPv6 too when a host may be pinged over IPv6.
    """
    addresses = [host.address for host in config.hosts if shard.owns(host.name)]
    icmp_socket = deps.check_ping_permission(config.ping.socket, families_needed(addresses, config.ping.address_family))
    return run_job(JOB, str(shard), config.run, deps,
                   lambda run: ping_sweep(config, deps, shard, run, icmp_socket))


def ping_sweep(config: Config, deps: Deps, shard: Shard, run: RunContext, icmp_socket: str) -> JobOutcome:
    """Sweep, then commit states, removals, new events and history in one transaction, then deliver.

    `icmp_socket` is the kind of ICMP socket (raw or datagram) the sweep uses; the run's counts say which
    (`icmp_datagram`: 1 for a datagram socket, 0 for a raw one).
    """
    hosts = [host for host in config.hosts if shard.owns(host.name)]
    results = _probe(hosts, config, deps, shard, icmp_socket)
    deps.stop.check()
    checks = {host.name: _evaluate(results[host.name], config) for host in hosts}
    subjects = [Subject(host.name, host.address, host.account, host.partition, host.zone) for host in hosts]
    return finish_pass(deps, config, run, shard, subjects, checks, (HOST,), _voice(config),
                       {"hosts": len(hosts), "icmp_datagram": int(icmp_socket == DATAGRAM)})


def _probe(hosts: list[HostSpec], config: Config, deps: Deps, shard: Shard, icmp_socket: str) -> dict[str, ProbeResult]:
    """Resolves names once (concurrently, to an address of ping.address_family's choice), then sweeps every
    resolved host, IPv4 and IPv6 ones together, in one pass at the shard's share of the rate limit, on ICMP
    sockets of kind `icmp_socket`."""
    names = sorted({h.address for h in hosts if ip_version(h.address) is None})
    resolved = deps.resolve(names, config.ping.resolve_concurrency, config.ping.address_family) if names else {}
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
        # Shards run at once (an Indexed Job): together they keep to the limit.
        rate_pps=max(1, config.ping.rate_limit_pps // shard.count),
        socket=icmp_socket,
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


def _voice(config: Config) -> Voice:
    return Voice(noun="host", codes=(config.sigma.offline_code, config.sigma.online_code),
                 description=lambda subject, transition, _check: _description(subject, transition),
                 change=lambda subject, transition, _check, key: _change_notice(subject, transition, key, config),
                 removal=lambda name, stored, now, key: _removal_notice(name, stored, now, key, config))


def _host_fields(name: str, address: str, account: str | None, partition: str | None, zone: str | None,
                 occurred_at: str) -> dict[str, str]:
    return {"host": name, "address": address, "account": account or "unknown", "partition": partition or "unknown",
            "zone": zone or "unknown", "occurred_at": occurred_at}


def _change_kind(transition: Transition) -> Kind:
    if transition.initial:
        return Kind.HOST_FIRST_STATUS
    return Kind.HOST_OFFLINE if transition.current is Status.OFFLINE else Kind.HOST_ONLINE


def _change_notice(host: Subject, transition: Transition, key: str, config: Config) -> Notice:
    fields = {**_host_fields(host.name, host.address, host.account, host.partition, host.zone,
                             transition.at.isoformat()),
              "streak": str(transition.streak), "status": str(transition.current)}
    return make_notice(_change_kind(transition), key, host.name, transition.at, fields, config.notifications,
                       account=host.account, partition=host.partition, zone=host.zone)


def _removal_notice(name: str, stored: StoredHost, now: datetime, key: str, config: Config) -> Notice:
    """The last message about a host removed while offline: its incident ends without a recovery."""
    fields = {**_host_fields(name, stored.address, stored.account, stored.partition, stored.zone,
                             now.isoformat()), "status": str(stored.state.status)}
    return make_notice(Kind.HOST_REMOVED, key, name, now, fields, config.notifications, account=stored.account,
                       partition=stored.partition, zone=stored.zone)


def _description(host: Subject, transition: Transition) -> str:
    offline = transition.current is Status.OFFLINE
    checks = f"{transition.streak} consecutive {'failed' if offline else 'successful'} checks"
    if transition.initial:
        return f"{host.name} first confirmed status: {'unreachable' if offline else 'reachable'} ({checks})"
    return f"{host.name} unreachable: {checks}" if offline else f"{host.name} reachable again: {checks}"
