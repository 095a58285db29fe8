"""The ICMP sweep engine against real hosts: loopback and network-namespace test hosts.

Every sweep test runs over both kinds of ICMP socket (the `pinger` fixture): raw, in this process's
namespace (needs root), and datagram, in a namespace of the test's own whose
net.ipv4.ping_group_range lets every group open one (needs network namespaces).
"""

from __future__ import annotations

import errno
import gc
import ipaddress
import json
import logging
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import pytest
from netns import (
    ALL_GROUPS,
    FORGERIES,
    NO_GROUP,
    NetnsLab,
    netns_lab,
    pinging_namespace,
    requires_netns,
    run_in_namespace,
)

from netwatch.core.addresses import parse_ip
from netwatch.errors import NoPermission, Stopped
from netwatch.probes import icmp
from netwatch.probes.echo import EchoTemplate
from netwatch.probes.icmp import (
    AUTO,
    DATAGRAM,
    RAW,
    Pacer,
    PingSettings,
    ProbeResult,
    Target,
    require_permission,
    sweep,
)
from netwatch.probes.replyfilter import INSTRUCTION
from netwatch.running.stopflag import StopFlag

FAST = PingSettings(count=3, interval_s=0.01, timeout_s=1.0, retries=0, rate_pps=10_000)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")
T = TypeVar("T")


@dataclass(frozen=True)
class Pinger:
    """Sweeps over one kind of ICMP socket, from the namespace `home` (None: this process's)."""

    kind: str
    home: str | None

    def call(self, work: Callable[[], T]) -> T:
        """`work()` where this pinger's sockets are opened."""
        return work() if self.home is None else run_in_namespace(self.home, work)

    def settings(self, settings: PingSettings) -> PingSettings:
        return replace(settings, socket=self.kind)

    def sweep(self, targets: Sequence[Target], settings: PingSettings,
              check_stop: Callable[[], None] = lambda: None) -> dict[str, ProbeResult]:
        return self.call(lambda: sweep(targets, self.settings(settings), check_stop))

    def lab(self, prefix: str, family: int = 4) -> AbstractContextManager[NetnsLab]:
        """Namespace test hosts reachable from this pinger's namespace, pinged over IP version `family`."""
        return netns_lab(prefix, home=self.home, family=family)


@pytest.fixture(params=[pytest.param(RAW, marks=needs_root), pytest.param(DATAGRAM, marks=requires_netns)])
def pinger(request: pytest.FixtureRequest) -> Iterator[Pinger]:
    if request.param == RAW:
        yield Pinger(RAW, None)
        return
    with pinging_namespace("nwtdgram") as home:
        yield Pinger(DATAGRAM, home)


def loopback_targets(count: int) -> list[Target]:
    return [Target(f"lo-{n}", f"127.3.{n // 200}.{n % 200 + 1}") for n in range(count)]


def test_loopback_hosts_all_answer(pinger: Pinger) -> None:
    targets = [Target("localhost", "127.0.0.1"), *loopback_targets(5)]

    results = pinger.sweep(targets, FAST)

    assert set(results) == {t.key for t in targets}
    for result in results.values():
        assert (result.sent, result.received, result.attempts, result.error) == (3, 3, 1, None)
        assert len(result.rtts_ms) == 3
        assert all(0 <= rtt < 100 for rtt in result.rtts_ms)


def test_ipv6_loopback_answers_however_the_address_is_spelled(pinger: Pinger) -> None:
    targets = [Target("short", "::1"), Target("long", "0:0:0:0:0:0:0:1"), Target("v4", "127.0.0.1")]

    results = pinger.sweep(targets, FAST)

    for result in results.values():
        assert (result.sent, result.received, result.attempts, result.error) == (3, 3, 1, None)
        assert all(0 <= rtt < 100 for rtt in result.rtts_ms)


def test_ipv4_and_ipv6_hosts_share_one_rate_limit(pinger: Pinger) -> None:
    settings = PingSettings(count=2, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=1000)
    targets = [*loopback_targets(50), *(Target(f"v6-{n}", "::1") for n in range(50))]
    started = time.monotonic()

    results = pinger.sweep(targets, settings)

    elapsed = time.monotonic() - started
    assert all(r.received == 2 for r in results.values())
    assert 0.19 <= elapsed < 1.0  # 200 packets at 1000 per second, whatever their family


