"""Everything a job touches outside itself, built once per process from the config."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from netwatch import logs
from netwatch.clients.http import ApiClient, RetryPolicy, make_session
from netwatch.clients.segware import SegwareClient
from netwatch.clients.sigma import SigmaClient
from netwatch.config import ApiConfig, Config, read_token
from netwatch.db.engine import build_engine
from netwatch.probes.icmp import PingSettings, ProbeResult, Target, require_permission, sweep
from netwatch.probes.resolve import Resolution, resolve_all
from netwatch.stopflag import StopFlag

Sweeper = Callable[[Sequence[Target], PingSettings, Callable[[], bool]], dict[str, ProbeResult]]
Resolver = Callable[[Sequence[str], int], dict[str, Resolution]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    engine: Engine
    clock: Callable[[], datetime]
    sweep: Sweeper
    check_ping_permission: Callable[[], None]
    resolve: Resolver
    sigma: SigmaClient | None
    segware: SegwareClient | None
    stop: StopFlag
    holder: str


def make_holder() -> str:
    """A lease holder id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_deps(config: Config, env: Mapping[str, str], stop: StopFlag) -> Deps:
    """Builds the engine, the API clients (only those configured) and the pinger for one run."""
    deadline_at = time.monotonic() + config.run.deadline_seconds
    session = make_session()

    def api(settings: ApiConfig, name: str) -> ApiClient | None:
        if settings.base_url is None:
            return None
        token = read_token(settings, env)
        logs.register_secret(token)
        return ApiClient(
            name=name,
            base_url=settings.base_url,
            token=token,
            token_source=str(settings.token_file) if settings.token_file else settings.token_env,
            session=session,
            timeout_s=settings.timeout_seconds,
            retry=RetryPolicy(),
            deadline=lambda: deadline_at - time.monotonic(),
            sleep=stop.sleep,
        )

    sigma_api = api(config.sigma.api, "sigma")
    segware_api = api(config.segware.api, "segware")
    return Deps(
        engine=build_engine(config.database_url),
        clock=utc_now,
        sweep=sweep,
        check_ping_permission=require_permission,
        resolve=lambda names, workers: resolve_all(names, max_workers=workers),
        sigma=SigmaClient(sigma_api) if sigma_api else None,
        segware=SegwareClient(segware_api) if segware_api else None,
        stop=stop,
        holder=make_holder(),
    )
