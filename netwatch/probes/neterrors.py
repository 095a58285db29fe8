"""Short reasons for what went wrong on the network: one wording for the sweep's resolver and the service checks."""

from __future__ import annotations

import errno
import socket

_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EHOSTDOWN: "host down",
    errno.EADDRNOTAVAIL: "address not available",
}


def dns_problem(exc: socket.gaierror) -> str:
    """What a failed name lookup says, in a few words ("name does not resolve", "temporary failure")."""
    if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
        return "name does not resolve"
    if exc.errno == socket.EAI_AGAIN:
        return "temporary failure"
    return str(exc.strerror or exc).lower()


def connect_problem(exc: OSError) -> str:
    """The reason of a connection that did not open: a DNS error, refused, unreachable, or the system's text.

    A timeout is the caller's to word (it knows how long it waited).
    """
    if isinstance(exc, socket.gaierror):
        return f"DNS error: {dns_problem(exc)}"
    if exc.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[exc.errno]
    return f"connection error: {(exc.strerror or type(exc).__name__).lower()}"
