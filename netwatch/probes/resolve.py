"""Concurrent name resolution for a sweep: every name gets an IPv4 or IPv6 address or an error."""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netwatch.core.addresses import AUTO, choose_address, ip_version
from netwatch.probes.neterrors import dns_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    address: str | None  # IPv4 or IPv6 literal
    error: str | None  # e.g. "DNS: name does not resolve (router.invalid)"


def lookup_addresses(name: str) -> list[str]:
    """Every address of `name`, IPv4 and IPv6, in the system resolver's order; raises socket.gaierror."""
    infos = socket.getaddrinfo(name, None, family=socket.AF_UNSPEC, type=socket.SOCK_DGRAM)
    return [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def resolve_all(names: Iterable[str], max_workers: int = 32, timeout_s: float = 5.0, family: str = AUTO,
                lookup: Callable[[str], list[str]] = lookup_addresses) -> dict[str, Resolution]:
    """Resolves each distinct name once, concurrently; IP literals are returned without DNS.

    `family` (ping.address_family) picks the address: AUTO the IPv4 one when the name has one, else
    IPv6; "4" or "6" only that family. A name that fails, has no address of the family, or is still
    unresolved after timeout_s in total, gets an error. `lookup` is the system resolver (one query
    for both families).
    """
    distinct = list(dict.fromkeys(names))
    results: dict[str, Resolution] = {}
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    lookups = 0
    for name in distinct:
        if ip_version(name) is None:
            pending.put(name)
            lookups += 1
        elif choose_address([name], family) is None:
            results[name] = Resolution(None, f"not an IPv{family} address ({name})")
        else:
            results[name] = Resolution(name, None)
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
            resolution = _resolve(name, family, lookup)
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


def _resolve(name: str, family: str, lookup: Callable[[str], list[str]]) -> Resolution:
    started = time.monotonic()
    try:
        addresses = lookup(name)
    except socket.gaierror as exc:
        return Resolution(None, f"DNS: {dns_problem(exc)} ({name})")
    except UnicodeError:
        return Resolution(None, f"DNS: invalid name ({name})")
    log.debug("resolved %s in %.3f s", name, time.monotonic() - started)
    address = choose_address(addresses, family)
    if address is None:
        wanted = "IP" if family == AUTO else f"IPv{family}"
        return Resolution(None, f"DNS: no {wanted} address ({name})")
    return Resolution(address, None)
