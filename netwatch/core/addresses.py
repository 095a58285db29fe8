"""What kind of address a host has, and which of a name's addresses a sweep pings: pure checks on text."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# `ping.address_family`: which family a name's address is taken from. AUTO takes IPv4 when the name
# has an IPv4 address and IPv6 otherwise; "4" and "6" force one.
AUTO = "auto"
ADDRESS_FAMILIES = (AUTO, "4", "6")


def is_ipv4(text: str) -> bool:
    """True for a dotted IPv4 literal such as 127.0.0.1 (a name or anything else is False)."""
    return ip_version(text) == 4


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of an IP literal; None for a name or anything else, an IPv6 zone index included."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None
    return address


def ip_version(text: str) -> int | None:
    """4 or 6 for an IP literal (an IPv6 one without a %zone), None for a name or anything else."""
    if _is_dotted_quad(text):
        return 4
    address = parse_ip(text)
    return None if address is None else address.version


_DIGITS = frozenset("0123456789")


def _is_dotted_quad(text: str) -> bool:
    """Whether `text` is an IPv4 literal as ipaddress reads one: four ASCII decimal octets up to 255, no
    leading zero. A quarter of ipaddress's cost: a run asks it of every host, three times."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not 0 < len(part) <= 3 or not _DIGITS.issuperset(part) or (part[0] == "0" and part != "0"):
            return False
        if int(part) > 255:
            return False
    return True


def choose_address(addresses: Iterable[str], family: str) -> str | None:
    """The address a sweep pings among a name's `addresses` (in resolver order), or None.

    `family` AUTO: the first IPv4 address, else the first IPv6 one; "4" or "6": the first of that family.
    """
    listed = list(addresses)
    wanted = ("4", "6") if family == AUTO else (family,)
    for version in wanted:
        for address in listed:
            if str(ip_version(address)) == version:
                return address
    return None


def families_of(family: str) -> tuple[int, ...]:
    """The IP versions a sweep under `ping.address_family` `family` may ping."""
    return (4, 6) if family == AUTO else (int(family),)


def families_needed(addresses: Iterable[str], family: str) -> tuple[int, ...]:
    """The IP versions a sweep of hosts with these configured `addresses` may send to (sorted).

    A literal needs its own version; a name any version `family` allows it to resolve to.
    """
    needed: set[int] = set()
    for address in addresses:
        version = ip_version(address)
        needed.update((version,) if version is not None else families_of(family))
    return tuple(sorted(needed))
