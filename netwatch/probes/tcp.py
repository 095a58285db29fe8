"""TCP service checks: does a connection to host:port open, and how long did it take (name lookup included)."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable, Sequence

from netwatch.core.servicecheck import failed, judge_tcp
from netwatch.probes.neterrors import connect_problem
from netwatch.probes.pool import Check, ProbeSettings, Sockets, run_checks, timed_out
from netwatch.services import ServiceResult, TcpCheckSpec


def check_tcp(specs: Sequence[TcpCheckSpec], settings: ProbeSettings,
              check_stop: Callable[[], None]) -> dict[str, ServiceResult]:
    """One pass over `specs` (netwatch/probes/pool.py): a result for each, by name, in order."""
    return run_checks(tcp_checks(specs), settings, check_stop)


def tcp_checks(specs: Sequence[TcpCheckSpec]) -> list[Check]:
    """The checks of a pass over `specs` (see `check_tcp`), to run alone or beside others."""
    return [Check(spec.name, spec.timeout_seconds, functools.partial(_connect, spec)) for spec in specs]


def _connect(spec: TcpCheckSpec, budget_s: float, _sockets: Sockets, _abandoned: threading.Event) -> ServiceResult:
    # Nothing to cut short: a connect that is under way cannot be, and its own timeout bounds it.
    started = time.monotonic()
    try:
        connection = socket.create_connection((spec.host, spec.port), timeout=budget_s)
    except TimeoutError:
        return timed_out(spec.name, spec.timeout_seconds, budget_s)
    except UnicodeError:
        return failed(spec.name, "DNS error: invalid name", (time.monotonic() - started) * 1000)
    except OSError as exc:
        return failed(spec.name, connect_problem(exc), (time.monotonic() - started) * 1000)
    elapsed_ms = (time.monotonic() - started) * 1000
    connection.close()
    return judge_tcp(spec, elapsed_ms)
