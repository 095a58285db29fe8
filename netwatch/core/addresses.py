"""What kind of address a host has: pure checks on text."""

from __future__ import annotations

import ipaddress


def is_ipv4(text: str) -> bool:
    """True for a dotted IPv4 literal such as 127.0.0.1 (a name or anything else is False)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
