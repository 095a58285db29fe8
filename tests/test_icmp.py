"""The ICMP sweep engine against real hosts: loopback and network-namespace test hosts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from netns import netns_lab, requires_netns

from netwatch.errors import Stopped
from netwatch.probes.icmp import PingSettings, ProbeResult, Target, sweep

FAST = PingSettings(count=3, interval_s=0.01, timeout_s=1.0, retries=0, rate_pps=10_000)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")


def loopback_targets(count: int) -> list[Target]:
    return [Target(f"lo-{n}", f"127.3.{n // 200}.{n % 200 + 1}") for n in range(count)]


@needs_root
def test_loopback_hosts_all_answer() -> None:
    targets = [Target("localhost", "127.0.0.1"), *loopback_targets(5)]

    results = sweep(targets, FAST)

    assert set(results) == {t.key for t in targets}
    for result in results.values():
        assert (result.sent, result.received, result.attempts, result.error) == (3, 3, 1, None)
        assert len(result.rtts_ms) == 3
        assert all(0 <= rtt < 100 for rtt in result.rtts_ms)


@needs_root
def test_sweep_ends_once_everything_answered() -> None:
    started = time.monotonic()

    sweep(loopback_targets(20), PingSettings(count=2, interval_s=0.05, timeout_s=5.0, retries=0, rate_pps=1000))

    # Bound: 1 interval + 40 packets at 1000/s; nothing waits for the 5 s timeout.
    assert time.monotonic() - started < 1.0


@needs_root
def test_rate_limit_spreads_the_packets() -> None:
    settings = PingSettings(count=2, interval_s=0.0, timeout_s=1.0, retries=0, rate_pps=1000)
    started = time.monotonic()

    results = sweep(loopback_targets(100), settings)

    elapsed = time.monotonic() - started
    assert all(r.received == 2 for r in results.values())
    assert 0.19 <= elapsed < 1.0  # 200 packets at 1000 per second


@needs_root
def test_interval_separates_requests_to_one_host() -> None:
    settings = PingSettings(count=4, interval_s=0.1, timeout_s=1.0, retries=0, rate_pps=1000)
    started = time.monotonic()

    results = sweep([Target("one", "127.0.0.1")], settings)

    assert results["one"].received == 4
    assert 0.3 <= time.monotonic() - started < 1.0


@needs_root
def test_retries_unused_when_replies_came() -> None:
    settings = PingSettings(count=1, interval_s=0.0, timeout_s=1.0, retries=3, rate_pps=1000)

    results = sweep(loopback_targets(3), settings)

    assert [r.attempts for r in results.values()] == [1, 1, 1]


@needs_root
def test_hosts_sharing_an_address_are_kept_apart() -> None:
    targets = [Target("a", "127.0.0.1"), Target("b", "127.0.0.1"), Target("c", "127.0.0.1")]

    results = sweep(targets, FAST)

    assert [(r.sent, r.received, len(r.rtts_ms)) for r in results.values()] == [(3, 3, 3)] * 3


@needs_root
def test_invalid_address_gets_an_error_and_the_sweep_goes_on() -> None:
    results = sweep([Target("bad", "not-an-ip"), Target("good", "127.0.0.1")], FAST)

    assert results["bad"] == ProbeResult(0, 0, (), 1, "invalid IPv4 address: 'not-an-ip'")
    assert results["good"].received == 3


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        sweep([Target("a", "127.0.0.1"), Target("a", "127.0.0.2")], FAST)


@needs_root
def test_stop_request_interrupts_the_sweep() -> None:
    settings = PingSettings(count=10, interval_s=1.0, timeout_s=1.0, retries=0, rate_pps=100)
    started = time.monotonic()

    with pytest.raises(Stopped, match="stopped by SIGTERM"):
        sweep(loopback_targets(50), settings, should_stop=lambda: time.monotonic() - started > 0.2)

    assert time.monotonic() - started < 0.5


# Imports come first: the interpreter's files may not be readable by nobody.
_UNPRIVILEGED_SWEEP = """
import os
from netwatch.errors import NoPermission
from netwatch.probes.icmp import PingSettings, Target, sweep
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
try:
    sweep([Target("lo", "127.0.0.1")], PingSettings(1, 0.0, 1.0, 0, 10))
except NoPermission as exc:
    print(exc.message)
"""


@needs_root
def test_no_permission_without_raw_socket_rights() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _UNPRIVILEGED_SWEEP], capture_output=True, text=True, timeout=30, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("raw ICMP sockets need root or CAP_NET_RAW: ")
    assert len(done.stdout.strip().splitlines()) == 1


@pytest.mark.netns
@requires_netns
def test_mixed_sweep_counts_late_replies_as_lost() -> None:
    """Live, silent, slow, ICMP-unreachable and unroutable hosts in one sweep."""
    settings = PingSettings(count=3, interval_s=0.5, timeout_s=1.0, retries=1, rate_pps=1000)
    with netns_lab("nwticmp") as lab:
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

        results = sweep(targets, settings)

    for key in ("live-0", "live-1", "live-0-again", "loopback"):
        assert (results[key].sent, results[key].received, results[key].attempts) == (3, 3, 1), key
        assert results[key].error is None
        assert all(0 <= rtt < 50 for rtt in results[key].rtts_ms), results[key]
    assert results["silent"] == ProbeResult(3, 0, (), 2, "no reply")
    assert results["slow"] == ProbeResult(3, 0, (), 2, "no reply")
    assert results["icmp-unreachable"] == ProbeResult(3, 0, (), 2, "host unreachable (ICMP 3/1)")
    assert results["unroutable"] == ProbeResult(0, 0, (), 2, "send failed: No route to host")
    assert all(rtt <= 1000 for r in results.values() for rtt in r.rtts_ms)


@pytest.mark.netns
@requires_netns
def test_slow_host_is_alive_with_a_longer_timeout() -> None:
    settings = PingSettings(count=2, interval_s=0.1, timeout_s=1.0, retries=0, rate_pps=100)
    with netns_lab("nwtslow") as lab:
        slow = lab.add_slow(delay_s=0.3)

        result = sweep([Target("slow", slow)], settings)["slow"]

    assert (result.sent, result.received) == (2, 2)
    assert all(300 <= rtt < 400 for rtt in result.rtts_ms)


@pytest.mark.netns
@requires_netns
def test_host_going_down_and_up() -> None:
    settings = PingSettings(count=2, interval_s=0.05, timeout_s=0.5, retries=0, rate_pps=100)
    with netns_lab("nwtflap") as lab:
        host = lab.add_live()
        target = [Target("flap", host)]

        before = sweep(target, settings)["flap"]
        lab.set_down(host)
        while_down = sweep(target, settings)["flap"]
        lab.set_up(host)
        after = sweep(target, settings)["flap"]

    assert before.received == 2
    assert while_down.received == 0
    assert while_down.error is not None
    assert after.received == 2