def test_sweep_ends_once_everything_answered(pinger: Pinger) -> None:
    started = time.monotonic()

    pinger.sweep(loopback_targets(20), PingSettings(count=2, interval_s=0.05, timeout_s=5.0, retries=0, rate_pps=1000))

    # Bound: 1 interval + 40 packets at 1000/s; nothing waits for the 5 s timeout.
    assert time.monotonic() - started < 1.0


def test_sweep_returns_at_its_last_reply(pinger: Pinger) -> None:
    """No wait after the last request is answered: not even the engine's longest one (5 ms).

    Timed from the sweep's last check_stop() call, which begins the pass that reads the reply: what
    follows it is work in this process only, no reply's round trip.
    """
    # At 100 packets/s the next send slot is 10 ms away: a wait for it would be one of the longest.
    settings = pinger.settings(PingSettings(count=1, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=100))

    def after_the_last_check() -> float:
        checked: list[float] = []
        results = sweep([Target("localhost", "127.0.0.1")], settings, lambda: checked.append(time.monotonic()))
        returned = time.monotonic()
        assert results.popitem()[1].received == 1
        return returned - checked[-1]

    spans = [pinger.call(after_the_last_check) for _ in range(5)]

    assert min(spans) < 0.002, spans


def test_no_cyclic_collection_during_a_sweep_and_the_collector_is_back_after(pinger: Pinger) -> None:
    enabled: list[bool] = []

    pinger.sweep(loopback_targets(20), FAST, lambda: enabled.append(gc.isenabled()))

    assert enabled and not any(enabled)
    assert gc.isenabled()


def _instances(*classes: type) -> list[int]:
    """How many objects of each of `classes` (exactly) the collector tracks now.

    One loop and no closure over the list: a generator's cell would hold the list and the list the
    cell, a cycle that keeps every object in it alive while a sweep pauses the collector.
    """
    counts = dict.fromkeys(classes, 0)
    for candidate in gc.get_objects():
        kind = type(candidate)
        if kind in counts:
            counts[kind] += 1
    return list(counts.values())


@requires_netns
def test_a_host_is_let_go_and_its_result_made_as_its_check_ends(pinger: Pinger) -> None:
    """While a slow host's request is out, the hosts already answered are results, no longer hosts."""
    settings = PingSettings(count=1, interval_s=0.0, timeout_s=3.0, retries=0, rate_pps=1000)
    seen: list[list[int]] = []

    def count_objects() -> None:
        # Counted from just before the sweep: a host or result an earlier test left behind is not its.
        if not seen and time.monotonic() - started > 0.3:  # the slow host's request went long ago
            hosts, probe_results = (now - before for now, before in zip(_instances(icmp._Host, ProbeResult),
                                                                          baseline, strict=True))
            if probe_results >= 20:  # every loopback host answered; the slow one answers at 2 s
                seen.append([hosts, probe_results])

    with pinger.lab("nwtfree") as lab:
        slow = lab.add_slow(delay_s=2.0)
        gc.collect()
        baseline = _instances(icmp._Host, ProbeResult)
        started = time.monotonic()

        results = pinger.sweep([*loopback_targets(20), Target("slow", slow)], settings, count_objects)

    assert all(r.received == 1 for r in results.values())
    assert seen == [[1, 20]]


def test_a_host_is_made_of_its_target_as_its_first_request_goes(pinger: Pinger) -> None:
    """Nothing per target is made before the sweep's first send: a sweep's first packet goes at once."""
    made: list[int] = []

    def count_hosts() -> None:
        made.append(_instances(icmp._Host)[0] - before)

    settings = PingSettings(count=1, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=100)
    gc.collect()
    [before] = _instances(icmp._Host)
    results = pinger.sweep([*loopback_targets(5), Target("bad", "300.0.0.1")], settings, count_hosts)

    assert made[0] == 0  # the first call comes before the first send
    assert results.pop("bad").error == "invalid IP address: '300.0.0.1'"
    assert all(r.received == 1 for r in results.values())


def test_rate_limit_spreads_the_packets(pinger: Pinger) -> None:
    settings = PingSettings(count=2, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=1000)
    started = time.monotonic()

    results = pinger.sweep(loopback_targets(100), settings)

    elapsed = time.monotonic() - started
    assert all(r.received == 2 for r in results.values())
    assert 0.19 <= elapsed < 1.0  # 200 packets at 1000 per second


SECOND_NS = 1_000_000_000
PACED_RATES = (1, 2, 3, 7, 100, 999, 1000, 4096, 10_000)
TOLERANCES_NS = (0, 1, 2_000_000, 250_000_000, 3 * SECOND_NS)
INSTANT = (0, 0)  # a send that takes no time


