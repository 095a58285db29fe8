"""ICMP echo sweep over one socket per address family: many hosts, paced sends, strict reply matching.

IPv4 hosts are pinged over ICMP, IPv6 hosts over ICMPv6, in the same loop and under one rate limit.
Each socket is a datagram ICMP socket (``SOCK_DGRAM``, no privilege needed where
``net.ipv4.ping_group_range`` covers the process's group) or a raw one (root or CAP_NET_RAW);
``require_permission()`` says which one this process may open (the same sysctl governs datagram
ICMPv6 sockets). Requests come from one prebuilt template per socket (netwatch.probes.echo: only
the sequence and the packet index change, the checksum follows incrementally; the kernel computes
it on datagram sockets and for ICMPv6). Replies are matched here on identifier,
sequence, source address and a per-sweep payload token carrying a 32-bit packet index, whatever
the socket, so a reply later than its timeout is counted as lost and never credited to another
request or host (which ``pythonping.ping()`` does). RTTs come from kernel receive timestamps.
Each address is parsed once per sweep (dotted IPv4 by the C parser); the send path builds no object
per packet beyond the request's bytes and its send time, and waits go by the next send, the next
expiry and check_stop(), so replies are read in batches while requests are due.

What differs between the two kinds is confined to the socket's edges: a datagram socket's kernel
sets the echo identifier (the socket's bound "port") and the checksum, delivers only echo replies
carrying that identifier, without their IP header, and hands ICMP errors about the requests to the
socket's error queue (IP_RECVERR, IPV6_RECVERR) instead of the data queue. A raw ICMPv6 socket, unlike a
raw IPv4 one, delivers no IP header either.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import select
import socket
import struct
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import cast

from netwatch.collector import collector_paused
from netwatch.core.addresses import parse_ip
from netwatch.errors import NoPermission
from netwatch.probes.echo import REQUEST, EchoTemplate
from netwatch.probes.replyfilter import INSTRUCTION, echo_reply_filter

log = logging.getLogger(__name__)

RAW = "raw"
DATAGRAM = "datagram"
SOCKET_KINDS = (RAW, DATAGRAM)
AUTO = "auto"  # a preference: datagram where permitted, else raw

IPV4, IPV6 = 4, 6

# Linux constants the socket module does not export.
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
_IPV6_RECVERR = 25
_SO_EE_ORIGIN_ICMP6 = 3
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SO_SNDBUFFORCE = 32
_SO_ATTACH_FILTER = 26
_IP_RECVERR = 11
_SO_EE_ORIGIN_ICMP = 2
_PING_GROUP_RANGE = "/proc/sys/net/ipv4/ping_group_range"

_ECHO_REPLY, _DEST_UNREACHABLE, _ECHO_REQUEST = 0, 3, 8
_ECHO6_REQUEST, _ECHO6_REPLY, _DEST6_UNREACHABLE = 128, 129, 1

_ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence: a request's first 8 bytes
_TIMESPEC = struct.Struct("@ll")
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err: errno, origin, type, code, pad, info, data
_ERROR_ANCILLARY = socket.CMSG_SPACE(_EXTENDED_ERR.size + 16) + socket.CMSG_SPACE(_TIMESPEC.size)
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)

_SOCKET_BUFFER = 8 * 1024 * 1024
_MAX_WAIT_NS = 5_000_000  # longest wait between two check_stop() calls
_EXPIRY_GRACE_NS = 2_000_000  # lets a reply queued right at its deadline be read before expiry
_SECOND_NS = 1_000_000_000
# A late wake-up may be made up for by sending up to this far ahead of schedule: on a busy 2-core machine
# a sweep's wake-ups were 2 to 5 ms late about once in a hundred (each cost its slots at 2 ms).
_CATCH_UP_NS = 5_000_000
_BATCH_NS = 500_000  # requests are sent in bursts of what falls due in this time
_DRAIN_BATCH = 1024
_MAX_DEFERRALS = 1000  # full send buffer: retry a request for about 1 s, then report it
_DEFER_NS = 1_000_000  # how long a request the full send buffer refused waits

_SENT, _DEFERRED, _FAILED = 0, 1, 2  # what became of a request the socket refused at first


@dataclass(frozen=True)
class _Family:
    """What differs between ICMP over IPv4 and ICMPv6 besides the socket kind."""

    number: int
    label: str  # as messages name it
    domain: int
    protocol: int
    any_address: str
    echo_request: int
    echo_reply: int
    unreachable: int
    error_level: int  # of the extended error on a datagram socket's error queue
    error_option: int
    error_origin: int
    unreachable_text: dict[int, str]


_FAMILY = {
    IPV4: _Family(IPV4, "ICMP", socket.AF_INET, socket.IPPROTO_ICMP, "0.0.0.0", _ECHO_REQUEST, _ECHO_REPLY,
                  _DEST_UNREACHABLE, socket.SOL_IP, _IP_RECVERR, _SO_EE_ORIGIN_ICMP, {
                      0: "network unreachable",
                      1: "host unreachable",
                      2: "protocol unreachable",
                      3: "port unreachable",
                      9: "network administratively prohibited",
                      10: "host administratively prohibited",
                      13: "communication administratively prohibited",
                  }),
    IPV6: _Family(IPV6, "ICMPv6", socket.AF_INET6, socket.IPPROTO_ICMPV6, "::", _ECHO6_REQUEST, _ECHO6_REPLY,
                  _DEST6_UNREACHABLE, socket.IPPROTO_IPV6, _IPV6_RECVERR, _SO_EE_ORIGIN_ICMP6, {
                      0: "no route to destination",
                      1: "communication administratively prohibited",
                      2: "beyond scope of source address",
                      3: "address unreachable",
                      4: "port unreachable",
                      5: "source address failed ingress/egress policy",
                      6: "reject route to destination",
                  }),
}


@dataclass(frozen=True)
class PingSettings:
    count: int  # echo requests per check
    interval_s: float  # gap between two requests to the same host
    timeout_s: float  # per request; a reply later than this is LOST (never credited elsewhere)
    retries: int  # extra whole checks for a host whose check got no reply at all
    rate_pps: int  # max packets per second over the whole sweep (all hosts together)
    socket: str = RAW  # RAW or DATAGRAM: the kind require_permission() found this process may open


@dataclass(frozen=True)
class Target:
    key: str  # unique within a sweep (the host name)
    address: str  # IPv4 or IPv6 literal, already resolved


@dataclass(frozen=True)
class ProbeResult:
    sent: int  # requests the kernel accepted in the attempt reported
    received: int  # matching replies within timeout
    rtts_ms: tuple[float, ...]  # one per reply received, from kernel receive timestamps
    attempts: int  # 1 + retries used
    error: str | None  # None when any reply came; else a short reason


class Pacer:
    """When the next packet may go: never more than `rate_pps` packets in any window of 1 s.

    A generic cell rate algorithm (virtual scheduling). Packets are due every `interval_ns`; a
    sender that woke up late may send up to `tolerance_ns` ahead of that schedule to make up for
    it, so at most ``tolerance_ns // interval_ns + 1`` packets ever go back to back. Any k + 1
    packets span at least ``k * interval_ns - tolerance_ns``; the interval is stretched by
    tolerance / rate so that this is at least 1 s for k = rate_pps, at a cost of tolerance / 1 s
    of throughput (0.5 % with the default). The bound holds for the moments the packets really
    left as long as each is booked with a time read after its send returned: a sender delayed
    between its check and its send is not credited the delay. Times are integer nanoseconds of
    one monotonic clock, passed in: no I/O, no rounding drift.
    """

    def __init__(self, rate_pps: int, start_ns: int, tolerance_ns: int = _CATCH_UP_NS) -> None:
        if rate_pps < 1 or tolerance_ns < 0:
            raise ValueError(f"invalid pacing: {rate_pps} packets/s, tolerance {tolerance_ns} ns")
        self.tolerance_ns = tolerance_ns
        self.interval_ns = -(-(_SECOND_NS + tolerance_ns) // rate_pps)  # rounded up: never faster
        # Due time of the next packet; starting it one tolerance ahead gives no burst at the start.
        self._due_ns = start_ns + tolerance_ns

    def next_ns(self) -> int:
        """The earliest time the next packet may go."""
        return self._due_ns - self.tolerance_ns

    def ready(self, now_ns: int) -> bool:
        """Whether a packet may go at `now_ns`."""
        return now_ns >= self.next_ns()

    def book(self, sent_ns: int) -> int:
        """Accounts for one packet sent no later than `sent_ns` (read after the send returned).

        Returns the earliest time the next packet may go, as next_ns() would.
        """
        self._due_ns = max(self._due_ns, sent_ns) + self.interval_ns
        return self._due_ns - self.tolerance_ns


class _Host:
    """Mutable state of one target during a sweep."""

    __slots__ = (
        "address",
        "attempt",
        "channel",
        "deferrals",
        "due_ns",
        "index",
        "key",
        "last_send_ns",
        "next_round",
        "outstanding",
        "packed",
        "received",
        "rtts",
        "send_error",
        "sent",
        "sockaddr",
        "unreachable",
    )

    def __init__(self, index: int, key: str, address: str, packed: bytes, channel: _Channel) -> None:
        self.index = index  # of its target: breaks ties between equal due times
        self.key = key
        self.address = address  # as the kernel spells a reply's source (compared first: cheaper)
        self.packed = packed  # replies and errors are matched on it, whatever the text's spelling
        self.sockaddr = (address, 0)
        self.channel = channel  # the socket (one per address family) it is pinged over
        self.attempt = 1
        self.last_send_ns = 0
        self.due_ns = 0  # when its next request may go, while it waits in a queue
        self.deferrals = 0
        self.reset()

    def reset(self) -> None:
        self.next_round = 0
        self.outstanding = 0
        self.sent = 0
        self.received = 0
        self.rtts: list[float] = []
        self.send_error: str | None = None
        self.unreachable: str | None = None

    def result(self) -> ProbeResult:
        error = None
        if self.received == 0:
            error = self.unreachable or self.send_error or "no reply"
        return ProbeResult(self.sent, self.received, tuple(self.rtts), self.attempt, error)


def sweep(
    targets: Sequence[Target],
    settings: PingSettings,
    check_stop: Callable[[], None] = lambda: None,
) -> dict[str, ProbeResult]:
    """Pings every target, IPv4 and IPv6 ones in the same pass; returns a result for every key.

    Raises NoPermission when a socket of `settings.socket` cannot be opened. Each family's socket
    opens as its first host's request goes, so the other family's requests may have gone out by
    then. A family this kernel lacks fails its hosts' checks only. `check_stop` is called between
    sends and waits and may raise (the run's Stopped, naming its signal); the sockets are closed
    in all cases.
    """
    _check_settings(settings)
    # In target order from the start: each check's result takes its key's place when the check ends.
    results: dict[str, ProbeResult | None] = dict.fromkeys(t.key for t in targets)
    if len(results) != len(targets):
        raise ValueError("target keys must be unique within a sweep")
    # A sweep makes a few objects per host and per packet and no cycles: a collection, which would
    # walk every one of them, only delays the sends and replies of its moment.
    with collector_paused(), ExitStack() as stack:
        started = time.monotonic()
        engine = _Sweep(stack, targets, settings, check_stop, results)
        engine.run()
        log.debug("swept %d hosts, %d requests, over %d %s ICMP sockets, in %.3f s", engine.begun,
                  len(engine.packet_host), len(engine.channels), settings.socket, time.monotonic() - started)
    # No None left: the engine ran until no target was without its result.
    return cast("dict[str, ProbeResult]", results)


def _parse_address(text: str) -> tuple[int, str, bytes] | None:
    """A target's IP version, canonical text and packed bytes, parsed once; None when not an IP literal.

    Dotted IPv4 literals, nearly all of a sweep, take the C parser, which accepts exactly the texts
    parse_ip does (four decimal octets up to 255, no leading zero), and they are already canonical.
    """
    try:
        return IPV4, text, socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):
        address = parse_ip(text)
    if address is None:
        return None
    return address.version, str(address), address.packed


def _check_settings(settings: PingSettings) -> None:
    if settings.count < 1 or settings.rate_pps < 1 or settings.retries < 0:
        raise ValueError(f"invalid ping settings: {settings}")
    if settings.interval_s < 0 or settings.timeout_s <= 0 or settings.socket not in SOCKET_KINDS:
        raise ValueError(f"invalid ping settings: {settings}")


def require_permission(preference: str = AUTO, families: Sequence[int] = (IPV4,)) -> str:
    """The ICMP socket kind sweeps of this process will use, found by opening one per family now.

    `preference` AUTO takes DATAGRAM where permitted (it needs no privilege) and RAW otherwise; RAW
    or DATAGRAM forces that kind. A kind is permitted when every one of `families` (IPV4, IPV6) the
    kernel supports may open it. Raises NoPermission, before any other work, when none is
    permitted: its one line names both ways to grant it.
    """
    if preference not in (AUTO, *SOCKET_KINDS):
        raise ValueError(f"unknown ICMP socket preference: {preference!r}")
    for kind in (DATAGRAM, RAW) if preference == AUTO else (preference,):
        if all(_permitted(kind, _FAMILY[number]) for number in families):
            return kind
    raise NoPermission(_permission_problem(preference, configured=True))


def _permitted(kind: str, family: _Family) -> bool:
    try:
        _open_socket(kind, family).close()
    except PermissionError:
        return False
    except OSError as exc:
        if exc.errno != errno.EAFNOSUPPORT or family.number == IPV4:
            raise
        # No IPv6 in this kernel: its hosts fail their checks, the others need no such socket.
    return True


def _permission_problem(kind: str, configured: bool) -> str:
    """The one line of a refused ICMP socket: what was refused and both ways to grant one.

    `kind`: AUTO (both refused) or the kind refused; `configured`: whether ping.socket asked for it.
    """
    try:
        with open(_PING_GROUP_RANGE, encoding="ascii") as file:
            now = " ".join(file.read().split())
    except OSError:
        now = "unreadable"
    what = "an ICMP socket" if kind == AUTO else f"a {kind} ICMP socket"
    if configured and kind != AUTO:
        what += f" (ping.socket: {kind})"
    return (f"no permission for {what}: raw sockets need root or CAP_NET_RAW, datagram sockets need "
            f"net.ipv4.ping_group_range to cover group {os.getegid()} (it is \"{now}\")")


def _open_socket(kind: str, family: _Family = _FAMILY[IPV4]) -> socket.socket:
    """A non-blocking ICMP socket of `kind` and `family` with kernel timestamps; PermissionError when refused."""
    raw = kind == RAW
    sock = socket.socket(family.domain, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, family.protocol)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        _set_buffer(sock, _SO_RCVBUFFORCE, socket.SO_RCVBUF)
        _set_buffer(sock, _SO_SNDBUFFORCE, socket.SO_SNDBUF)
        if raw and family.number == IPV4:
            # Let the kernel drop everything but echo replies and unreachables (on loopback the
            # socket would otherwise also queue our own requests); matching below does not rely on it.
            blocked = ~((1 << _ECHO_REPLY) | (1 << _DEST_UNREACHABLE)) & 0xFFFFFFFF
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", blocked))
        elif raw:
            # The same for ICMPv6 (a raw one sees every ICMPv6 message, neighbour discovery too):
            # struct icmp6_filter, 256 bits, a set bit blocks its type.
            words = [0xFFFFFFFF] * 8
            for passed in (_ECHO6_REPLY, _DEST6_UNREACHABLE):
                words[passed >> 5] &= ~(1 << (passed & 31)) & 0xFFFFFFFF
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))
        else:
            # Bound now, the kernel's choice of echo identifier (the socket's port) is known at once.
            sock.bind((family.any_address, 0))
            # Without it the kernel drops ICMP errors about the requests of an unconnected socket.
            sock.setsockopt(family.error_level, family.error_option, 1)
    except OSError:
        sock.close()
        raise
    return sock


def _set_buffer(sock: socket.socket, forced: int, plain: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, forced, _SOCKET_BUFFER)
    except PermissionError:
        # Without CAP_NET_ADMIN the size is capped by net.core.[rw]mem_max.
        sock.setsockopt(socket.SOL_SOCKET, plain, _SOCKET_BUFFER)


def _packed(family: _Family, address: str) -> bytes:
    """An address the kernel reported, as bytes (a link-local IPv6 one's %zone left off: no target has one)."""
    return socket.inet_pton(family.domain, address.partition("%")[0])


class _Channel:
    """One socket of a sweep, the template of its requests and what its replies are matched on."""

    __slots__ = ("family", "identifier", "ip_header", "raw", "request", "sendto", "sock")

    def __init__(self, family: _Family, sock: socket.socket, raw: bool, token: bytes) -> None:
        self.family = family
        self.sock = sock
        self.sendto = sock.sendto
        self.raw = raw
        # A raw socket's IPv4 replies start with the IP header; its ICMPv6 ones and a datagram socket's do not.
        self.ip_header = raw and family.number == IPV4
        # A datagram socket's kernel writes the socket's bound port as the identifier (as we do here).
        self.identifier = int.from_bytes(os.urandom(2), "big") if raw else sock.getsockname()[1]
        # The checksum is ours only on a raw IPv4 socket; the kernel computes the others'.
        self.request = EchoTemplate(family.echo_request, self.identifier, token, checksummed=self.ip_header).request
        if raw:
            # A raw socket is handed every echo reply on the host: the kernel drops other pingers' for us.
            # (A datagram socket's kernel delivers only its own identifier's already.)
            _attach_filter(sock, echo_reply_filter(family.echo_reply, self.identifier, self.ip_header))


def _attach_filter(sock: socket.socket, program: bytes) -> None:
    """Attaches a classic BPF program, an array of struct sock_filter, to `sock`, if the kernel takes it.

    The filter only saves work: replies are matched on identifier, token, sequence and source all
    the same. So a refusal (a kernel without socket filters, a limit on their size) is no failure.
    """
    instructions = array("B", program)
    # struct sock_fprog: the number of instructions and their address; the kernel copies them at once.
    fprog = struct.pack("@HP", len(program) // INSTRUCTION.size, instructions.buffer_info()[0])
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        log.debug("the kernel refused the echo reply filter (%s): every echo reply on the host reaches "
                  "the sweep's socket", exc.strerror or exc)


class _Sweep:
    """One run of the send/receive loop over one socket per address family.

    Times are integer nanoseconds of the monotonic clock. Every first request is due at the start
    and goes first, its host made of its target just before (see _begin_next). Later requests wait
    in two queues: `rounds`, a FIFO of every host's next request, already in due order (each is due
    one interval after the host's previous send, and sends go out in time order), and `later`, a
    heap of the few whose due time breaks that order (retries, requests a full send buffer
    deferred). A packet's timeout is the same for all, so packets expire in the order they were
    sent. Per packet the engine keeps its host (None once answered or expired) and its send time,
    nothing else.
    """

    def __init__(
        self,
        stack: ExitStack,
        targets: Sequence[Target],
        settings: PingSettings,
        check_stop: Callable[[], None],
        results: dict[str, ProbeResult | None],
    ) -> None:
        self.stack = stack  # closes the sockets
        # One token and one packet numbering for all sockets: a reply is credited only to the request it echoes.
        self.token = os.urandom(8)
        # Each target is parsed, and its socket opened, as its first request goes: what that costs
        # for a whole sweep is spread over the waits of its first round, not spent before any send.
        self.fresh = iter(enumerate(targets))
        self.beginning = True  # until every target is begun
        self.begun = 0  # hosts made of targets so far
        self.by_family: dict[int, _Channel | str] = {}  # its socket, or why its hosts fail
        self.channels: list[_Channel] = []
        self.socks: list[socket.socket] = []
        self.settings = settings
        self.check_stop = check_stop
        self.count = settings.count
        self.interval_ns = int(settings.interval_s * 1e9)
        self.timeout_ns = int(settings.timeout_s * 1e9)
        self.active = len(targets)  # targets without their result yet
        self.results = results  # each target's, made as its last check ends
        # A host's next request, in due order; every first request goes before (see _begin_next).
        self.rounds: deque[_Host] = deque()
        self.later: list[tuple[int, int, _Host]] = []  # (due, host index, host)
        self.packet_host: list[_Host | None] = []
        # Monotonic, read before the send; a reply's kernel timestamp (CLOCK_REALTIME) is brought
        # onto this clock by the offset between the two clocks, read once per pass of the loop.
        self.packet_sent_ns: list[int] = []
        self.unexpired = 0  # packets before this index are answered or expired

    def _begin_next(self) -> _Host | None:
        """The host of the next target that has an address and a socket; None once all are begun.

        All first requests are due at the start, so they go before any host's second; a target
        that cannot be pinged gets its result here. Raises NoPermission when a socket is refused.
        """
        for index, target in self.fresh:
            parsed = _parse_address(target.address)
            if parsed is None:
                error = f"invalid IP address: {target.address!r}"
            else:
                number, text, packed = parsed
                channel = self.by_family.get(number)
                if channel is None:
                    channel = self.by_family[number] = self._open_channel(_FAMILY[number])
                if isinstance(channel, _Channel):
                    self.begun += 1
                    return _Host(index, target.key, text, packed, channel)
                error = channel
            self.results[target.key] = ProbeResult(0, 0, (), 1, error)
            self.active -= 1
        self.beginning = False
        return None

    def _open_channel(self, family: _Family) -> _Channel | str:
        """The socket of one address family; or why its hosts fail, when the kernel refuses it."""
        kind = self.settings.socket
        try:
            sock = self.stack.enter_context(_open_socket(kind, family))
        except PermissionError:
            raise NoPermission(_permission_problem(kind, configured=False)) from None
        except OSError as exc:
            return f"no {family.label} socket: {exc.strerror or exc}"
        channel = _Channel(family, sock, kind == RAW, self.token)
        self.channels.append(channel)
        self.socks.append(sock)
        return channel

    def run(self) -> None:
        monotonic_ns, realtime_ns = time.monotonic_ns, time.time_ns
        check_stop, drain, expire = self.check_stop, self._drain, self._expire
        rounds, later, channels = self.rounds, self.later, self.channels
        packet_host, packet_sent_ns = self.packet_host, self.packet_sent_ns
        count, interval_ns = self.count, self.interval_ns
        begin_next = self._begin_next
        now_ns = monotonic_ns()
        # One pacer for every socket: the rate limit is the sweep's, whatever the families.
        pacer = Pacer(self.settings.rate_pps, now_ns)
        book = pacer.book
        next_slot_ns = pacer.next_ns()
        while self.active:
            check_stop()
            offset_ns = realtime_ns() - monotonic_ns()
            now_ns = monotonic_ns()
            beginning = self.beginning
            while now_ns >= next_slot_ns:
                if beginning:
                    host = begin_next()
                    if host is None:
                        beginning = False
                        continue
                elif later and (not rounds or later[0][0] < rounds[0].due_ns):
                    if later[0][0] > now_ns:
                        break
                    host = heapq.heappop(later)[2]
                elif rounds and rounds[0].due_ns <= now_ns:
                    host = rounds.popleft()
                else:
                    break
                channel = host.channel
                index = len(packet_host)
                packet = channel.request(index)
                try:
                    channel.sendto(packet, host.sockaddr)
                    outcome = _SENT
                except OSError as exc:
                    outcome = self._send_again(channel, packet, host, exc)
                if outcome == _DEFERRED:
                    host.due_ns = now_ns + _DEFER_NS
                    heapq.heappush(later, (host.due_ns, host.index, host))
                else:
                    if outcome == _SENT:
                        packet_host.append(host)
                        packet_sent_ns.append(now_ns)
                        host.sent += 1
                        host.outstanding += 1
                    host.last_send_ns = now_ns
                    host.next_round += 1
                    if host.next_round < count:
                        host.due_ns = now_ns + interval_ns
                        rounds.append(host)
                    elif host.outstanding == 0:
                        self._finish_check(host, now_ns)
                now_ns = monotonic_ns()
                # Booked even when a full send buffer refused the request: that can only lower the rate.
                next_slot_ns = book(now_ns)
            for channel in channels:
                drain(channel, offset_ns, now_ns)
            expire(now_ns)
            if self.active:  # not after the last answer or expiry: the sweep is done then
                self._wait(next_slot_ns)

    def _send_again(self, channel: _Channel, packet: bytes, host: _Host, exc: OSError) -> int:
        """After a refused send: _SENT when a retry sent it, _DEFERRED to try later, else _FAILED.

        _FAILED sets the host's send_error.
        """
        if not isinstance(exc, (BlockingIOError, InterruptedError)) and not channel.raw:
            # An ICMP error about any earlier request also fails a datagram socket's next send or
            # receive, once (IP_RECVERR sets the socket error): only a failure the retry repeats
            # belongs to this request.
            try:
                channel.sendto(packet, host.sockaddr)
                return _SENT
            except OSError as again:
                exc = again
        if isinstance(exc, (BlockingIOError, InterruptedError)):
            host.deferrals += 1
            if host.deferrals <= _MAX_DEFERRALS:
                return _DEFERRED
            host.send_error = "send failed: socket send buffer full"
        else:
            host.send_error = f"send failed: {exc.strerror or exc}"
        return _FAILED

    def _wait(self, next_slot_ns: int) -> None:
        """Sleeps until the next send, expiry or check_stop() call, whichever is first.

        Replies may wait in the socket's queue while a send is due first: their RTTs come from
        kernel timestamps, and the next pass reads them before it expires anything. Only a wait
        with nothing to send before it ends also wakes up for a reply.
        """
        now_ns = time.monotonic_ns()
        wake_ns = now_ns + _MAX_WAIT_NS
        send_ns = wake_ns + 1
        if self.beginning:
            send_ns = now_ns
        elif self.rounds:
            send_ns = self.rounds[0].due_ns
        if self.later:
            send_ns = min(send_ns, self.later[0][0])
        send_ns = max(send_ns, next_slot_ns)
        if self.unexpired < len(self.packet_sent_ns):
            wake_ns = min(wake_ns, self.packet_sent_ns[self.unexpired] + self.timeout_ns + _EXPIRY_GRACE_NS)
        if send_ns <= wake_ns:
            # A send due sooner than one batch waits for the batch: the pacer lets the packets due meanwhile
            # go back to back, and the pass's fixed cost (a wake-up, a read of each socket) is shared by them.
            wake_ns = min(wake_ns, max(send_ns, now_ns + _BATCH_NS))
            if wake_ns > now_ns:
                time.sleep((wake_ns - now_ns) / 1e9)
        elif wake_ns > now_ns:
            select.select(self.socks, [], [], (wake_ns - now_ns) / 1e9)

    def _drain(self, channel: _Channel, offset_ns: int, now_ns: int) -> None:
        """Reads what one socket queued: echo replies matched to their requests, ICMP errors.

        `offset_ns`: CLOCK_REALTIME minus the monotonic clock; `now_ns`: monotonic, of this pass.
        """
        if not channel.raw:
            self._drain_errors(channel, now_ns)
        recvmsg = channel.sock.recvmsg
        unpack_from = REQUEST.unpack_from
        family = channel.family
        ip_header, reply_type, unreachable = channel.ip_header, family.echo_reply, family.unreachable
        identifier, token = channel.identifier, self.token
        packet_host, packet_sent_ns = self.packet_host, self.packet_sent_ns
        timeout_ns, count = self.timeout_ns, self.count
        sent = len(packet_host)
        for _ in range(_DRAIN_BATCH):
            try:
                data, ancdata, _flags, source = recvmsg(2048, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                if channel.raw:
                    raise
                continue  # the socket error an ICMP error set (see _send_again); the error queue has its details
            start = (data[0] & 0x0F) * 4 if ip_header and data else 0
            if len(data) < start + REQUEST.size:
                if len(data) >= start + _ICMP_HEADER.size and data[start] == unreachable:
                    self._handle_unreachable(channel, data[start + 1], data[start + _ICMP_HEADER.size :], now_ns)
                continue
            kind, _code, _checksum, echoed_identifier, sequence, echoed_token, index = unpack_from(data, start)
            if kind != reply_type:
                if kind == unreachable:
                    self._handle_unreachable(channel, data[start + 1], data[start + _ICMP_HEADER.size :], now_ns)
                continue
            # The request it echoes: identifier, token, index and sequence all ours, still pending, same socket.
            if echoed_identifier != identifier or echoed_token != token or index >= sent or index & 0xFFFF != sequence:
                continue
            host = packet_host[index]
            if host is None or host.channel is not channel:
                continue
            address = source[0]
            if host.address != address and host.packed != _packed(family, address):
                continue
            received_ns = None
            for level, option, value in ancdata:
                if level == socket.SOL_SOCKET and option == _SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    received_ns = seconds * _SECOND_NS + nanoseconds
            if received_ns is None:
                received_ns = time.time_ns()
            rtt_ns = received_ns - offset_ns - packet_sent_ns[index]
            if rtt_ns <= timeout_ns:
                host.received += 1
                host.rtts.append(max(rtt_ns, 0) / 1e6)
            packet_host[index] = None
            host.outstanding -= 1
            if host.outstanding == 0 and host.next_round >= count:
                self._finish_check(host, now_ns)

    def _drain_errors(self, channel: _Channel, now_ns: int) -> None:
        """Reads a datagram socket's error queue: each entry an ICMP error quoting one of our requests."""
        family = channel.family
        for _ in range(_DRAIN_BATCH):
            try:
                quoted, ancdata, _flags, destination = channel.sock.recvmsg(2048, _ERROR_ANCILLARY,
                                                                            socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            for level, kind, value in ancdata:
                if level == family.error_level and kind == family.error_option and len(value) >= _EXTENDED_ERR.size:
                    _errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(value)
                    if origin == family.error_origin and icmp_type == family.unreachable:
                        self._unreachable(channel, code, _packed(family, destination[0]), quoted, now_ns)

    def _handle_unreachable(self, channel: _Channel, code: int, quoted: bytes, now_ns: int) -> None:
        """Matches a destination-unreachable (as a raw socket reads it) on the request it quotes."""
        if channel.family.number == IPV4:
            if len(quoted) < 20 or quoted[9] != socket.IPPROTO_ICMP:
                return
            self._unreachable(channel, code, quoted[16:20], quoted[(quoted[0] & 0x0F) * 4 :], now_ns)
        # The quoted IPv6 header: next header at 6, destination at 24-40 (our requests carry no extension headers).
        elif len(quoted) >= 40 and quoted[6] == socket.IPPROTO_ICMPV6:
            self._unreachable(channel, code, quoted[24:40], quoted[40:], now_ns)

    def _unreachable(self, channel: _Channel, code: int, destination: bytes, request: bytes, now_ns: int) -> None:
        """Matches a destination-unreachable on the request it quotes (from its ICMP header on)."""
        if len(request) < _ICMP_HEADER.size:
            return
        kind, _code, _checksum, identifier, sequence = _ICMP_HEADER.unpack_from(request)
        if kind != channel.family.echo_request or identifier != channel.identifier:
            return
        packet_host = self.packet_host
        index = None
        if len(request) >= REQUEST.size:
            _kind, _code, _checksum, _identifier, _sequence, token, quoted_index = REQUEST.unpack_from(request)
            if token == self.token and quoted_index < len(packet_host) and quoted_index & 0xFFFF == sequence:
                index = quoted_index
        if index is None:
            # The quote may stop after the ICMP header: find the pending request by sequence.
            index = next((candidate for candidate in range(sequence, len(packet_host), 0x10000)
                          if (pending := packet_host[candidate]) is not None and pending.packed == destination),
                         None)
        if index is None:
            return
        host = packet_host[index]
        if host is None or host.packed != destination or host.channel is not channel:
            return
        family = channel.family
        text = family.unreachable_text.get(code, "destination unreachable")
        host.unreachable = f"{text} ({family.label} {family.unreachable}/{code})"
        self._close_packet(index, now_ns)

    def _expire(self, now_ns: int) -> None:
        """Counts every request still unanswered at its deadline as lost."""
        packet_host, packet_sent_ns = self.packet_host, self.packet_sent_ns
        index, end = self.unexpired, len(packet_host)
        sent_by_ns = now_ns - self.timeout_ns - _EXPIRY_GRACE_NS  # requests sent by then are expired
        while index < end:
            if packet_host[index] is not None:
                if packet_sent_ns[index] > sent_by_ns:
                    break
                self._close_packet(index, now_ns)
            index += 1
        self.unexpired = index

    def _close_packet(self, index: int, now_ns: int) -> None:
        host = self.packet_host[index]
        self.packet_host[index] = None
        host.outstanding -= 1
        if host.outstanding == 0 and host.next_round >= self.count:
            self._finish_check(host, now_ns)

    def _finish_check(self, host: _Host, now_ns: int) -> None:
        if host.received == 0 and host.attempt <= self.settings.retries:
            host.attempt += 1
            host.reset()
            host.due_ns = max(now_ns, host.last_send_ns + self.interval_ns)
            heapq.heappush(self.later, (host.due_ns, host.index, host))
            return
        self.results[host.key] = host.result()
        self.active -= 1
