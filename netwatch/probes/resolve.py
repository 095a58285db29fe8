"""Concurrent IPv4 name resolution for a sweep: every name gets an address or an error."""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from netwatch.probes.neterrors import dns_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    address: str | None  # IPv4 literal
    error: str | None  # e.g. "DNS: name does not resolve (router.invalid)"


def resolve_all(names: Iterable[str], max_workers: int = 32, timeout_s: float = 5.0) -> dict[str, Resolution]:
    """Resolves each distinct name once, concurrently; IPv4 literals are returned without DNS.

    A name that fails, or is still unresolved after timeout_s in total, gets an error.
    """
    distinct = list(dict.fromkeys(names))
    results: dict[str, Resolution] = {}
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    lookups = 0
    for name in distinct:
        try:
            results[name] = Resolution(str(ipaddress.IPv4Address(name)), None)
        except ValueError:
            pending.put(name)
            lookups += 1
    if lookups == 0:
        return results

    answers: dict[str, Resolution] = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def work() -> None:
        while True:
            try:
                name = pending.get_nowait()
            except queue.Empty:
                return
            resolution = _resolve(name)
            with lock:
                answers[name] = resolution
                if len(answers) == lookups:
                    all_done.set()

    # Daemon threads: a lookup stuck in the system resolver must not hold the process at exit.
    for number in range(max(1, min(max_workers, lookups))):
        threading.Thread(target=work, name=f"resolve-{number}", daemon=True).start()
    all_done.wait(timeout_s)

    with lock:
        results.update(answers)
    late = [name for name in distinct if name not in results]
    for name in late:
        results[name] = Resolution(None, f"DNS: no answer within {timeout_s:g} s ({name})")
    if late:
        log.warning("%d of %d names not resolved within %g s", len(late), lookups, timeout_s)
    return {name: results[name] for name in distinct}


def _resolve(name: str) -> Resolution:
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        return Resolution(None, f"DNS: {dns_problem(exc)} ({name})")
    except UnicodeError:
        return Resolution(None, f"DNS: invalid name ({name})")
    log.debug("resolved %s in %.3f s", name, time.monotonic() - started)
    return Resolution(str(infos[0][4][0]), None)