def assert_paced(sends: list[int], rate: int, pacer: Pacer) -> None:
    """No 1 s window holds more than `rate` sends, and any k + 1 sends span at least k intervals
    less the tolerance."""
    assert sends == sorted(sends)
    assert all(sends[i + rate] - sends[i] >= SECOND_NS for i in range(len(sends) - rate))
    # (s_j - j*T) - (s_i - i*T) >= -tolerance for every i < j, checked against the running maximum.
    highest = sends[0] if sends else 0
    for index, sent in enumerate(sends):
        shifted = sent - index * pacer.interval_ns
        assert shifted >= highest - pacer.tolerance_ns, index
        highest = max(highest, shifted)


def send_at_wakeups(pacer: Pacer, packets: int, lateness_ns: Iterator[int],
                    costs: Iterator[tuple[int, int]]) -> list[int]:
    """The moments packets leave a sender that always has one ready: it wakes `lateness` after each
    permitted time and sends while the pacer lets it. A cost (leaves, took) is one send: the packet
    leaves `leaves` ns into it and it returns after `took` ns, when the sender books it."""
    sends: list[int] = []
    while len(sends) < packets:
        now = pacer.next_ns() + next(lateness_ns)
        while len(sends) < packets and pacer.ready(now):
            leaves, took = next(costs)
            sends.append(now + leaves)
            now += took
            pacer.book(now)
    return sends


def random_lateness(seed: int, tolerance_ns: int) -> Iterator[int]:
    """On time, a little late, about the tolerance late, or stalled for seconds, in random order."""
    rng = random.Random(seed)
    while True:
        roll = rng.random()
        if roll < 0.5:
            yield 0
        elif roll < 0.8:
            yield rng.randrange(0, 200_000)
        elif roll < 0.95:
            yield max(tolerance_ns + rng.randrange(-50_000, 50_000), 0)
        else:
            yield rng.randrange(SECOND_NS, 3 * SECOND_NS)


def random_costs(seed: int) -> Iterator[tuple[int, int]]:
    """Sends of a few microseconds, some preempted for milliseconds before or after the packet left."""
    rng = random.Random(-seed)
    while True:
        took = rng.randrange(0, 20_000) if rng.random() < 0.9 else rng.randrange(1_000_000, 5_000_000)
        yield rng.randint(0, took), took


@pytest.mark.parametrize("tolerance_ns", TOLERANCES_NS)
@pytest.mark.parametrize("rate", PACED_RATES)
def test_pacer_never_exceeds_the_rate_in_any_second(rate: int, tolerance_ns: int) -> None:
    packets = 3 * rate + 10
    for seed in range(3):
        pacer = Pacer(rate, start_ns=10**12 + seed, tolerance_ns=tolerance_ns)
        sends = send_at_wakeups(pacer, packets, random_lateness(seed, tolerance_ns), random_costs(seed))
        assert_paced(sends, rate, pacer)
    greedy = Pacer(rate, start_ns=0, tolerance_ns=tolerance_ns)
    assert_paced(send_at_wakeups(greedy, packets, iter(lambda: 0, 1), iter(lambda: INSTANT, 1)), rate, greedy)


