"""Test hosts in Linux network namespaces, for real ICMP tests (needs root and ``ip netns``).

Each host is its own namespace joined to this one by a veth pair on a private /29 taken from
169.254.100.0-169.254.199.255 (169.254.169.0/24 is skipped) and a unique-local IPv6 /64 of a /48
of this process's (fd6e:77xx:xxxx::/48, from the pid). ``netns_lab(prefix, family=6)`` returns the
hosts' IPv6 addresses (added with ``nodad``: usable at once, no duplicate address detection to wait
for) instead of their IPv4 ones; everything below works the same for both. Usage::

    from netns import netns_lab, requires_netns

    @requires_netns
    def test_something() -> None:
        with netns_lab("nwt") as lab:
            up = lab.add_live()                  # the kernel answers echo requests
            quiet = lab.add_silent()             # echo requests are ignored
            late = lab.add_slow(delay_s=1.5)     # answers, but only after delay_s
            forged = lab.add_forger("token")     # answers at once, with a wrong token (or sequence,
                                                 # identifier, or from another address: "source")
            icmp = lab.add_unreachable()         # a router answers "host unreachable (ICMP 3/1)"
                                                 # (IPv6: "no route to destination (ICMPv6 1/0)")
            dead = lab.add_unroutable()          # sendto() fails: "No route to host"
            lab.set_down(up)                     # host offline (its link goes down)
            lab.set_up(up)                       # and back online

Every address returned is the one to ping. Leaving the ``with`` block removes every namespace,
veth pair, route and helper process the lab created, also when the test failed.

A lab hangs off this process's namespace, or off another one: ``netns_lab("nwt", home=name)``
with a namespace of ``pinging_namespace()``, which lets datagram ICMP sockets be opened (it sets
``net.ipv4.ping_group_range``, a per-namespace setting, where this namespace may forbid them).
``run_in_namespace(name, fn)`` calls ``fn`` in a thread that has joined the namespace, so every
socket ``fn`` opens belongs to it.
Run as a script, this module is the echo responder that ``add_slow`` and ``add_forger`` start.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

_POOL_START = int(ipaddress.IPv4Address("169.254.100.0"))
_POOL_BLOCKS = 100 * 32  # /29 blocks in 169.254.100.0 - 169.254.199.255
_SAFETY_METRIC = 4242
_RESPONDER_MAX_S = 900.0
_CLONE_NEWNET = 0x40000000
FORGERIES = ("none", "token", "sequence", "identifier", "source")
ALL_GROUPS = "0 2147483647"  # a ping_group_range that lets every group open datagram ICMP sockets
NO_GROUP = "1 0"  # the kernel's default: none may

T = TypeVar("T")


def netns_unavailable_reason() -> str | None:
    """Why network-namespace hosts cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "netns test hosts need root"
    if shutil.which("ip") is None:
        return "netns test hosts need the `ip` command (iproute2)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


