"""`netwatch run http-check`: run every HTTP and TCP check once, apply thresholds, queue and deliver events.

The same threshold machine, history, outbox and notifications as ping-sweep (netwatch/jobs/confirm.py),
for the checks of `http_checks` / `http_checks_file` and `tcp_checks` / `tcp_checks_file`, kept in
`hosts` as kinds `http` and `tcp`. Both kinds run in one pass (netwatch/probes/services.py) bounded by
`http.concurrency` and `http.run_deadline_seconds`; the Basic-Auth passwords are decrypted here, for
this run only, and masked in everything it logs or stores.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from netwatch.config import Config
from netwatch.core.checks import CheckResult
from netwatch.core.hoststate import Status, Transition
from netwatch.core.servicecheck import as_check
from netwatch.db.hosts import HTTP, TCP, LastAnswer, StoredHost
from netwatch.delivery.notices import Notice, make_notice
from netwatch.deps import Deps
from netwatch.jobs.confirm import Subject, Voice, finish_pass
from netwatch.notify.kinds import Kind
from netwatch.passwords import with_passwords
from netwatch.probes.pool import ProbeSettings
from netwatch.running.runner import JobOutcome, RunContext, run_job
from netwatch.services import HttpCheckSpec, TcpCheckSpec, shown_target
from netwatch.shard import Shard

JOB = "http-check"
KINDS = (HTTP, TCP)


def run_http_check(config: Config, deps: Deps, shard: Shard, env: Mapping[str, str]) -> int:
    """One pass of the job under its lease; a password that does not decrypt is a config error (78) first."""
    http = with_passwords([check for check in config.http_checks if shard.owns(check.name)], env,
                          config.encryption.key_file)
    for check in http:
        if check.password is not None:
            deps.redactor.add(check.password)
    tcp = [check for check in config.tcp_checks if shard.owns(check.name)]
    return run_job(JOB, str(shard), config.run, deps, lambda run: http_check(config, deps, shard, http, tcp, run))


def http_check(config: Config, deps: Deps, shard: Shard, http: Sequence[HttpCheckSpec], tcp: Sequence[TcpCheckSpec],
               run: RunContext) -> JobOutcome:
    """Check, then commit states, removals, new events and history in one transaction, then deliver."""
    settings = ProbeSettings(deadline_at=time.monotonic() + config.http.run_deadline_seconds,
                             concurrency=config.http.concurrency, max_body_bytes=config.http.max_body_bytes)
    results = deps.check_services(http, tcp, settings, now=run.now, check_stop=deps.stop.check)
    deps.stop.check()
    checks = {name: as_check(result) for name, result in results.items()}
    answers = {check.name: LastAnswer(results[check.name].status_code, results[check.name].size_bytes,
                                      results[check.name].excerpt) for check in http}
    subjects = ([Subject(c.name, shown_target(c), c.account, kind=HTTP, client=c.client) for c in http]
                + [Subject(c.name, shown_target(c), c.account, kind=TCP, client=c.client) for c in tcp])
    return finish_pass(deps, config, run, shard, subjects, checks, KINDS, _voice(config),
                       {"checks": len(subjects), "http": len(http), "tcp": len(tcp)}, answers)


def _voice(config: Config) -> Voice:
    return Voice(noun="check", codes=(config.sigma.http_down_code, config.sigma.http_up_code),
                 description=_description,
                 change=lambda subject, transition, check, key: _change_notice(subject, transition, check, key,
                                                                               config),
                 removal=lambda name, stored, now, key: _removal_notice(name, stored, now, key, config))


def _fields(name: str, kind: str, target: str, client: str | None, account: str | None,
            occurred_at: datetime) -> dict[str, str]:
    return {"check": name, "kind": kind, "target": target, "client": client or "unknown",
            "account": account or "unknown", "occurred_at": occurred_at.isoformat()}


def _change_kind(transition: Transition) -> Kind:
    if transition.initial:
        return Kind.SERVICE_FIRST_STATUS
    return Kind.SERVICE_DOWN if transition.current is Status.OFFLINE else Kind.SERVICE_UP


def _change_notice(subject: Subject, transition: Transition, check: CheckResult, key: str, config: Config) -> Notice:
    fields = {**_fields(subject.name, subject.kind, subject.address, subject.client, subject.account, transition.at),
              "streak": str(transition.streak), "status": str(transition.current), "reason": check.error or "-"}
    return make_notice(_change_kind(transition), key, subject.name, transition.at, fields, config.notifications,
                       account=subject.account)


def _removal_notice(name: str, stored: StoredHost, now: datetime, key: str, config: Config) -> Notice:
    """The last message about a check removed while down: its incident ends without a recovery."""
    fields = {**_fields(name, stored.kind, stored.address, stored.client, stored.account, now),
              "status": str(stored.state.status)}
    return make_notice(Kind.SERVICE_REMOVED, key, name, now, fields, config.notifications, account=stored.account)


def _description(subject: Subject, transition: Transition, check: CheckResult) -> str:
    down = transition.current is Status.OFFLINE
    checks = f"{transition.streak} consecutive {'failed' if down else 'successful'} checks"
    why = f": {check.error}" if down and check.error else ""
    if transition.initial:
        return f"{subject.name} first confirmed status: {'down' if down else 'up'}{why} ({checks})"
    return f"{subject.name} down{why} ({checks})" if down else f"{subject.name} up again: {checks}"