@pytest.mark.parametrize("tolerance_ns", TOLERANCES_NS)
@pytest.mark.parametrize("rate", PACED_RATES)
def test_pacer_polled_at_random_times_stays_within_the_rate(rate: int, tolerance_ns: int) -> None:
    rng = random.Random(rate * 7 + tolerance_ns)
    pacer = Pacer(rate, start_ns=0, tolerance_ns=tolerance_ns)
    costs = random_costs(rate)
    sends: list[int] = []
    now = 0
    for _ in range(6 * rate + 20):
        now += rng.choice((0, 1, pacer.interval_ns // 3, pacer.interval_ns, 2 * pacer.tolerance_ns))
        if pacer.ready(now):
            leaves, took = next(costs)
            sends.append(now + leaves)
            now += took
            pacer.book(now)
    assert len(sends) > rate
    assert_paced(sends, rate, pacer)


@pytest.mark.parametrize("rate", PACED_RATES)
def test_late_sender_bursts_at_most_the_tolerance(rate: int) -> None:
    pacer = Pacer(rate, start_ns=0)
    on_time = send_at_wakeups(pacer, 5, iter(lambda: 0, 1), iter(lambda: INSTANT, 1))
    stalled_until = on_time[-1] + 10 * SECOND_NS

    burst = 0
    while burst < 10 * rate and pacer.ready(stalled_until):
        pacer.book(stalled_until)
        burst += 1

    assert burst == pacer.tolerance_ns // pacer.interval_ns + 1
    assert pacer.next_ns() == stalled_until + burst * pacer.interval_ns - pacer.tolerance_ns
    assert not pacer.ready(pacer.next_ns() - 1)
    assert pacer.ready(pacer.next_ns())


def test_pacer_catches_up_a_late_wakeup_within_the_tolerance() -> None:
    pacer = Pacer(10_000, start_ns=0)
    assert pacer.tolerance_ns == 5_000_000  # the default: 5 ms
    lateness = iter([0] * 100 + [pacer.tolerance_ns] + [0] * 1000)  # a wake-up that late loses no slot

    sends = send_at_wakeups(pacer, 1000, lateness, iter(lambda: INSTANT, 1))

    assert sends[-1] == 999 * pacer.interval_ns  # the same last send time as without the late wake-up
    assert_paced(sends, 10_000, pacer)


def test_send_delayed_after_the_check_is_not_credited() -> None:
    pacer = Pacer(1000, start_ns=0, tolerance_ns=0)
    assert pacer.ready(0)
    pacer.book(5_000_000)  # the send was preempted: it returned 5 ms after the check

    assert pacer.next_ns() == 5_000_000 + pacer.interval_ns


def test_pacer_costs_at_most_the_tolerance_in_throughput() -> None:
    assert Pacer(10_000, start_ns=0).interval_ns == 100_500  # 9,950 packets/s: 0.5 % below the limit
    for rate in PACED_RATES:
        pacer = Pacer(rate, start_ns=0)
        assert rate * pacer.interval_ns - (SECOND_NS + pacer.tolerance_ns) in range(rate)
    assert Pacer(3, start_ns=0, tolerance_ns=0).interval_ns == 333_333_334  # rounded up, never faster


def test_pacer_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="invalid pacing"):
        Pacer(0, start_ns=0)
    with pytest.raises(ValueError, match="invalid pacing"):
        Pacer(10, start_ns=0, tolerance_ns=-1)


# Linux socket options the socket module does not export.
_SO_TIMESTAMPNS, _SO_RCVBUFFORCE, _SOL_RAW, _ICMP_FILTER = 35, 33, 255, 1
_ECHO_REQUEST = 8
WIRE_NETWORK = ipaddress.IPv4Network("127.77.0.0/16")  # used by no other test: the capture filters on it


@contextmanager
def echo_request_capture() -> Iterator[socket.socket]:
    """A second raw socket that sees every echo request sent on this host, with kernel timestamps."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 32 * 1024 * 1024)
        sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~(1 << _ECHO_REQUEST) & 0xFFFFFFFF))
        yield sock
    finally:
        sock.close()


def captured_request_times(sock: socket.socket) -> list[int]:
    """Kernel timestamps (ns) of the echo requests to WIRE_NETWORK queued on `sock`, sorted."""
    times = []
    for _ in range(100_000):
        try:
            data, ancdata, _flags, _source = sock.recvmsg(2048, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return sorted(times)
        header = (data[0] & 0x0F) * 4
        if data[header] == _ECHO_REQUEST and ipaddress.IPv4Address(data[16:20]) in WIRE_NETWORK:
            [(_level, _kind, value)] = ancdata
            seconds, nanoseconds = struct.unpack("@ll", value[:16])
            times.append(seconds * SECOND_NS + nanoseconds)
    raise AssertionError("capture never ran dry")


def test_requests_on_the_wire_never_exceed_the_rate(pinger: Pinger) -> None:
    rate = 1000
    targets = [Target(f"w-{n}", str(WIRE_NETWORK[n + 1])) for n in range(400)]
    settings = pinger.settings(PingSettings(count=3, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=rate))

    def captured_sweep() -> tuple[dict[str, ProbeResult], list[int]]:
        with echo_request_capture() as capture:
            return sweep(targets, settings), captured_request_times(capture)

    results, times = pinger.call(captured_sweep)

    assert sum(r.sent for r in results.values()) == len(times) == 1200
    assert all(r.received == 3 for r in results.values())
    # The kernel stamps each request inside its sendto(), between the pacer's check and booking.
    assert_paced(times, rate, Pacer(rate, start_ns=0))


def test_interval_separates_requests_to_one_host(pinger: Pinger) -> None:
    settings = PingSettings(count=4, interval_s=0.1, timeout_s=1.0, retries=0, rate_pps=1000)
    started = time.monotonic()

    results = pinger.sweep([Target("one", "127.0.0.1")], settings)

    assert results["one"].received == 4
    assert 0.3 <= time.monotonic() - started < 1.0


def test_retries_unused_when_replies_came(pinger: Pinger) -> None:
    settings = PingSettings(count=1, interval_s=0.0, timeout_s=1.0, retries=3, rate_pps=1000)

    results = pinger.sweep(loopback_targets(3), settings)

    assert [r.attempts for r in results.values()] == [1, 1, 1]


def test_hosts_sharing_an_address_are_kept_apart(pinger: Pinger) -> None:
    targets = [Target("a", "127.0.0.1"), Target("b", "127.0.0.1"), Target("c", "127.0.0.1")]

    results = pinger.sweep(targets, FAST)

    assert [(r.sent, r.received, len(r.rtts_ms)) for r in results.values()] == [(3, 3, 3)] * 3


def test_invalid_address_gets_an_error_and_the_sweep_goes_on(pinger: Pinger) -> None:
    results = pinger.sweep([Target("bad", "not-an-ip"), Target("good", "127.0.0.1")], FAST)

    assert results["bad"] == ProbeResult(0, 0, (), 1, "invalid IP address: 'not-an-ip'")
    assert results["good"].received == 3


def test_an_ipv6_zone_is_an_invalid_address(pinger: Pinger) -> None:
    results = pinger.sweep([Target("zoned", "fe80::1%lo"), Target("good", "::1")], FAST)

    assert results["zoned"] == ProbeResult(0, 0, (), 1, "invalid IP address: 'fe80::1%lo'")
    assert results["good"].received == 3


@pytest.mark.parametrize("text", [
    "127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3", "127.1", "127.0.0.01", "0127.0.0.1", "127.0.0.256",
    "127.0.0.1 ", " 127.0.0.1", "127.0.0.1.", "1.2.3.4.5", "127..0.1", "127.0.0.1\x00", "\uff11.0.0.1",
    "\u0663.0.0.1", "0x7f.0.0.1", "", "host", "::1", "::FFFF:127.0.0.1", "2001:DB8::0:1", "fe80::1%lo",
])
def test_a_target_address_is_parsed_once_as_parse_ip_reads_it(text: str) -> None:
    """The sweep's own parse (the C parser for dotted IPv4) accepts and spells an address as parse_ip does."""
    address = parse_ip(text)

    assert icmp._parse_address(text) == (None if address is None else (address.version, str(address), address.packed))


@needs_root
def test_a_raw_icmpv6_socket_queues_echo_replies_not_our_own_requests() -> None:
    """Its ICMP6_FILTER passes echo replies and unreachables only: on loopback the request comes back too."""
    family = icmp._FAMILY[6]
    payload = os.urandom(8)  # no other ICMPv6 on this host carries it, a parallel run of this test's neither
    with icmp._open_socket(RAW, family) as sock:
        sock.sendto(struct.pack("BBHHH", 128, 0, 0, 0x4E57, 1) + payload, ("::1", 0))
        # The request loops back before the reply is made: unfiltered, it would be the first to carry the payload.
        first = None
        deadline = time.monotonic() + 5.0
        for _ in range(10_000):
            left = deadline - time.monotonic()
            if first is not None or left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            data = sock.recv(2048)
            if data[8:] == payload:
                first = data[0]

    assert first == 129


def _echo_identifier(data: bytes, token: bytes, ip_header: bool) -> int | None:
    """The identifier of a packet that is an echo reply carrying `token`, else None."""
    start = (data[0] & 0x0F) * 4 if ip_header else 0
    if data[start] in (0, 129) and data[start + 8 : start + 16] == token:
        return int.from_bytes(data[start + 4 : start + 6], "big")
    return None


def _next_echo_identifiers(sock: socket.socket, token: bytes, ip_header: bool, wanted: int) -> list[int]:
    """The identifiers of the next `wanted` echo replies carrying `token` that `sock` receives, within 5 s."""
    identifiers: list[int] = []
    deadline = time.monotonic() + 5.0
    for _ in range(100_000):  # other packets too: the host may be busy pinging
        if len(identifiers) == wanted:
            return identifiers
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        identifier = _echo_identifier(sock.recv(2048), token, ip_header)
        if identifier is not None:
            identifiers.append(identifier)
    raise AssertionError(f"{len(identifiers)} of {wanted} replies arrived: {identifiers}")


def _queued_echo_identifiers(sock: socket.socket, token: bytes, ip_header: bool) -> list[int]:
    """The identifiers of the echo replies carrying `token` that `sock` has queued, in order."""
    identifiers = []
    for _ in range(10_000):
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return identifiers
        identifier = _echo_identifier(data, token, ip_header)
        if identifier is not None:
            identifiers.append(identifier)
    raise AssertionError("socket never ran dry")


@needs_root
@pytest.mark.parametrize(("family", "loopback"), [(4, "127.0.0.1"), (6, "::1")])
def test_a_raw_socket_is_handed_only_the_echo_replies_to_its_identifier(family: int, loopback: str) -> None:
    """Another pinger's replies are dropped by the kernel (the socket's BPF filter), ours delivered."""
    token = os.urandom(8)
    number = icmp.IPV4 if family == 4 else icmp.IPV6
    with ExitStack() as stack:
        channel = icmp._Channel(icmp._FAMILY[number], stack.enter_context(icmp._open_socket(RAW, icmp._FAMILY[number])),
                                raw=True, token=token)
        unfiltered = stack.enter_context(icmp._open_socket(RAW, icmp._FAMILY[number]))
        other = channel.identifier ^ 0x5A5A
        another_pinger = EchoTemplate(channel.family.echo_request, other, token, checksummed=family == 4)
        for index in range(3):
            channel.sendto(another_pinger.request(index), (loopback, 0))
        channel.sendto(channel.request(3), (loopback, 0))

        # The kernel hands each reply to every raw socket at once: once the unfiltered one has all
        # four, the filtered one has queued all it will of them.
        arrived = _next_echo_identifiers(unfiltered, token, channel.ip_header, 4)
        assert sorted(arrived) == sorted([other] * 3 + [channel.identifier])
        assert _queued_echo_identifiers(channel.sock, token, channel.ip_header) == [channel.identifier]


def test_a_filter_the_kernel_refuses_is_logged_and_the_socket_still_receives(caplog: pytest.LogCaptureFixture) -> None:
    """The filter only saves work (replies are matched on identifier, token, sequence and source all the same)."""
    no_return = INSTRUCTION.pack(0x01, 0, 0, 0)  # a program must end with a return: the kernel says EINVAL
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sock.bind(("127.0.0.1", 0))
        with caplog.at_level(logging.DEBUG, logger=icmp.__name__):
            icmp._attach_filter(sock, no_return)
        sender.sendto(b"still delivered", sock.getsockname())
        assert select.select([sock], [], [], 5.0)[0]
        assert sock.recv(64) == b"still delivered"

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, f"the kernel refused the echo reply filter ({os.strerror(errno.EINVAL)}): "
                        "every echo reply on the host reaches the sweep's socket")]


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        sweep([Target("a", "127.0.0.1"), Target("a", "127.0.0.2")], FAST)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_request_interrupts_the_sweep_with_the_signal_received(pinger: Pinger, signum: int, code: int) -> None:
    settings = PingSettings(count=10, interval_s=1.0, timeout_s=1.0, retries=0, rate_pps=100)
    stop = StopFlag()
    checks = []

    def check_stop() -> None:
        checks.append(1)
        if len(checks) == 20:
            stop.set(signum)
        stop.check()

    with pytest.raises(Stopped) as caught:
        pinger.sweep(loopback_targets(50), settings, check_stop)

    assert len(checks) == 20, "the sweep stops at the check that saw the flag"
    assert caught.value.exit_code == code
    assert signal.Signals(signum).name in caught.value.message


