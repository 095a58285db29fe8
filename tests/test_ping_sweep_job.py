"""ping-sweep end to end: the real CLI process, real ICMP, a real HTTP server for the APIs, both databases."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from dbread import named_checks
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import FAST_PING, TOKEN, Netwatch, log_lines, terminate, webhook_receiver
from netns import ALL_GROUPS, NO_GROUP, netns_lab, pinging_namespace, requires_netns
from sqlalchemy.engine import Engine

from netwatch.config import parse_config
from netwatch.db.clock import server_now
from netwatch.db.engine import count_statements
from netwatch.deps import build_deps
from netwatch.jobs.ping_sweep import run_ping_sweep
from netwatch.logs import Redactor
from netwatch.probes.resolve import resolve_all
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag
from netwatch.shard import Shard


def _apis(fake: FakeApis, **sigma: object) -> dict[str, dict[str, object]]:
    return {"sigma": {"base_url": fake.url, "retry_backoff_seconds": 0, **sigma},
            "segware": {"base_url": fake.url}}


def test_loopback_sweep_records_one_result_per_host(nw: Netwatch) -> None:
    """End to end: the real process and real ICMP to loopback, on both databases."""
    nw.write_config([
        {"name": "lo-1", "address": "127.0.0.1", "account": "1234"},
        {"name": "lo-2", "address": "127.0.0.2"},
        {"name": "by-name", "address": "localhost"},
        {"name": "no-dns", "address": "router-centro.invalid"},
    ])
    done = nw.sweep()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = {r["host_name"]: r for r in nw.checks()}
    assert {name: r["status"] for name, r in results.items()} == {
        "lo-1": "ok", "lo-2": "ok", "by-name": "ok", "no-dns": "failed"}
    assert results["lo-1"]["sent"] == results["lo-1"]["received"] == 2
    lo1 = results["lo-1"]
    assert 0 <= lo1["rtt_min_us"] <= lo1["rtt_avg_us"] <= lo1["rtt_max_us"] < 300_000
    assert results["by-name"]["received"] == 2
    assert "DNS" in results["no-dns"]["error"]
    assert results["no-dns"]["rtt_avg_us"] is None
    states = {h["name"]: h["status"] for h in nw.rows("hosts")}
    assert states == {"lo-1": "online", "lo-2": "online", "by-name": "online", "no-dns": "offline"}
    assert nw.outbox() == []
    runs = nw.rows("job_runs")
    assert [(r["job"], r["outcome"], r["exit_code"]) for r in runs] == [("ping-sweep", "ok", 0)]
    assert "ping-sweep finished" in done.stderr and "hosts=4" in done.stderr


@requires_netns
@pytest.mark.netns
def test_offline_online_cycle_reaches_sigma_once_each(nw: Netwatch, fake: FakeApis) -> None:
    with netns_lab("nwcyc") as lab:
        address = lab.add_live()
        nw.write_config([{"name": "router-loja-centro", "address": address, "account": "1234"}],
                        thresholds={"down_after": 2, "up_after": 2}, **_apis(fake))
        outcomes = []
        for step in ["up", "up", "down", "down", "down", "up", "up", "up"]:
            if step == "down":
                lab.set_down(address)
            else:
                lab.set_up(address)
            done = nw.sweep()
            outcomes.append(done.returncode)
            assert "Traceback" not in done.stderr
    assert outcomes == [0] * 8
    events = fake.sigma_events()
    assert [e["type"] for e in events] == ["HOST_OFFLINE", "HOST_ONLINE"]
    offline = events[0]
    assert offline["account"] == "1234"
    assert (offline["partition"], offline["zone"]) == ("01", "003")
    assert offline["code"] == "E356"
    assert offline["host"] == {"name": "router-loja-centro", "address": address}
    assert offline["description"] == "router-loja-centro unreachable: 2 consecutive failed checks"
    assert offline["occurredAt"].endswith("Z")
    assert events[1]["code"] == "R356"
    posts = fake.requests_to("POST", "/v1/events")
    assert len(posts) == 2
    assert all(p.headers["authorization"] == f"Bearer {TOKEN}" for p in posts)
    assert len({p.headers["idempotency-key"] for p in posts}) == 2
    assert len(fake.requests_to("GET", "/v1/accounts/1234")) == 1, "account details come from the cache"
    assert [(i.kind, i.status, i.attempts) for i in nw.outbox()] == [("HOST_OFFLINE", "sent", 1),
                                                                    ("HOST_ONLINE", "sent", 1)]
    assert [h["status"] for h in nw.rows("hosts")] == ["online"]


def test_sigma_down_keeps_events_pending_then_delivers_once_in_order(nwi: InProcess, fake: FakeApis) -> None:
    first = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}]
    nwi.write_config(first, thresholds={"notify_initial": True}, **_apis(fake))
    fake.sigma_status = 503
    down = nwi.sweep()
    assert down.returncode == 1, down.stderr
    [pending] = nwi.outbox()
    assert (pending.status, pending.attempts, pending.http_status) == ("pending", 1, 503)
    assert fake.sigma_events() == []

    fake.sigma_status = None
    second = [*first, {"name": "lo-2", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "002"}]
    nwi.write_config(second, thresholds={"notify_initial": True}, **_apis(fake))
    back = nwi.sweep()
    assert back.returncode == 0, back.stderr
    again = nwi.sweep()
    assert again.returncode == 0, again.stderr
    events = fake.sigma_events()
    assert [(e["host"]["name"], e["type"]) for e in events] == [("lo-1", "HOST_ONLINE"), ("lo-2", "HOST_ONLINE")]
    assert [(i.subject, i.status, i.attempts) for i in nwi.outbox()] == [("lo-1", "sent", 2), ("lo-2", "sent", 1)]
    assert TOKEN not in down.stderr + back.stderr


def test_event_is_dead_after_max_attempts(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "1"}],
                    thresholds={"notify_initial": True}, **_apis(fake, max_attempts=2))
    fake.sigma_status = 500
    assert nwi.sweep().returncode == 1
    last = nwi.sweep()
    assert last.returncode == 1
    assert "dead after 2 attempts" in last.stderr
    assert [(i.status, i.attempts) for i in nwi.outbox()] == [("dead", 2)]
    fake.sigma_status = None
    assert nwi.sweep().returncode == 0
    assert fake.sigma_events() == []


def test_refused_event_is_failed_and_not_retried(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "1"}],
                    thresholds={"notify_initial": True}, **_apis(fake))
    fake.sigma_status = 400
    assert nwi.sweep().returncode == 1
    fake.sigma_status = None
    assert nwi.sweep().returncode == 0
    assert [(i.status, i.http_status) for i in nwi.outbox()] == [("failed", 400)]
    assert len(fake.requests_to("POST", "/v1/events")) == 1


def test_unknown_account_is_enriched_as_unknown(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "7777"}],
                    thresholds={"notify_initial": True}, **_apis(fake))
    done = nwi.sweep()
    assert done.returncode == 0, done.stderr
    [event] = fake.sigma_events()
    assert (event["account"], event["partition"], event["zone"]) == ("7777", "unknown", "unknown")


def test_segware_down_keeps_event_pending(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234"}],
                    thresholds={"notify_initial": True}, **_apis(fake))
    fake.accounts_status = 503
    done = nwi.sweep()
    assert done.returncode == 69, done.stderr
    assert "held back" in done.stderr and "Traceback" not in done.stderr
    assert "ping-sweep finished" in done.stderr and "hosts=1" in done.stderr and "exit_code=69" in done.stderr
    [run] = nwi.rows("job_runs")
    assert (run["outcome"], run["exit_code"], json.loads(run["counts"])["hosts"]) == ("failed", 69, 1)
    assert "held back" in run["error"]
    [item] = nwi.outbox()
    assert item.status == "pending"
    assert "enrichment" in (item.last_error or "")
    fake.accounts_status = None
    assert nwi.sweep().returncode == 0
    assert [(e["partition"], e["zone"]) for e in fake.sigma_events()] == [("01", "003")]


def test_without_sink_events_are_recorded_undelivered(nwi: InProcess) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1"}], thresholds={"notify_initial": True})
    done = nwi.sweep()
    assert done.returncode == 0, done.stderr
    assert "undelivered: no sink configured" in done.stderr
    assert [(i.status, i.last_error) for i in nwi.outbox()] == [("undelivered", "no sink configured")]


def test_rejected_token_stops_with_78_and_keeps_the_event(nwi: InProcess, fake: FakeApis) -> None:
    nwi.env["NETWATCH_SIGMA_TOKEN"] = "wrong-token-value-789"
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "1"}],
                    thresholds={"notify_initial": True}, **_apis(fake))
    done = nwi.sweep()
    assert done.returncode == 78
    assert "NETWATCH_SIGMA_TOKEN" in done.stderr
    assert "wrong-token-value-789" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert [(i.status, i.attempts) for i in nwi.outbox()] == [("pending", 0)]
    assert [r["outcome"] for r in nwi.rows("job_runs")] == ["failed"]
    assert all(r["holder"] is None for r in nwi.rows("leases"))


def test_two_sweeps_at_once_one_acts_the_other_exits_75(nw: Netwatch, fake: FakeApis) -> None:
    """Two real processes; the first is held inside its delivery (so inside its lease) until the second is done."""
    nw.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "1"}],
                    thresholds={"notify_initial": True}, **_apis(fake))
    delivery = fake.hold("POST", "/v1/events")
    first = nw.start("run", "ping-sweep")
    try:
        assert delivery.arrived.wait(30), "the first run never reached its delivery"
        second = nw.sweep()
    finally:
        delivery.release()
    _, err = first.communicate(timeout=30)
    assert second.returncode == 75, second.stderr
    assert "another run holds the ping-sweep:0/1 lease" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err
    assert len(nw.rows("checks")) == 1
    assert sorted((r["outcome"], r["exit_code"]) for r in nw.rows("job_runs")) == [("lease_held", 75), ("ok", 0)]


def test_a_sweep_while_another_run_holds_the_lease_exits_75_and_the_next_one_acts(
    nwi: InProcess, engine: Engine
) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1"}])
    other = Lease(engine, "ping-sweep:0/1", "another-run", 120, server_now)
    assert other.try_acquire()
    held = nwi.sweep()
    assert held.returncode == 75, held.stderr
    assert "another run holds the ping-sweep:0/1 lease (another-run, until " in held.stderr
    assert nwi.rows("checks") == [] and nwi.sweep_plan.calls == []
    other.release()
    done = nwi.sweep()
    assert done.returncode == 0, done.stderr
    assert len(nwi.rows("checks")) == 1
    assert sorted((r["outcome"], r["exit_code"]) for r in nwi.rows("job_runs")) == [("lease_held", 75), ("ok", 0)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_sweep_writes_nothing_and_releases_the_lease(nw: Netwatch, signum: int, code: int) -> None:
    nw.write_config([{"name": "lo-1", "address": "127.0.0.1"}, {"name": "lo-2", "address": "127.0.0.2"}],
                    ping={"count": 5, "interval_ms": 1000}, thresholds={"notify_initial": True})
    running = nw.start("run", "ping-sweep")
    nw.wait_for_running("ping-sweep")  # its sweep of 5 requests 1 s apart has begun
    started = time.monotonic()
    code_seen, err = terminate(running, signum=signum)
    assert code_seen == code, err
    assert time.monotonic() - started < 5
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert "Traceback" not in err
    assert nw.rows("checks") == []
    assert nw.rows("hosts") == []
    assert nw.outbox() == []
    assert [(r["outcome"], r["exit_code"]) for r in nw.rows("job_runs")] == [("stopped", code)]
    assert all(r["holder"] is None for r in nw.rows("leases"))
    nw.write_config([{"name": "lo-1", "address": "127.0.0.1"}, {"name": "lo-2", "address": "127.0.0.2"}],
                    thresholds={"notify_initial": True})
    after = nw.sweep()
    assert after.returncode == 0, after.stderr
    assert len(nw.rows("checks")) == 2
    assert len(nw.outbox()) == 2


def test_shards_split_hosts_and_hold_separate_leases(nwi: InProcess) -> None:
    hosts = [{"name": f"h{i}", "address": f"127.0.1.{i}"} for i in range(1, 21)]
    nwi.write_config(hosts)
    for index in range(3):
        done = nwi.run("run", "ping-sweep", "--shard", f"{index}/3")
        assert done.returncode == 0, done.stderr
    names = sorted(str(r["host_name"]) for r in nwi.checks())
    assert names == sorted(h["name"] for h in hosts)
    assert sorted(r["name"] for r in nwi.rows("leases")) == ["outbox-delivery:0/1"] + [f"ping-sweep:{i}/3"
                                                                                        for i in range(3)]


def test_statements_per_run_do_not_grow_with_hosts(
    db_url: str, engine: Engine, tmp_path: Path, fake: FakeApis
) -> None:
    counts = []
    for size in (3, 5, 300):  # the first run also creates the lease rows: a warm-up
        hosts = [{"name": f"h{size}-{i}", "address": f"127.2.{i // 250}.{i % 250 + 1}", "account": f"a{i % 3}-{size}"}
                 for i in range(size)]
        config = parse_config(
            {"database": {"url": db_url}, "hosts": hosts,
             "ping": {"count": 1, "timeout_seconds": 0.5, "interval_ms": 0, "rate_limit_pps": 10000, "retries": 0},
             "thresholds": {"down_after": 1, "up_after": 1, "notify_initial": True, "min_transition_seconds": 0},
             **_apis(fake)},
            "test", tmp_path, {})
        # Outcomes stored once, at the end: a background store during a longer delivery (every
        # second) would make the count depend on the machine's speed, not on the hosts.
        deps = replace(build_deps(config, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN},
                                  StopFlag(), Redactor()), store_every_s=3600)
        with count_statements(deps.engine) as counter:
            assert run_ping_sweep(config, deps, Shard()) == 0
        counts.append(counter.value)
        deps.engine.dispose()
    assert counts[1] == counts[2], counts
    assert len(fake.sigma_events()) == 308


def _folder_anyone_may_write() -> tempfile.TemporaryDirectory[str]:
    # Not under pytest's tmp_path: uid 65534 may not pass through its parents.
    return tempfile.TemporaryDirectory(prefix="nwjob-")


def _unprivileged_setup(folder: Path, hosts: list[dict[str, str]], **ping: str) -> tuple[Netwatch, Path]:
    """A config of `hosts` on SQLite in `folder`, which uid 65534 may write in (else it would exit 78)."""
    folder.chmod(0o1777)
    nw = Netwatch(folder, f"sqlite:///{folder}/nw.db", {})
    return nw, nw.write_config(hosts, ping=ping)


def _sweep_in(namespace: str, config: Path, unprivileged: bool) -> subprocess.CompletedProcess[str]:
    """`netwatch run ping-sweep` in `namespace`, as uid and gid 65534 without other groups when `unprivileged`."""
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if unprivileged else []
    env = {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}
    return subprocess.run(["ip", "netns", "exec", namespace, *drop, sys.executable, "-m", "netwatch", "run",
                           "ping-sweep", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


@requires_netns
@pytest.mark.parametrize(("unprivileged", "ping_group_range", "datagram"), [
    (True, ALL_GROUPS, 1), (False, ALL_GROUPS, 1), (False, NO_GROUP, 0)])
def test_sweep_uses_datagram_sockets_where_ping_group_range_allows_and_raw_ones_otherwise(
    unprivileged: bool, ping_group_range: str, datagram: int
) -> None:
    with (_folder_anyone_may_write() as shared, pinging_namespace("nwjsock", ping_group_range) as home,
          netns_lab("nwjsock", home=home) as lab):
        nw, config = _unprivileged_setup(Path(shared), [{"name": "router", "address": lab.add_live()},
                                                        {"name": "lo", "address": "127.0.0.1"}])

        done = _sweep_in(home, config, unprivileged)

        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        [summary] = [line for line in log_lines(done.stderr) if line.startswith("info: ping-sweep finished ")]
        assert f" icmp_datagram={datagram} " in f"{summary} "
        assert {h["name"]: h["status"] for h in nw.rows("hosts")} == {"router": "online", "lo": "online"}
        assert {c["host_name"]: c["received"] for c in nw.checks()} == {"router": 2, "lo": 2}
        [run] = nw.rows("job_runs")
        assert json.loads(run["counts"])["icmp_datagram"] == datagram
        runs = nw.run("runs")  # where an operator sees it
        assert runs.returncode == 0, runs.stderr
        assert f"icmp_datagram={datagram}" in runs.stdout


@requires_netns
@pytest.mark.parametrize(("ping_group_range", "ping", "refused"), [
    (NO_GROUP, {}, "an ICMP socket"),
    (ALL_GROUPS, {"socket": "raw"}, "a raw ICMP socket (ping.socket: raw)"),
])
def test_without_icmp_permission_exits_77_naming_both_ways_before_touching_the_database(
    ping_group_range: str, ping: dict[str, str], refused: str
) -> None:
    with _folder_anyone_may_write() as shared, pinging_namespace("nwj77", ping_group_range) as home:
        folder = Path(shared)
        _, config = _unprivileged_setup(folder, [{"name": "lo", "address": "127.0.0.1"}], **ping)

        done = _sweep_in(home, config, unprivileged=True)

        assert done.returncode == 77, done.stderr
        assert log_lines(done.stderr) == [
            f"info: ping-sweep started database=sqlite:///{folder}/nw.db config={config}",
            f"error: no permission for {refused}: raw sockets need root or CAP_NET_RAW, datagram sockets need "
            f"net.ipv4.ping_group_range to cover group 65534 (it is \"{ping_group_range}\")"]
        assert not (folder / "nw.db").exists()


@pytest.mark.parametrize("send_recovery", [True, False])
def test_host_notifications_respect_send_recovery(nwi: InProcess, send_recovery: bool) -> None:
    with webhook_receiver() as hook:
        nwi.write_config(
            [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "7"}],
            notifications={"webhook": {"url": f"http://127.0.0.1:{hook.server_port}/hook", "cooldown_seconds": 0,
                                       "send_recovery": send_recovery}},
        )
        for down in (False, True, False):
            if down:
                nwi.sweep_plan.set_down("lo-1")
            else:
                nwi.sweep_plan.set_up("lo-1")
            assert nwi.sweep().returncode == 0
    kinds = [(body["kind"], body["recovery"]) for _, body in hook.received]
    assert kinds == ([("host_offline", False), ("host_online", True)] if send_recovery else [("host_offline", False)])
    headers, online = hook.received[-1]
    assert online["title"] == ("ONLINE: lo-1 (127.0.0.1)" if send_recovery else "OFFLINE: lo-1 (127.0.0.1)")
    assert online["data"]["zone"] == "7"
    assert headers["Idempotency-Key"].startswith("webhook-nw-")


def test_an_event_of_a_host_without_an_account_names_the_account_unknown(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "partition": "01", "zone": "002"}],
                     thresholds={"notify_initial": True}, **_apis(fake))
    assert nwi.sweep().returncode == 0
    [event] = fake.sigma_events()
    assert (event["account"], event["partition"], event["zone"]) == ("unknown", "01", "002")
    assert fake.requests_to("GET", "/v1/accounts/unknown") == []


@requires_netns
def test_ipv6_hosts_are_swept_with_ipv4_ones_and_keep_their_configured_address(nw: Netwatch) -> None:
    """End to end: ::1, unique-local namespace hosts and IPv4 loopback in one real sweep."""
    with netns_lab("nwjv6", family=6) as lab:
        live, silent = lab.add_live(), lab.add_silent()
        spelled = ipaddress.IPv6Address(live).exploded.upper()  # matched whatever the spelling
        nw.write_config([{"name": "lo6", "address": "0:0::1"}, {"name": "ula", "address": spelled},
                         {"name": "ula-silent", "address": silent}, {"name": "lo4", "address": "127.0.0.1"}])

        done = nw.sweep()

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert {h["name"]: (h["address"], h["status"]) for h in nw.rows("hosts")} == {
        "lo6": ("0:0::1", "online"), "ula": (spelled, "online"), "ula-silent": (silent, "offline"),
        "lo4": ("127.0.0.1", "online")}
    checks = {c["host_name"]: c for c in nw.checks()}
    assert {name: c["received"] for name, c in checks.items()} == {"lo6": 2, "ula": 2, "ula-silent": 0, "lo4": 2}
    assert checks["ula-silent"]["error"] == "no reply"


def _names(silent_ipv4: str) -> dict[str, list[str]]:
    """What the system resolver would answer: a dual-stack name whose IPv4 address never answers."""
    return {"dual.test": [silent_ipv4, "::1"], "v6only.test": ["::1"], "v4only.test": ["127.0.0.1"]}


@requires_netns
@pytest.mark.parametrize(("family", "expected"), [
    ("auto", {"dual": ("failed", "no reply"), "v6only": ("ok", None), "v4only": ("ok", None)}),
    ("6", {"dual": ("ok", None), "v6only": ("ok", None),
           "v4only": ("failed", "DNS: no IPv6 address (v4only.test)")}),
    ("4", {"dual": ("failed", "no reply"), "v6only": ("failed", "DNS: no IPv4 address (v6only.test)"),
           "v4only": ("ok", None)}),
])
def test_address_family_picks_the_address_of_each_name(
    db_url: str, engine: Engine, tmp_path: Path, family: str, expected: dict[str, tuple[str, str | None]]
) -> None:
    """auto: a name's IPv4 address when it has one, else its IPv6 one; 4 and 6 force the family."""
    with netns_lab("nwjfam") as lab:
        names = _names(lab.add_silent())

        def lookup(name: str) -> list[str]:
            if name not in names:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return names[name]

        hosts = [{"name": name.split(".")[0], "address": name} for name in names]
        config = parse_config({"database": {"url": db_url}, "hosts": hosts,
                               "ping": {**FAST_PING, "address_family": family}}, "test", tmp_path, {})
        deps = replace(build_deps(config, {}, StopFlag(), Redactor()),
                       resolve=lambda wanted, workers, chosen: resolve_all(wanted, workers, family=chosen,
                                                                           lookup=lookup))
        try:
            assert run_ping_sweep(config, deps, Shard()) == 0
        finally:
            deps.engine.dispose()

    with engine.begin() as conn:
        found = {c["host_name"]: (c["status"], c["error"]) for c in named_checks(conn)}
    assert found == expected
