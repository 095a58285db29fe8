"""One pass over the HTTP and the TCP checks together: one pool, one concurrency bound, one deadline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from netwatch.probes.http import http_checks
from netwatch.probes.pool import ProbeSettings, run_checks
from netwatch.probes.tcp import tcp_checks
from netwatch.services import HttpCheckSpec, ServiceResult, TcpCheckSpec


def check_services(http: Sequence[HttpCheckSpec], tcp: Sequence[TcpCheckSpec], settings: ProbeSettings, *,
                   now: datetime, check_stop: Callable[[], None]) -> dict[str, ServiceResult]:
    """A result for every check of `http` and `tcp` (names unique across both), by name.

    `now` is the run's time (a certificate's days left). Raises what `check_stop` raises.
    """
    return run_checks([*http_checks(http, settings.max_body_bytes, now), *tcp_checks(tcp)], settings, check_stop)