def _refusal(what: str, group: int, ping_group_range: str) -> str:
    return (f"no permission for {what}: raw sockets need root or CAP_NET_RAW, datagram sockets need "
            f"net.ipv4.ping_group_range to cover group {group} (it is \"{ping_group_range}\")")


@requires_netns
@pytest.mark.parametrize(("ping_group_range", "expected"), [
    (ALL_GROUPS, {AUTO: DATAGRAM, RAW: RAW, DATAGRAM: DATAGRAM}),
    (NO_GROUP, {AUTO: RAW, RAW: RAW,
                DATAGRAM: _refusal("a datagram ICMP socket (ping.socket: datagram)", 0, NO_GROUP)}),
])
@pytest.mark.parametrize("families", [(4,), (6,), (4, 6)])
def test_root_prefers_datagram_sockets_and_falls_back_to_raw(
    ping_group_range: str, expected: dict[str, str], families: tuple[int, ...]
) -> None:
    """Whatever the IP versions: net.ipv4.ping_group_range governs datagram ICMPv6 sockets too."""
    def choices() -> dict[str, str]:
        found = {}
        for preference in (AUTO, RAW, DATAGRAM):
            try:
                found[preference] = require_permission(preference, families)
            except NoPermission as exc:
                found[preference] = exc.message
        return found

    with pinging_namespace("nwtchoose", ping_group_range) as home:
        assert run_in_namespace(home, choices) == expected