requires_netns = pytest.mark.netns
"""Marks a test that builds a lab (it is the ``netns`` marker): tests/conftest.py skips it with
netns_unavailable_reason(), or fails it when NETWATCH_REQUIRE_NETNS=1 (set by .ci/run)."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _sysctl(namespace: str, key: str, value: str) -> None:
    _ip("netns", "exec", namespace, "sysctl", "-q", "-w", f"{key}={value}")


def _in(home: str | None) -> list[str]:
    """The `ip` options that act on namespace `home` (None: this process's)."""
    return [] if home is None else ["-n", home]


@contextmanager
def pinging_namespace(prefix: str, ping_group_range: str = ALL_GROUPS) -> Iterator[str]:
    """A new network namespace with its loopback up and `ping_group_range` set; yields its name."""
    name = f"{prefix}-{os.getpid()}-home"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _sysctl(name, "net.ipv4.ping_group_range", ping_group_range)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


def run_in_namespace(namespace: str, call: Callable[[], T]) -> T:
    """`call()` in a thread that joined `namespace` (setns), its result or its exception passed on."""
    outcome: dict[str, Any] = {}

    def joined() -> None:
        try:
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            finally:
                os.close(fd)
            outcome["result"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=joined, name=f"in-{namespace}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _used_networks(home: str | None) -> list[ipaddress.IPv4Network]:
    output = subprocess.run(
        ["ip", *_in(home), "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    used = [ipaddress.IPv4Interface(line.split()[3]).network for line in output.splitlines()]
    routes = subprocess.run(["ip", *_in(home), "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True, timeout=10, check=True).stdout
    for line in routes.splitlines():
        words = line.split()
        if not words:
            continue
        destination = words[1] if words and words[0] in {"unreachable", "blackhole", "prohibit"} else words[0]
        if destination[:1].isdigit():
            used.append(ipaddress.IPv4Network(destination, strict=False))
    return used


@dataclass
class _Host:
    kind: str
    namespace: str
    host_link: str
    peer_link: str
    address: str  # of the lab's family: the one to ping
    subnet: int  # number of its /64 in the lab's /48
    responder: subprocess.Popen[str] | None = None


def _ula_48() -> ipaddress.IPv6Network:
    """This process's unique-local /48: distinct pids, distinct prefixes."""
    pid = os.getpid() & 0xFFFFFF
    return ipaddress.IPv6Network((0xFD6E77 << 104 | pid << 80, 48))


@dataclass
class NetnsLab:
    """Test hosts in network namespaces; build one with ``netns_lab()``.

    `home`: the namespace the hosts hang off (None: this process's).
    """

    prefix: str
    home: str | None = None
    family: int = 4
    _hosts: list[_Host] = field(default_factory=list)
    _routes: list[list[str]] = field(default_factory=list)
    _block_cursor: int = 0

    def add_live(self) -> str:
        """A host whose kernel answers echo requests at once; returns its address."""
        return self._add_host("live").address

    def add_silent(self) -> str:
        """A reachable host that ignores echo requests (no reply, no error)."""
        host = self._add_host("silent")
        _sysctl(host.namespace, self._echo_ignore_all, "1")
        return host.address

    @property
    def _echo_ignore_all(self) -> str:
        return "net.ipv4.icmp_echo_ignore_all" if self.family == 4 else "net.ipv6.icmp.echo_ignore_all"

    def _subnet(self, number: int) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network((int(_ula_48().network_address) | number << 64, 64))

    def add_slow(self, delay_s: float) -> str:
        """A host that answers every echo request only after delay_s seconds."""
        return self._add_responder("slow", delay_s, "none")

    def add_forger(self, change: str) -> str:
        """A host that answers every echo request at once, but with one thing changed.

        `change`: "token" (a byte of the payload's first 8, the sweep's token), "sequence" (+1),
        "identifier" (inverted), "source" (the reply comes from another address of the host), or
        "none" (a faithful reply, for comparison).
        """
        if change not in FORGERIES:
            raise ValueError(f"unknown change {change!r}")
        return self._add_responder(f"forger-{change}", 0.0, change)

    def _add_responder(self, kind: str, delay_s: float, change: str) -> str:
        host = self._add_host(kind)
        _sysctl(host.namespace, self._echo_ignore_all, "1")
        reply_from = str(ipaddress.ip_address(host.address) + 1)
        length, extra = ("29", []) if self.family == 4 else ("64", ["nodad"])
        _ip("-n", host.namespace, "addr", "add", f"{reply_from}/{length}", "dev", host.peer_link, *extra)
        host.responder = subprocess.Popen(
            ["ip", "netns", "exec", host.namespace, sys.executable, os.path.abspath(__file__),
             str(delay_s), change, reply_from, host.address],
            stdout=subprocess.PIPE, text=True,
        )
        ready, _, _ = select.select([host.responder.stdout], [], [], 10.0)
        line = host.responder.stdout.readline() if ready and host.responder.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError(f"echo responder in {host.namespace} did not start")
        return host.address

    def add_unreachable(self) -> str:
        """An address behind a router namespace that answers ICMP host unreachable (3/1)."""
        router = self._add_host("router")
        if self.family == 6:
            _sysctl(router.namespace, "net.ipv6.conf.all.forwarding", "1")
            _sysctl(router.namespace, "net.ipv6.icmp.ratelimit", "0")
            # In another /64 (the router's own is on its link): reached only through the router.
            behind = str(self._subnet(0x8000 + router.subnet).network_address + 4)
            _ip("-n", router.namespace, "-6", "route", "add", "unreachable", f"{behind}/128")
            self._add_route(["-6", "route", "add", f"{behind}/128", "via", router.address])
            return behind
        _sysctl(router.namespace, "net.ipv4.ip_forward", "1")
        _sysctl(router.namespace, "net.ipv4.icmp_ratelimit", "0")
        behind = str(ipaddress.IPv4Address(router.address) + 4)
        _ip("-n", router.namespace, "route", "add", "unreachable", f"{behind}/32")
        self._add_route(["route", "add", f"{behind}/32", "via", router.address])
        return behind

    def add_unroutable(self) -> str:
        """An address with an `unreachable` route here, so sendto() fails with EHOSTUNREACH."""
        block = self._next_block()
        if self.family == 6:
            address6 = str(self._subnet(0xC000 + self._block_cursor).network_address + 2)
            self._add_route(["-6", "route", "add", "unreachable", f"{address6}/128"])
            return address6
        address = str(block.network_address + 2)
        self._add_route(["route", "add", "unreachable", f"{address}/32"])
        self._add_route(["route", "add", "unreachable", str(block), "metric", str(_SAFETY_METRIC)])
        return address

    def set_down(self, address: str) -> None:
        """Takes a host offline: its namespace-side link goes down (no reply, no error)."""
        host = self._host(address)
        _ip("-n", host.namespace, "link", "set", host.peer_link, "down")

    def set_up(self, address: str) -> None:
        """Brings a host taken down by set_down() back online."""
        host = self._host(address)
        _ip("-n", host.namespace, "link", "set", host.peer_link, "up")
        self._route_home(host)
        # A neighbour entry that failed while the host was down would drop the next requests.
        subprocess.run(["ip", *_in(self.home), "neigh", "flush", "dev", host.host_link], capture_output=True,
                       timeout=10, check=False)
        self._wait_until_up(host)

    def _wait_until_up(self, host: _Host) -> None:
        """Waits (bounded) until both ends of the host's link work.

        The kernel's link watcher turns a carrier change into a working link up to 1 s later; until
        then requests or replies are dropped.
        """
        deadline = time.monotonic() + 10.0
        for where, link in ((_in(self.home), host.host_link), (["-n", host.namespace], host.peer_link)):
            while True:
                shown = subprocess.run(["ip", *where, "-o", "link", "show", "dev", link], capture_output=True,
                                       text=True, timeout=10, check=True).stdout
                if " state UP " in shown:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{link} did not come up: {shown.strip()}")
                time.sleep(0.01)

    def close(self) -> None:
        """Removes everything the lab created; safe to call twice."""
        for host in self._hosts:
            if host.responder is not None:
                host.responder.terminate()
                try:
                    host.responder.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    host.responder.kill()
                    host.responder.wait(timeout=5)
                if host.responder.stdout:
                    host.responder.stdout.close()
            # Deleting the veth here is synchronous; leaving it to the namespace deletion is not.
            subprocess.run(["ip", *_in(self.home), "link", "del", host.host_link], capture_output=True, timeout=10,
                           check=False)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, timeout=10,
                           check=False)
        for route in reversed(self._routes):
            subprocess.run(["ip", *_in(self.home), *route], capture_output=True, timeout=10, check=False)
        self._hosts.clear()
        self._routes.clear()

    def _host(self, address: str) -> _Host:
        for host in self._hosts:
            if host.address == address and host.kind != "router":
                return host
        raise KeyError(f"no lab host with address {address}")

    def _add_route(self, add: list[str]) -> None:
        _ip(*_in(self.home), *add)
        verb = add.index("add")
        self._routes.append([*add[:verb], "del", *add[verb + 1 :]])

    def _next_block(self) -> ipaddress.IPv4Network:
        used = _used_networks(self.home)
        start = (os.getpid() * 37) % _POOL_BLOCKS
        while self._block_cursor < _POOL_BLOCKS:
            number = (start + self._block_cursor) % _POOL_BLOCKS
            self._block_cursor += 1
            block = ipaddress.IPv4Network((_POOL_START + number * 8, 29))
            if block.network_address.packed[2] == 169:
                continue
            if not any(block.overlaps(network) for network in used):
                return block
        raise RuntimeError("no free /29 left in 169.254.100.0-169.254.199.255")

    def _add_host(self, kind: str) -> _Host:
        number = len(self._hosts)
        block = self._next_block()
        host_side = block.network_address + 1
        subnet = self._subnet(number)
        host = _Host(
            kind=kind,
            namespace=f"{self.prefix}-{os.getpid()}-{number}",
            host_link=f"nw{os.getpid() % 100000}h{number}",
            peer_link=f"nw{os.getpid() % 100000}n{number}",
            address=str(host_side + 1) if self.family == 4 else str(subnet.network_address + 2),
            subnet=number,
        )
        here = _in(self.home)
        if not self._hosts:
            # Should a veth vanish, traffic to the lab's /48 stops here instead of taking a default route.
            self._add_route(["-6", "route", "add", "unreachable", str(_ula_48()), "metric", str(_SAFETY_METRIC)])
        self._hosts.append(host)
        _ip("netns", "add", host.namespace)
        _ip(*here, "link", "add", host.host_link, "type", "veth", "peer", "name", host.peer_link)
        _ip(*here, "link", "set", host.peer_link, "netns", host.namespace)
        _ip(*here, "addr", "add", f"{host_side}/29", "dev", host.host_link)
        _ip(*here, "link", "set", host.host_link, "up")
        # Should the veth vanish, traffic to the block stops here instead of taking the default route.
        self._add_route(["route", "add", "unreachable", str(block), "metric", str(_SAFETY_METRIC)])
        _ip("-n", host.namespace, "addr", "add", f"{host_side + 1}/29", "dev", host.peer_link)
        # nodad: no duplicate address detection, so the addresses are not "tentative" (unusable) for a second.
        _ip(*here, "addr", "add", f"{subnet.network_address + 1}/64", "dev", host.host_link, "nodad")
        _ip("-n", host.namespace, "addr", "add", f"{subnet.network_address + 2}/64", "dev", host.peer_link, "nodad")
        # Else a link going down (set_down) loses its IPv6 addresses for good.
        _sysctl(host.namespace, f"net.ipv6.conf.{host.peer_link}.keep_addr_on_down", "1")
        _ip("-n", host.namespace, "link", "set", host.peer_link, "up")
        self._route_home(host)
        _ip("-n", host.namespace, "link", "set", "lo", "up")
        self._wait_until_up(host)
        return host

    def _route_home(self, host: _Host) -> None:
        """The host's IPv6 default route, via this side of its link (a link going down removes it)."""
        if self.family == 6:
            _ip("-n", host.namespace, "-6", "route", "replace", "default", "via",
                str(self._subnet(host.subnet).network_address + 1))


@contextmanager
def netns_lab(prefix: str = "nwt", home: str | None = None, family: int = 4) -> Iterator[NetnsLab]:
    """A lab of namespace test hosts (off namespace `home`, None: this one; pinged over IP version
    `family`), removed on exit whatever happened."""
    lab = NetnsLab(prefix, home, family)
    try:
        yield lab
    finally:
        lab.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _forge(request: bytes, change: str, echo_reply: int = 0) -> bytes:
    """The echo reply to `request` (from its ICMP header on), with `change` made, checksum updated
    (an ICMPv6 one's checksum is the kernel's)."""
    identifier, sequence = struct.unpack_from("!HH", request, 4)
    payload = bytearray(request[8:])
    if change == "identifier":
        identifier ^= 0xFFFF
    elif change == "sequence":
        sequence = (sequence + 1) & 0xFFFF
    elif change == "token" and payload:
        payload[0] ^= 0xFF
    reply = struct.pack("!BBHHH", echo_reply, 0, 0, identifier, sequence) + bytes(payload)
    return reply[:2] + struct.pack("!H", _checksum(reply)) + reply[4:]


def _respond(delay_s: float, change: str, reply_from: str, addresses: set[str]) -> None:
    """Answers echo requests to addresses after delay_s (run inside the namespace)."""
    if ":" in reply_from:
        _respond6(delay_s, change, reply_from, *addresses)
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sender = sock
    if change == "source":
        # Bound, a raw socket would see only what is sent to its address: a second one replies.
        sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sender.bind((reply_from, 0))
    due: list[tuple[float, bytes, str]] = []
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop_at = time.monotonic() + _RESPONDER_MAX_S
    while time.monotonic() < stop_at:
        wait = max(0.0, due[0][0] - time.monotonic()) if due else 1.0
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            data, (source, _port) = sock.recvfrom(2048)
            header_len = (data[0] & 0x0F) * 4
            icmp = data[header_len:]
            if socket.inet_ntoa(data[16:20]) in addresses and len(icmp) >= 8 and icmp[0] == 8:
                due.append((time.monotonic() + delay_s, _forge(icmp, change), source))
        while due and due[0][0] <= time.monotonic():
            _, reply, source = due.pop(0)
            sender.sendto(reply, (source, 0))


def _respond6(delay_s: float, change: str, reply_from: str, address: str) -> None:
    """The ICMPv6 responder: a raw ICMPv6 socket reads no IPv6 header, so it is bound to the host's
    address (it then sees only what is sent there, and replies come from there)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.bind((address, 0))
    sender = sock
    if change == "source":
        sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        sender.bind((reply_from, 0))
    due: list[tuple[float, bytes, str]] = []
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop_at = time.monotonic() + _RESPONDER_MAX_S
    while time.monotonic() < stop_at:
        wait = max(0.0, due[0][0] - time.monotonic()) if due else 1.0
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            data, address = sock.recvfrom(2048)
            if len(data) >= 8 and data[0] == 128:
                due.append((time.monotonic() + delay_s, _forge(data, change, 129), address[0]))
        while due and due[0][0] <= time.monotonic():
            _, reply, source = due.pop(0)
            sender.sendto(reply, (source, 0))


if __name__ == "__main__":
    _respond(float(sys.argv[1]), sys.argv[2], sys.argv[3], set(sys.argv[4:]))
