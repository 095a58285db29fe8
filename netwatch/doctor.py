"""`netwatch doctor`: is this machine, with this config, able to run the jobs? One verdict per check.

Unlike `check-config` it contacts what the jobs contact: the database (reachable, schema version,
the clock offset from its server, each job's last success), each configured API (reachable, and
for Segware the token accepted, through a one-second read of events; Sigma has no read call, so
its token is only known to be set), and the ICMP sockets this process may open. It changes
nothing: the database is opened read-only and no event is sent. No token, password or key is
printed; the database URL is shown masked.

Each finding is `pass`, `fail` or `skip` (not configured, or not checkable because an earlier
check failed); the command exits 1 when any failed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.clients.http import ApiClient, RetryPolicy
from netwatch.clients.segware import SegwareClient
from netwatch.config import ApiConfig, Config
from netwatch.core.addresses import families_needed
from netwatch.db import migrate
from netwatch.db.engine import describe_db_error, is_db_unavailable, safe_url
from netwatch.db.statuspage import last_successes
from netwatch.errors import NetwatchError
from netwatch.readiness import JOBS, check_readiness
from netwatch.tokens import read_token

if TYPE_CHECKING:
    import requests

PASS, FAIL, SKIP = "pass", "fail", "skip"
# ICMP socket kinds, as the kernel decides them for this process: (label, family, type, protocol).
ICMP_KINDS = (
    ("raw IPv4", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    ("datagram IPv4", socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
    ("raw IPv6", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    ("datagram IPv6", socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6),
)
# An API check is one try, bounded like this whatever the API's own timeout.
API_CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Finding:
    check: str
    result: str
    detail: str


@dataclass(frozen=True)
class DoctorDeps:
    """What the doctor touches: the read-only engine (opened when needed), the HTTP session, both clocks,
    the ICMP probes."""

    open_engine: Callable[[], Engine]
    session: requests.Session
    clock: Callable[[], datetime]
    server_clock: Callable[..., datetime]
    # (ping.socket's preference, IP versions its hosts need) -> the kind ping-sweep would use
    ping_permission: Callable[[str, Sequence[int]], str]
    icmp_kinds: Callable[[], Mapping[str, str | None]]


def icmp_kinds() -> dict[str, str | None]:
    """Each ICMP socket kind: None when this process may open it, else the kernel's reason."""
    found: dict[str, str | None] = {}
    for label, family, kind, protocol in ICMP_KINDS:
        try:
            socket.socket(family, kind, protocol).close()
        except OSError as exc:
            found[label] = exc.strerror or type(exc).__name__
        else:
            found[label] = None
    return found


def diagnose(config: Config, env: Mapping[str, str], deps: DoctorDeps) -> list[Finding]:
    """Every check, in order: config, database, schema, clock, last runs, APIs, ICMP."""
    readiness = check_readiness(config, env)
    not_ready = [job for job in JOBS if readiness.reasons(job)]
    if not readiness.valid:
        findings = [Finding("config", FAIL, f"{config.source}: {readiness.problems[0]}")]
    else:
        detail = f"{config.source}: {len(config.hosts)} hosts, {len(config.http_checks)} HTTP and " \
                 f"{len(config.tcp_checks)} TCP checks"
        if not_ready:
            detail += f"; not ready: {', '.join(f'{job} ({readiness.reasons(job)[0]})' for job in not_ready)}"
        findings = [Finding("config", PASS, detail)]
    findings += _database(config, deps, frozenset(not_ready))
    findings += [_segware(config, env, deps), _sigma(config, env, deps), _icmp(config, deps)]
    return findings


def _database(config: Config, deps: DoctorDeps, not_ready: frozenset[str]) -> list[Finding]:
    shown = safe_url(config.database_url)
    try:
        engine = deps.open_engine()
        try:
            with engine.connect() as conn:
                version = migrate.current_version(conn)
                offset_s = (deps.clock() - deps.server_clock(conn)).total_seconds()
                successes = last_successes(conn, JOBS) if version == migrate.LATEST else None
        finally:
            engine.dispose()
    except NetwatchError as exc:
        return [Finding("database", FAIL, exc.message), *_skipped_after_database()]
    except SQLAlchemyError as exc:
        if not is_db_unavailable(exc):
            raise
        return [Finding("database", FAIL, describe_db_error(exc, config.database_key).message),
                *_skipped_after_database()]
    findings = [Finding("database", PASS, f"{shown}: reachable")]
    if version is None:
        findings.append(Finding("schema", FAIL, "no netwatch schema: run `netwatch db init` (SQLite: the first "
                                                "job run creates it)"))
    elif version != migrate.LATEST:
        advice = "run `netwatch db upgrade`" if version < migrate.LATEST else "upgrade netwatch"
        findings.append(Finding("schema", FAIL, f"version {version}, this netwatch needs {migrate.LATEST}: {advice}"))
    else:
        findings.append(Finding("schema", PASS, f"version {version} (current)"))
    tolerance = config.run.clock_tolerance_seconds
    clock = f"this machine is {offset_s:+.3f} s from the database server's clock (tolerance {tolerance:g} s)"
    findings.append(Finding("clock", PASS if abs(offset_s) <= tolerance else FAIL, clock))
    if successes is None:
        findings += [Finding(f"last run: {job}", SKIP, "needs the current schema") for job in JOBS]
    else:
        findings += [_last_run(config, job, successes.get(job), deps.clock(), job in not_ready) for job in JOBS]
    return findings


