"""ICMP echo sweep over one socket: many hosts, paced sends, strict reply matching.

The socket is a datagram ICMP socket (``SOCK_DGRAM``, no privilege needed where
``net.ipv4.ping_group_range`` covers the process's group) or a raw one (root or CAP_NET_RAW);
``require_permission()`` says which one this process may open. Requests are built with pythonping's
packet class, but replies are matched here on identifier, sequence, source address and a per-sweep
payload token carrying a 32-bit packet index, whatever the socket, so a reply later than its timeout
is counted as lost and never credited to another request or host (which ``pythonping.ping()``
does). RTTs come from kernel receive timestamps.

What differs between the two kinds is confined to the socket's edges: a datagram socket's kernel
sets the echo identifier (the socket's bound "port") and the checksum, delivers only echo replies
carrying that identifier, without their IP header, and hands ICMP errors about the requests to the
socket's error queue (IP_RECVERR) instead of the data queue.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
import os
import select
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pythonping.icmp import ICMP, Types

from netwatch.errors import NoPermission

log = logging.getLogger(__name__)

RAW = "raw"
DATAGRAM = "datagram"
SOCKET_KINDS = (RAW, DATAGRAM)
AUTO = "auto"  # a preference: datagram where permitted, else raw

# Linux constants the socket module does not export.
_SOL_RAW = 255
_ICMP_FILTER = 1
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SO_SNDBUFFORCE = 32
_IP_RECVERR = 11
_SO_EE_ORIGIN_ICMP = 2
_PING_GROUP_RANGE = "/proc/sys/net/ipv4/ping_group_range"

_ECHO_REPLY = Types.EchoReply.type_id
_DEST_UNREACHABLE = Types.DestinationUnreachable.type_id
_ECHO_REQUEST = Types.EchoRequest.type_id

# pythonping packs the ICMP header in native byte order; the kernel echoes id and sequence bytes
# unchanged, so unpacking with the same layout gives back the values we sent.
_ICMP_HEADER = struct.Struct("BBHHH")
_PAYLOAD = struct.Struct("!8sI")  # per-sweep token, packet index
_TIMESPEC = struct.Struct("@ll")
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err: errno, origin, type, code, pad, info, data
_ERROR_ANCILLARY = socket.CMSG_SPACE(_EXTENDED_ERR.size + 16) + socket.CMSG_SPACE(_TIMESPEC.size)

_SOCKET_BUFFER = 8 * 1024 * 1024
_MAX_WAIT_S = 0.005  # longest wait between two check_stop() calls
_EXPIRY_GRACE_S = 0.002  # lets a reply queued right at its deadline be read before expiry
_SECOND_NS = 1_000_000_000
_CATCH_UP_NS = 2_000_000  # a late wake-up may be made up for by sending up to this far ahead of schedule
_DRAIN_BATCH = 1024
_MAX_DEFERRALS = 1000  # full send buffer: retry a request for about 1 s, then report it

_PENDING, _DONE = 0, 1

_UNREACHABLE_TEXT = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
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
    address: str  # IPv4 literal, already resolved


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
    of throughput (0.2 % with the default). The bound holds for the moments the packets really
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

    def book(self, sent_ns: int) -> None:
        """Accounts for one packet sent no later than `sent_ns` (read after the send returned)."""
        self._due_ns = max(self._due_ns, sent_ns) + self.interval_ns


class _Host:
    """Mutable state of one target during a sweep."""

    __slots__ = (
        "address",
        "attempt",
        "deferrals",
        "key",
        "last_send",
        "next_round",
        "outstanding",
        "received",
        "rtts",
        "send_error",
        "sent",
        "unreachable",
    )

    def __init__(self, target: Target) -> None:
        self.key = target.key
        self.address = target.address
        self.attempt = 1
        self.last_send = 0.0
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
    """Pings every target; returns a result for every key.

    Raises NoPermission when the socket of `settings.socket` cannot be opened; `check_stop` is
    called between sends and waits and may raise (the run's Stopped, naming its signal); the socket
    is closed in all cases.
    """
    _check_settings(settings)
    keys = [t.key for t in targets]
    if len(set(keys)) != len(keys):
        raise ValueError("target keys must be unique within a sweep")
    results: dict[str, ProbeResult] = {}
    hosts: list[_Host] = []
    for target in targets:
        try:
            ipaddress.IPv4Address(target.address)
        except ValueError:
            results[target.key] = ProbeResult(0, 0, (), 1, f"invalid IPv4 address: {target.address!r}")
            continue
        hosts.append(_Host(target))
    if hosts:
        started = time.monotonic()
        try:
            sock = _open_socket(settings.socket)
        except PermissionError:
            raise NoPermission(_permission_problem(settings.socket, configured=False)) from None
        with sock:
            engine = _Sweep(sock, settings, check_stop, hosts)
            engine.run()
        log.debug("swept %d hosts, %d requests, over a %s ICMP socket, in %.3f s", len(hosts),
                  len(engine.packet_host), settings.socket, time.monotonic() - started)
        results.update((host.key, host.result()) for host in hosts)
    return {key: results[key] for key in keys}


def _check_settings(settings: PingSettings) -> None:
    if settings.count < 1 or settings.rate_pps < 1 or settings.retries < 0:
        raise ValueError(f"invalid ping settings: {settings}")
    if settings.interval_s < 0 or settings.timeout_s <= 0 or settings.socket not in SOCKET_KINDS:
        raise ValueError(f"invalid ping settings: {settings}")


def require_permission(preference: str = AUTO) -> str:
    """The ICMP socket kind sweeps of this process will use, found by opening one now.

    `preference` AUTO takes DATAGRAM where permitted (it needs no privilege) and RAW otherwise; RAW
    or DATAGRAM forces that kind. Raises NoPermission, before any other work, when none is
    permitted: its one line names both ways to grant it.
    """
    if preference not in (AUTO, *SOCKET_KINDS):
        raise ValueError(f"unknown ICMP socket preference: {preference!r}")
    for kind in (DATAGRAM, RAW) if preference == AUTO else (preference,):
        try:
            _open_socket(kind).close()
        except PermissionError:
            continue
        return kind
    raise NoPermission(_permission_problem(preference, configured=True))


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


def _open_socket(kind: str) -> socket.socket:
    """A non-blocking ICMP socket of `kind` with kernel timestamps; PermissionError when refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW if kind == RAW else socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        _set_buffer(sock, _SO_RCVBUFFORCE, socket.SO_RCVBUF)
        _set_buffer(sock, _SO_SNDBUFFORCE, socket.SO_SNDBUF)
        if kind == RAW:
            # Let the kernel drop everything but echo replies and unreachables (on loopback the
            # socket would otherwise also queue our own requests); matching below does not rely on it.
            blocked = ~((1 << _ECHO_REPLY) | (1 << _DEST_UNREACHABLE)) & 0xFFFFFFFF
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", blocked))
        else:
            # Bound now, the kernel's choice of echo identifier (the socket's port) is known at once.
            sock.bind(("0.0.0.0", 0))
            # Without it the kernel drops ICMP errors about the requests of an unconnected socket.
            sock.setsockopt(socket.SOL_IP, _IP_RECVERR, 1)
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


class _Sweep:
    """One run of the send/receive loop over a single socket."""

    def __init__(
        self,
        sock: socket.socket,
        settings: PingSettings,
        check_stop: Callable[[], None],
        hosts: list[_Host],
    ) -> None:
        self.sock = sock
        self.settings = settings
        self.check_stop = check_stop
        self.hosts = hosts
        # A raw socket's IPv4 replies start with the IP header; a datagram socket's do not.
        self.raw = settings.socket == RAW
        if self.raw:
            self.identifier = int.from_bytes(os.urandom(2), "big")
        else:
            # The kernel writes the socket's port into every request, in network byte order; the
            # identifier is compared as pythonping packs it (native order).
            self.identifier = int.from_bytes(sock.getsockname()[1].to_bytes(2, "big"), sys.byteorder)
        self.token = os.urandom(8)
        self.timeout_ns = int(settings.timeout_s * 1e9)
        self.active = len(hosts)
        # (due time, host index) of the next request of every host still sending
        self.schedule: list[tuple[float, int]] = []
        # per packet index: host index, send time (ns, CLOCK_REALTIME like the kernel timestamps),
        # deadline (monotonic), state
        self.packet_host: list[int] = []
        self.packet_sent_ns: list[int] = []
        self.packet_deadline: list[float] = []
        self.packet_state = bytearray()
        self.in_flight: deque[int] = deque()

    def run(self) -> None:
        now_ns = time.monotonic_ns()
        pacer = Pacer(self.settings.rate_pps, now_ns)
        self.schedule = [(now_ns / 1e9, index) for index in range(len(self.hosts))]
        while self.active:
            self.check_stop()
            now_ns = time.monotonic_ns()
            now = now_ns / 1e9
            while self.schedule and self.schedule[0][0] <= now and pacer.ready(now_ns):
                _, host_index = heapq.heappop(self.schedule)
                self._send(host_index, now)
                now_ns = time.monotonic_ns()
                now = now_ns / 1e9
                # Booked even when a full send buffer refused the request: that can only lower the rate.
                pacer.book(now_ns)
            self._drain()
            self._expire(now)
            self._wait(pacer.next_ns() / 1e9)

    def _wait(self, next_slot: float) -> None:
        wake = time.monotonic() + _MAX_WAIT_S
        if self.schedule:
            wake = min(wake, max(self.schedule[0][0], next_slot))
        if self.in_flight:
            wake = min(wake, self.packet_deadline[self.in_flight[0]] + _EXPIRY_GRACE_S)
        delay = wake - time.monotonic()
        if delay > 0:
            select.select([self.sock], [], [], delay)

    def _send(self, host_index: int, now: float) -> None:
        host = self.hosts[host_index]
        index = len(self.packet_host)
        packet = ICMP(
            Types.EchoRequest,
            payload=_PAYLOAD.pack(self.token, index),
            identifier=self.identifier,
            sequence_number=index & 0xFFFF,
        ).packet
        try:
            sent_ns = time.time_ns()
            self._sendto(packet, host.address)
        except (BlockingIOError, InterruptedError):
            host.deferrals += 1
            if host.deferrals <= _MAX_DEFERRALS:
                heapq.heappush(self.schedule, (now + 0.001, host_index))
                return
            host.send_error = "send failed: socket send buffer full"
        except OSError as exc:
            host.send_error = f"send failed: {exc.strerror or exc}"
        else:
            self.packet_host.append(host_index)
            self.packet_sent_ns.append(sent_ns)
            self.packet_deadline.append(now + self.settings.timeout_s)
            self.packet_state.append(_PENDING)
            self.in_flight.append(index)
            host.sent += 1
            host.outstanding += 1
        host.last_send = now
        host.next_round += 1
        if host.next_round < self.settings.count:
            heapq.heappush(self.schedule, (now + self.settings.interval_s, host_index))
        elif host.outstanding == 0:
            self._finish_check(host_index, now)

    def _sendto(self, packet: bytes, address: str) -> None:
        try:
            self.sock.sendto(packet, (address, 0))
        except (BlockingIOError, InterruptedError):
            raise
        except OSError:
            if self.raw:
                raise
            # An ICMP error about any earlier request also fails a datagram socket's next send or
            # receive, once (IP_RECVERR sets the socket error): only a failure the retry repeats
            # belongs to this request.
            self.sock.sendto(packet, (address, 0))

    def _drain(self) -> None:
        if not self.raw:
            self._drain_errors()
        for _ in range(_DRAIN_BATCH):
            try:
                data, ancdata, _flags, source = self.sock.recvmsg(2048, socket.CMSG_SPACE(_TIMESPEC.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                if self.raw:
                    raise
                continue  # the socket error an ICMP error set (see _sendto); the error queue has its details
            received_ns = None
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    received_ns = seconds * 1_000_000_000 + nanoseconds
            self._handle(data, source[0], received_ns if received_ns is not None else time.time_ns())

    def _drain_errors(self) -> None:
        """Reads a datagram socket's error queue: each entry an ICMP error quoting one of our requests."""
        for _ in range(_DRAIN_BATCH):
            try:
                quoted, ancdata, _flags, destination = self.sock.recvmsg(2048, _ERROR_ANCILLARY, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            for level, kind, value in ancdata:
                if level == socket.SOL_IP and kind == _IP_RECVERR and len(value) >= _EXTENDED_ERR.size:
                    _errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(value)
                    if origin == _SO_EE_ORIGIN_ICMP and icmp_type == _DEST_UNREACHABLE:
                        self._unreachable(code, destination[0], quoted)

    def _handle(self, data: bytes, source: str, received_ns: int) -> None:
        header_len = (data[0] & 0x0F) * 4 if data and self.raw else 0
        if len(data) < header_len + _ICMP_HEADER.size:
            return
        kind, code, _checksum, identifier, sequence = _ICMP_HEADER.unpack_from(data, header_len)
        if kind == _ECHO_REPLY:
            index = self._packet_index(identifier, sequence, data[header_len + _ICMP_HEADER.size :])
            if index is None or self.packet_state[index] != _PENDING:
                return
            host_index = self.packet_host[index]
            if self.hosts[host_index].address != source:
                return
            rtt_ns = received_ns - self.packet_sent_ns[index]
            if rtt_ns <= self.timeout_ns:
                host = self.hosts[host_index]
                host.received += 1
                host.rtts.append(max(rtt_ns, 0) / 1e6)
            self._close_packet(index)
        elif kind == _DEST_UNREACHABLE:
            self._handle_unreachable(code, data[header_len + _ICMP_HEADER.size :])

    def _handle_unreachable(self, code: int, quoted: bytes) -> None:
        """Matches an ICMP destination-unreachable (as a raw socket reads it) on the request it quotes."""
        if len(quoted) < 20 or quoted[9] != socket.IPPROTO_ICMP:
            return
        inner_len = (quoted[0] & 0x0F) * 4
        self._unreachable(code, socket.inet_ntoa(quoted[16:20]), quoted[inner_len:])

    def _unreachable(self, code: int, destination: str, request: bytes) -> None:
        """Matches a destination-unreachable on the request it quotes (from its ICMP header on)."""
        if len(request) < _ICMP_HEADER.size:
            return
        kind, _code, _checksum, identifier, sequence = _ICMP_HEADER.unpack_from(request)
        if kind != _ECHO_REQUEST or identifier != self.identifier:
            return
        index = self._packet_index(identifier, sequence, request[_ICMP_HEADER.size :])
        if index is None:
            # The quote may stop after the ICMP header: find the pending request by sequence.
            index = next(
                (
                    candidate
                    for candidate in range(sequence, len(self.packet_host), 0x10000)
                    if self.packet_state[candidate] == _PENDING
                    and self.hosts[self.packet_host[candidate]].address == destination
                ),
                None,
            )
        if index is None or self.packet_state[index] != _PENDING:
            return
        host = self.hosts[self.packet_host[index]]
        if host.address != destination:
            return
        text = _UNREACHABLE_TEXT.get(code, "destination unreachable")
        host.unreachable = f"{text} (ICMP {_DEST_UNREACHABLE}/{code})"
        self._close_packet(index)

    def _packet_index(self, identifier: int, sequence: int, payload: bytes) -> int | None:
        if identifier != self.identifier or len(payload) < _PAYLOAD.size:
            return None
        token, index = _PAYLOAD.unpack_from(payload)
        if token != self.token or index >= len(self.packet_host) or index & 0xFFFF != sequence:
            return None
        return index

    def _expire(self, now: float) -> None:
        """Counts every request still unanswered at its deadline as lost."""
        in_flight = self.in_flight
        while in_flight:
            index = in_flight[0]
            if self.packet_state[index] == _PENDING:
                if self.packet_deadline[index] + _EXPIRY_GRACE_S > now:
                    return
                self._close_packet(index)
            in_flight.popleft()

    def _close_packet(self, index: int) -> None:
        self.packet_state[index] = _DONE
        host_index = self.packet_host[index]
        host = self.hosts[host_index]
        host.outstanding -= 1
        if host.outstanding == 0 and host.next_round >= self.settings.count:
            self._finish_check(host_index, time.monotonic())

    def _finish_check(self, host_index: int, now: float) -> None:
        host = self.hosts[host_index]
        if host.received == 0 and host.attempt <= self.settings.retries:
            host.attempt += 1
            host.reset()
            due = max(now, host.last_send + self.settings.interval_s)
            heapq.heappush(self.schedule, (due, host_index))
            return
        self.active -= 1
