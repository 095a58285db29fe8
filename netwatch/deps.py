"""Everything a job touches outside itself, built once per process from the config."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from netwatch.clients.http import ApiClient, RetryPolicy, make_session
from netwatch.clients.segware import SegwareClient
from netwatch.clients.sigma import SigmaClient
from netwatch.config import ApiConfig, Config, NotificationsConfig
from netwatch.core.times import utc_now
from netwatch.db.clock import server_now
from netwatch.db.engine import build_engine
from netwatch.heartbeat import OFF, Heartbeat
from netwatch.logs import Redactor
from netwatch.metrics import NO_METRICS, Metrics
from netwatch.notify.channel import Channel
from netwatch.notify.email import EmailChannel
from netwatch.notify.segware_alarm import SegwareAlarmChannel
from netwatch.notify.webhook import WebhookChannel
from netwatch.notify.whatsapp import WhatsappChannel
from netwatch.probes.icmp import PingSettings, ProbeResult, Target, require_permission, sweep
from netwatch.probes.resolve import Resolution, resolve_all
from netwatch.probes.services import check_services
from netwatch.running.stopflag import StopFlag
from netwatch.services import ServiceResult
from netwatch.tokens import read_password, read_token, token_apis

Sweeper = Callable[[Sequence[Target], PingSettings, Callable[[], None]], dict[str, ProbeResult]]
# (names, concurrency, ping.address_family) -> resolution by name
Resolver = Callable[[Sequence[str], int, str], dict[str, Resolution]]
# netwatch.probes.services.check_services: (http specs, tcp specs, settings, *, now, check_stop) -> results by name.
ServiceChecker = Callable[..., dict[str, ServiceResult]]


# Delivery outcomes wait at most this long before they are stored, so a run killed while it delivers
# forgets at most this much of what it sent; each store is two statements, whatever it holds.
STORE_EVERY_S = 1.0


@dataclass(frozen=True)
class Deps:
    """The run's side effects. `clock` is this machine's; `server_clock` the database server's (leases).

    `store_every_s`: how long a delivery outcome may wait before it is stored (netwatch/delivery/loop.py);
    tests that count statements set it long, so that only the last store happens.
    """

    engine: Engine
    clock: Callable[[], datetime]
    server_clock: Callable[[Connection], datetime]
    sweep: Sweeper
    # (ping.socket's preference, IP versions the sweep needs) -> the kind permitted (or 77)
    check_ping_permission: Callable[[str, Sequence[int]], str]
    resolve: Resolver
    sigma: SigmaClient | None
    segware: SegwareClient | None
    channels: Mapping[str, Channel]
    stop: StopFlag
    holder: str
    redactor: Redactor
    store_every_s: float = STORE_EVERY_S
    check_services: ServiceChecker = check_services
    heartbeat: Heartbeat = OFF
    metrics: Metrics = NO_METRICS


def make_holder() -> str:
    """A lease holder id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_deps(config: Config, env: Mapping[str, str], stop: StopFlag, redactor: Redactor) -> Deps:
    """Builds the engine, the API clients (only those configured) and the pinger for one run."""
    deadline_at = time.monotonic() + config.run.deadline_seconds

    def time_left() -> float:
        return deadline_at - time.monotonic()

    tokens = {api.section: read_token(api, env) for api in token_apis(config)}
    for token in tokens.values():
        redactor.add(token)
    session = make_session()

    def client(settings: ApiConfig, name: str, base_url: str) -> ApiClient:
        token = tokens.get(settings.section)
        return ApiClient(
            name=name,
            base_url=base_url,
            token=token,
            token_source=str(settings.token_file) if settings.token_file else settings.token_env,
            session=session,
            timeout_s=settings.timeout_seconds,
            retry=RetryPolicy(),
            deadline=time_left,
            sleep=stop.sleep,
            check_stop=stop.check,
        )

    sigma_url, segware_url = config.sigma.api.base_url, config.segware.api.base_url
    sigma = SigmaClient(client(config.sigma.api, "sigma", sigma_url)) if sigma_url else None
    segware = SegwareClient(client(config.segware.api, "segware", segware_url)) if segware_url else None
    engine = build_engine(config.database_url, config.database_key)
    if engine.url.password:
        # Masked in every later log line and stored error of the run, tracebacks of bugs included.
        redactor.add(str(engine.url.password))
    return Deps(
        engine=engine,
        clock=utc_now,
        server_clock=server_now,
        sweep=sweep,
        check_ping_permission=require_permission,
        resolve=lambda names, workers, family: resolve_all(names, max_workers=workers, family=family),
        sigma=sigma,
        segware=segware,
        channels=build_channels(config.notifications, env, segware, client, redactor, time_left, stop),
        stop=stop,
        holder=make_holder(),
        redactor=redactor,
        heartbeat=Heartbeat(config.heartbeat.url, config.heartbeat.timeout_seconds, session),
        metrics=Metrics(config.metrics.pushgateway_url, config.metrics.textfile_dir, config.metrics.timeout_seconds),
    )


def build_channels(
    config: NotificationsConfig,
    env: Mapping[str, str],
    segware: SegwareClient | None,
    client: Callable[[ApiConfig, str, str], ApiClient],
    redactor: Redactor,
    time_left: Callable[[], float],
    stop: StopFlag,
) -> dict[str, Channel]:
    """The configured notification channels by name; none is on until configured.

    E-mail is bounded like the HTTP clients: by `time_left` (before the run's deadline) and `stop`.
    """
    channels: dict[str, Channel] = {}
    if config.email is not None:
        email = config.email
        password = read_password(email, env)
        redactor.add(password)
        channels["email"] = EmailChannel(
            email.host, email.port, starttls=email.starttls, tls=email.tls, username=email.username,
            password=password, sender=email.sender, recipients=email.recipients, timeout_s=email.timeout_seconds,
            deadline=time_left, check_stop=stop.check,
        )
    if config.webhook is not None:
        webhook = config.webhook.api
        channels["webhook"] = WebhookChannel(client(webhook, "webhook", webhook.base_url or ""))
    if config.whatsapp is not None:
        whatsapp = config.whatsapp.api
        channels["whatsapp"] = WhatsappChannel(client(whatsapp, "whatsapp", whatsapp.base_url or ""),
                                               config.whatsapp.recipients)
    if config.segware_alarm is not None and segware is not None:
        channels["segware_alarm"] = SegwareAlarmChannel(segware, config.segware_alarm.code,
                                                        config.segware_alarm.recovery_code)
    return channels