def _skipped_after_database() -> list[Finding]:
    return [Finding(name, SKIP, "needs the database") for name in ("schema", "clock")] + [
        Finding(f"last run: {job}", SKIP, "needs the database") for job in JOBS]


def _last_run(config: Config, job: str, success: datetime | None, now: datetime, not_ready: bool) -> Finding:
    """A watched job's last success against its age limit; a job not watched, or that this config is not
    ready for (it cannot run), is only shown."""
    name = f"last run: {job}"
    stale_after = config.status_page.stale_after_minutes.get(job)
    seen = "never succeeded" if success is None else f"last success {_ago(now, success)}"
    if not_ready:
        return Finding(name, SKIP, f"{seen}; this config is not ready for it (see config)")
    if stale_after is None:
        return Finding(name, SKIP, f"{seen}; not watched (status_page.stale_after_minutes)")
    if success is None:
        return Finding(name, FAIL, f"never succeeded (watched: stale after {stale_after} min)")
    age_s = (now - success).total_seconds()
    verdict = PASS if age_s <= stale_after * 60 else FAIL
    return Finding(name, verdict, f"last success {_ago(now, success)} (stale after {stale_after} min)")


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _client(api: ApiConfig, name: str, token: str, deps: DoctorDeps) -> ApiClient:
    timeout = min(api.timeout_seconds, API_CHECK_TIMEOUT_S)
    return ApiClient(name=name, base_url=api.base_url or "", token=token,
                     token_source=str(api.token_file) if api.token_file else api.token_env,
                     session=deps.session, timeout_s=timeout, retry=RetryPolicy(max_tries=1),
                     deadline=lambda: timeout + 1, sleep=lambda _seconds: None, check_stop=lambda: None)


def _segware(config: Config, env: Mapping[str, str], deps: DoctorDeps) -> Finding:
    api = config.segware.api
    if not api.base_url:
        return Finding("segware", SKIP, "not configured (segware.base_url)")
    try:
        token = read_token(api, env)
        SegwareClient(_client(api, "segware", token, deps)).check_access(deps.clock())
    except NetwatchError as exc:
        return Finding("segware", FAIL, exc.message)
    return Finding("segware", PASS, f"{api.base_url}: reachable, token accepted (a read of events)")


def _sigma(config: Config, env: Mapping[str, str], deps: DoctorDeps) -> Finding:
    import requests

    api = config.sigma.api
    if not api.base_url:
        return Finding("sigma", SKIP, "not configured (sigma.base_url)")
    try:
        read_token(api, env)
    except NetwatchError as exc:
        return Finding("sigma", FAIL, exc.message)
    timeout = min(api.timeout_seconds, API_CHECK_TIMEOUT_S)
    try:
        response = deps.session.get(api.base_url, timeout=(timeout, timeout), allow_redirects=False)
    except requests.RequestException as exc:
        return Finding("sigma", FAIL, f"{api.base_url}: unreachable ({type(exc).__name__})")
    response.close()
    return Finding("sigma", PASS, f"{api.base_url}: reachable (HTTP {response.status_code}); token set, not "
                                  "verified (the Events API has no read call)")


def _icmp(config: Config, deps: DoctorDeps) -> Finding:
    kinds = deps.icmp_kinds()
    shown = ", ".join(f"{label} {'allowed' if reason is None else f'refused ({reason})'}"
                      for label, reason in kinds.items())
    if not config.hosts:
        return Finding("icmp", SKIP, f"no hosts to ping; {shown}")
    try:
        families = families_needed([host.address for host in config.hosts], config.ping.address_family)
        kind = deps.ping_permission(config.ping.socket, families)
    except NetwatchError as exc:
        return Finding("icmp", FAIL, f"{exc.message}; {shown}")
    labels = " and ".join(f"IPv{number}" for number in families)
    return Finding("icmp", PASS, f"ping-sweep can open its {kind} sockets for {labels} (ping.socket: "
                                 f"{config.ping.socket}); {shown}")


def failed(findings: Sequence[Finding]) -> bool:
    return any(finding.result == FAIL for finding in findings)


def as_text(findings: Sequence[Finding]) -> str:
    return "".join(f"{finding.result.upper():4}  {finding.check}: {finding.detail}\n" for finding in findings)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"ok": not failed(findings),
                       "checks": [{"check": f.check, "result": f.result, "detail": f.detail} for f in findings]},
                      indent=2) + "\n"
