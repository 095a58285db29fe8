"""`netwatch doctor`: real databases, loopback Segware and Sigma servers, the kernel's ICMP sockets."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import TOKEN
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from netwatch import doctor
from netwatch.clients.http import make_session
from netwatch.config import load_config
from netwatch.db import tables
from netwatch.db.clock import server_now
from netwatch.db.engine import build_engine
from netwatch.errors import NoPermission
from netwatch.probes.icmp import require_permission

# Only ping-sweep is watched, so a healthy set-up is one whose ping-sweep ran.
ONLY_PING_SWEEP = {"stale_after_minutes": {"event-scan": None, "alert-clear": None, "cleanup": None}}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def findings(nwi: InProcess) -> tuple[int, dict[str, tuple[str, str]], str]:
    done = nwi.run("doctor", "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0)
    return done.returncode, {c["check"]: (c["result"], c["detail"]) for c in report["checks"]}, done.stdout


def configure(nwi: InProcess, fake: FakeApis, **sections: Any) -> None:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}], segware={"base_url": fake.url},
                     sigma={"base_url": fake.url}, status_page=ONLY_PING_SWEEP, **sections)


def test_a_working_set_up_passes_and_nothing_is_sent(nwi: InProcess, fake: FakeApis) -> None:
    configure(nwi, fake)
    assert nwi.sweep().returncode == 0
    code, found, stdout = findings(nwi)
    assert code == 0, found
    assert {name: result for name, (result, _) in found.items()} == {
        "config": "pass", "database": "pass", "schema": "pass", "clock": "pass",
        "last run: ping-sweep": "pass", "last run: event-scan": "skip", "last run: alert-clear": "skip",
        "last run: cleanup": "skip", "last run: status-page": "skip", "last run: http-check": "skip",
        "segware": "pass", "sigma": "pass", "icmp": "pass"}
    assert found["schema"][1].startswith("version ") and "(current)" in found["schema"][1]
    assert "raw IPv4 allowed" in found["icmp"][1]
    assert " sockets for IPv4 (ping.socket: auto); " in found["icmp"][1]
    # Segware: one read of at most one event with the token; Sigma: no event posted.
    [read] = fake.requests_to("GET", "/v1/events")
    assert read.headers["authorization"] == f"Bearer {TOKEN}" and "size=1" in read.query
    assert fake.requests_to("POST", "/v1/events") == []
    assert TOKEN not in stdout
    table = nwi.run("doctor").stdout.splitlines()
    assert table[0].startswith("PASS  config: ") and len(table) == len(found)


def test_a_refused_token_and_an_unreachable_api_fail(nwi: InProcess) -> None:
    with FakeApis(token="another-token") as other:
        nwi.write_config([], segware={"base_url": other.url},
                         sigma={"base_url": f"http://127.0.0.1:{closed_port()}"}, status_page=ONLY_PING_SWEEP)
        code, found, stdout = findings(nwi)
    assert code == 1
    assert found["segware"][0] == "fail" and "401" in found["segware"][1]
    assert found["sigma"][0] == "fail" and "unreachable (ConnectionError)" in found["sigma"][1]
    assert TOKEN not in stdout
    assert found["icmp"][0] == "skip"  # no hosts to ping


def test_a_database_without_the_schema_or_out_of_reach_fails(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    else:
        build_engine(db_url).dispose()  # the database exists, empty
    nwi = InProcess(tmp_path, db_url, {})
    nwi.write_config([])
    code, found, _ = findings(nwi)
    assert code == 1
    assert found["database"][0] == "pass"
    assert found["schema"] == ("fail", "no netwatch schema: run `netwatch db init` (SQLite: the first job run "
                                       "creates it)")
    down = InProcess(tmp_path, f"mysql+pymysql://netwatch:password123@127.0.0.1:{closed_port()}/nw", {})
    down.write_config([])
    code, found, stdout = findings(down)
    assert code == 1 and found["database"][0] == "fail"
    assert "password123" not in stdout
    assert found["schema"] == ("skip", "needs the database")


@pytest.mark.parametrize(("hosts", "address_family", "families"), [
    (["::1"], "auto", "IPv6"), (["127.0.0.1", "::1"], "auto", "IPv4 and IPv6"),
    (["localhost"], "auto", "IPv4 and IPv6"), (["localhost"], "6", "IPv6"),
])
def test_the_icmp_check_covers_the_families_ping_sweep_would_need(
    nwi: InProcess, fake: FakeApis, hosts: list[str], address_family: str, families: str
) -> None:
    """Like ping-sweep's own check: a name may resolve to either family under auto."""
    nwi.write_config([{"name": f"h{n}", "address": address} for n, address in enumerate(hosts)],
                     segware={"base_url": fake.url}, sigma={"base_url": fake.url}, status_page=ONLY_PING_SWEEP,
                     ping={"address_family": address_family})

    _code, found, _stdout = findings(nwi)

    assert found["icmp"][0] == "pass"
    assert f" sockets for {families} (ping.socket: auto); " in found["icmp"][1]


def test_a_stale_job_a_clock_off_and_no_icmp_permission_fail(nwi: InProcess, engine: Engine) -> None:
    path = nwi.write_config([{"name": "lo", "address": "127.0.0.1"}], status_page=ONLY_PING_SWEEP)
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    with engine.begin() as conn:
        conn.execute(insert(tables.job_runs).values(
            job="ping-sweep", shard="0/1", holder="seed", started_at=three_hours_ago, finished_at=three_hours_ago,
            outcome="ok"))
    config = load_config(path, {})

    def refused(_preference: str, _families: Sequence[int]) -> str:
        raise NoPermission("no permission for an ICMP socket: raw sockets need root or CAP_NET_RAW")

    with make_session() as session:
        deps = doctor.DoctorDeps(
            open_engine=lambda: build_engine(config.database_url, config.database_key, read_only=True),
            session=session, clock=lambda: datetime.now(UTC) + timedelta(minutes=5), server_clock=server_now,
            ping_permission=refused, icmp_kinds=doctor.icmp_kinds)
        found = {f.check: (f.result, f.detail) for f in doctor.diagnose(config, {}, deps)}
    assert found["last run: ping-sweep"] == ("fail", "last success 3 h ago (stale after 10 min)")
    assert found["clock"][0] == "fail" and "tolerance" in found["clock"][1]
    assert found["icmp"][0] == "fail" and found["icmp"][1].startswith("no permission for an ICMP socket")


def test_a_config_that_does_not_load_is_a_failed_check(nwi: InProcess) -> None:
    (nwi.tmp_path / "netwatch.yaml").write_text("ping: {count: 0}\n", encoding="utf-8")
    code, found, _ = findings(nwi)
    assert code == 1
    assert found["config"][0] == "fail" and "ping.count" in found["config"][1]
    assert found["everything else"] == ("skip", "needs a config that loads")


@pytest.mark.skipif(os.geteuid() != 0, reason="shows what root may open")
def test_the_icmp_kinds_are_what_the_kernel_allows() -> None:
    kinds = doctor.icmp_kinds()
    assert list(kinds) == ["raw IPv4", "datagram IPv4", "raw IPv6", "datagram IPv6"]
    assert kinds["raw IPv4"] is None
    assert require_permission("raw") == "raw"