# Run as uid and gid 65534 in a namespace of the test's: what require_permission() says to each
# preference, and what a sweep of 127.0.0.1 (IPv4) or ::1 (IPv6) over each kind does (replies, or its refusal).
_UNPRIVILEGED = """
import json, sys
from netwatch.errors import NoPermission
from netwatch.probes.icmp import PingSettings, Target, require_permission, sweep

def outcome(call):
    try:
        return call()
    except NoPermission as exc:
        return exc.message

family, loopback = int(sys.argv[1]), sys.argv[2]
found = {preference: outcome(lambda: require_permission(preference, (family,)))
         for preference in ("auto", "raw", "datagram")}
for kind in ("raw", "datagram"):
    settings = PingSettings(count=2, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=100, socket=kind)
    found["sweep " + kind] = outcome(lambda: sweep([Target("lo", loopback)], settings)["lo"].received)
print(json.dumps(found))
"""


@requires_netns
@pytest.mark.parametrize(("ping_group_range", "expected"), [
    (ALL_GROUPS, {AUTO: DATAGRAM, RAW: _refusal("a raw ICMP socket (ping.socket: raw)", 65534, ALL_GROUPS),
                  DATAGRAM: DATAGRAM, "sweep raw": _refusal("a raw ICMP socket", 65534, ALL_GROUPS),
                  "sweep datagram": 2}),
    (NO_GROUP, {AUTO: _refusal("an ICMP socket", 65534, NO_GROUP),
                RAW: _refusal("a raw ICMP socket (ping.socket: raw)", 65534, NO_GROUP),
                DATAGRAM: _refusal("a datagram ICMP socket (ping.socket: datagram)", 65534, NO_GROUP),
                "sweep raw": _refusal("a raw ICMP socket", 65534, NO_GROUP),
                "sweep datagram": _refusal("a datagram ICMP socket", 65534, NO_GROUP)}),
])
@pytest.mark.parametrize(("family", "loopback"), [(4, "127.0.0.1"), (6, "::1")])
def test_unprivileged_process_pings_over_datagram_sockets_only_where_ping_group_range_allows(
    ping_group_range: str, expected: dict[str, object], family: int, loopback: str
) -> None:
    """The one sysctl, net.ipv4.ping_group_range, governs datagram ICMPv6 sockets too."""
    with pinging_namespace("nwtnobody", ping_group_range) as home:
        done = subprocess.run(
            ["ip", "netns", "exec", home, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-c", _UNPRIVILEGED, str(family), loopback],
            capture_output=True, text=True, timeout=60, check=False,
        )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


@requires_netns
@pytest.mark.parametrize("family", [4, 6])
def test_replies_that_differ_from_the_request_are_never_credited(pinger: Pinger, family: int) -> None:
    """A wrong token, sequence or identifier, or another source address: the reply is not the request's."""
    settings = PingSettings(count=3, interval_s=0.05, timeout_s=0.5, retries=0, rate_pps=1000)
    with pinger.lab("nwtforge", family) as lab:
        hosts = {change: lab.add_forger(change) for change in FORGERIES}

        results = pinger.sweep([Target(change, address) for change, address in hosts.items()], settings)

    assert (results["none"].sent, results["none"].received) == (3, 3), "the faithful copy is credited"
    for change in FORGERIES:
        if change != "none":
            assert results[change] == ProbeResult(3, 0, (), 1, "no reply"), change


@requires_netns
@pytest.mark.parametrize("family", [4, 6])
def test_rtt_is_the_kernels_receive_time_even_when_the_reply_is_read_late(pinger: Pinger, family: int) -> None:
    settings = PingSettings(count=1, interval_s=0.0, timeout_s=3.0, retries=0, rate_pps=100)
    checks = []

    def stall_after_the_send() -> None:
        # The second check comes after the request went out: the sweep reads nothing for 1 s while
        # the reply, due 0.3 s after the request, waits in the socket.
        checks.append(1)
        if len(checks) == 2:
            time.sleep(1.0)

    with pinger.lab("nwtstamp", family) as lab:
        slow = lab.add_slow(delay_s=0.3)

        result = pinger.sweep([Target("slow", slow)], settings, stall_after_the_send)["slow"]

    assert (result.sent, result.received) == (1, 1)
    assert 300 <= result.rtts_ms[0] < 900, result


# What a router's "unreachable" route answers, per IP version.
UNREACHABLE = {4: "host unreachable (ICMP 3/1)", 6: "no route to destination (ICMPv6 1/0)"}


@requires_netns
@pytest.mark.parametrize("family", [4, 6])
def test_mixed_sweep_counts_late_replies_as_lost(pinger: Pinger, family: int) -> None:
    """Live, silent, slow, ICMP-unreachable and unroutable hosts in one sweep."""
    settings = PingSettings(count=3, interval_s=0.5, timeout_s=1.0, retries=1, rate_pps=1000)
    with pinger.lab("nwticmp", family) as lab:
        live = [lab.add_live() for _ in range(2)]
        silent = lab.add_silent()
        # Replies to request n arrive while request n+1 (and the retry) is still waiting:
        # a matcher on identifier alone would credit them.
        slow = lab.add_slow(delay_s=1.2)
        icmp_unreachable = lab.add_unreachable()
        unroutable = lab.add_unroutable()
        targets = [
            Target("live-0", live[0]),
            Target("live-1", live[1]),
            Target("live-0-again", live[0]),
            Target("silent", silent),
            Target("slow", slow),
            Target("icmp-unreachable", icmp_unreachable),
            Target("unroutable", unroutable),
            Target("loopback", "127.0.0.1"),
        ]

        results = pinger.sweep(targets, settings)

    for key in ("live-0", "live-1", "live-0-again", "loopback"):
        assert (results[key].sent, results[key].received, results[key].attempts) == (3, 3, 1), key
        assert results[key].error is None
        assert all(0 <= rtt < 50 for rtt in results[key].rtts_ms), results[key]
    assert results["silent"] == ProbeResult(3, 0, (), 2, "no reply")
    assert results["slow"] == ProbeResult(3, 0, (), 2, "no reply")
    assert results["icmp-unreachable"] == ProbeResult(3, 0, (), 2, UNREACHABLE[family])
    assert results["unroutable"] == ProbeResult(0, 0, (), 2, "send failed: No route to host")
    assert all(rtt <= 1000 for r in results.values() for rtt in r.rtts_ms)


@requires_netns
@pytest.mark.parametrize("family", [4, 6])
def test_an_icmp_error_fails_no_other_hosts_request(pinger: Pinger, family: int) -> None:
    """A datagram socket's next send after an ICMP error arrived fails with that error, once."""
    settings = PingSettings(count=2, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=10_000)

    def late_every_time() -> None:
        time.sleep(0.003)  # each wake-up late: the pacer lets a burst of requests go at once

    with pinger.lab("nwterr", family) as lab:
        unreachable = lab.add_unreachable()
        targets = [Target("unreachable", unreachable), *loopback_targets(30)]

        results = pinger.sweep(targets, settings, late_every_time)

    assert results.pop("unreachable") == ProbeResult(2, 0, (), 1, UNREACHABLE[family])
    assert {(r.sent, r.received, r.error) for r in results.values()} == {(2, 2, None)}


@requires_netns
@pytest.mark.parametrize("family", [4, 6])
def test_slow_host_is_alive_with_a_longer_timeout(pinger: Pinger, family: int) -> None:
    settings = PingSettings(count=2, interval_s=0.1, timeout_s=1.0, retries=0, rate_pps=100)
    with pinger.lab("nwtslow", family) as lab:
        slow = lab.add_slow(delay_s=0.3)

        result = pinger.sweep([Target("slow", slow)], settings)["slow"]

    assert (result.sent, result.received) == (2, 2)
    assert all(300 <= rtt < 400 for rtt in result.rtts_ms)


@requires_netns
@pytest.mark.parametrize("family", [4, 6])
def test_host_going_down_and_up(pinger: Pinger, family: int) -> None:
    settings = PingSettings(count=2, interval_s=0.05, timeout_s=0.5, retries=0, rate_pps=100)
    with pinger.lab("nwtflap", family) as lab:
        host = lab.add_live()
        target = [Target("flap", host)]

        before = pinger.sweep(target, settings)["flap"]
        lab.set_down(host)
        while_down = pinger.sweep(target, settings)["flap"]
        lab.set_up(host)
        after = pinger.sweep(target, settings)["flap"]

    assert before.received == 2
    assert while_down.received == 0
    assert while_down.error is not None
    assert after.received == 2
