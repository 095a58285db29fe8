"""`netwatch run http-check`: real HTTP(S) and TCP servers on loopback, a loopback Sigma, both databases.

Most runs go through the CLI in this process (tests/inproc.py) with a hand-stepped clock; one runs
the real process, to see its whole stderr (no stray warning lines) and exit code.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from fakeapi import FakeApis
from inproc import Clock, InProcess
from jobkit import TOKEN, Netwatch, log_lines, webhook_receiver
from serviceserver import PASSWORD, USER, ServiceServer
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine

from netwatch.config import parse_config
from netwatch.db import migrate, tables
from netwatch.db.engine import build_engine, count_statements
from netwatch.deps import build_deps
from netwatch.encryption import encrypt, generate_key, parse_key
from netwatch.jobs.http_check import run_http_check
from netwatch.logs import Redactor
from netwatch.running.stopflag import StopFlag
from netwatch.shard import Shard

KEY = generate_key()
THRESHOLDS = {"down_after": 2, "up_after": 1, "min_transition_seconds": 0}


@contextmanager
def listening() -> Iterator[int]:
    """A loopback TCP port that accepts connections (the kernel completes them from the backlog)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1024)
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(run: Netwatch, *, http_checks: list[dict[str, Any]] | None = None,
                 tcp_checks: list[dict[str, Any]] | None = None, hosts: list[dict[str, Any]] | None = None,
                 **sections: Any) -> None:
    path = run.write_config(hosts or [], thresholds=THRESHOLDS, **sections)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["http_checks"], config["tcp_checks"] = http_checks or [], tcp_checks or []
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def check_ok(run: InProcess, *args: str) -> str:
    assert run.clock is not None
    run.clock.advance(60)
    done = run.run("run", "http-check", *args)
    assert done.returncode == 0, done.stderr
    return done.stderr


def hosts_rows(run: Netwatch) -> dict[str, dict[str, Any]]:
    return {str(row["name"]): dict(row) for row in run.rows("hosts")}


def test_a_check_goes_down_and_up_with_events_and_notices(nwi: InProcess, fake: FakeApis) -> None:
    nwi.clock = Clock()
    with ServiceServer() as web, listening() as port, webhook_receiver() as hook:
        shop = {"name": "shop", "url": web.url + "/switch/shop", "client": "Acme", "account": "1234"}
        write_config(nwi, http_checks=[shop],
                     tcp_checks=[{"name": "db", "host": "127.0.0.1", "port": port, "client": "Acme"}],
                     sigma={"base_url": fake.url, "retry_backoff_seconds": 0},
                     notifications={"webhook": {"url": f"http://127.0.0.1:{hook.server_port}/nw",
                                                "cooldown_seconds": 0}})
        check_ok(nwi)  # the first status of both: online, not notified
        web.switch["shop"] = 500
        check_ok(nwi)  # one failure: down_after is 2
        assert fake.sigma_events() == []
        check_ok(nwi)
        web.switch["shop"] = 200
        check_ok(nwi)

        events = fake.sigma_events()
        assert [(e["code"], e["type"], e["host"]) for e in events] == [
            ("E357", "HOST_OFFLINE", {"name": "shop", "address": web.url + "/switch/shop"}),
            ("R357", "HOST_ONLINE", {"name": "shop", "address": web.url + "/switch/shop"})]
        assert events[0]["account"] == "1234"
        assert events[0]["description"] == "shop down: status 500 (expected 200-399) (2 consecutive failed checks)"
        notices = [body for _, body in hook.received]
        assert [(n["kind"], n["title"]) for n in notices] == [
            ("service_down", f"DOWN: shop ({shop['url']})"), ("service_up", f"UP: shop ({shop['url']})")]
        assert "failed 2 times in a row: status 500 (expected 200-399)" in notices[0]["body"]
        assert "Client Acme, account 1234." in notices[0]["body"]

    rows = hosts_rows(nwi)
    assert {name: (row["kind"], row["client"], row["status"]) for name, row in rows.items()} == {
        "shop": ("http", "Acme", "online"), "db": ("tcp", "Acme", "online")}
    assert rows["db"]["address"] == f"127.0.0.1:{port}"
    assert (rows["shop"]["last_status_code"], rows["shop"]["last_size_bytes"]) == (200, len(b"switch shop: 200"))
    history = [(r["host_name"], r["status"], r["error"]) for r in nwi.checks() if r["host_name"] == "shop"]
    assert history == [("shop", "ok", None), ("shop", "failed", "status 500 (expected 200-399)"),
                       ("shop", "failed", "status 500 (expected 200-399)"), ("shop", "ok", None)]
    transitions = nwi.rows("transitions")
    assert len(transitions) == 4  # two first statuses, down, up


def test_the_last_failed_answer_is_shown_by_status_grouped_by_client(nwi: InProcess) -> None:
    nwi.clock = Clock()
    with ServiceServer() as web, listening() as port:
        write_config(nwi, hosts=[{"name": "router", "address": "127.0.0.1"}],
                     http_checks=[{"name": "b-api", "url": web.url + "/status/503", "client": "Beta"},
                           {"name": "a-site", "url": web.url + "/ok", "client": "Acme"}],
                     tcp_checks=[{"name": "z-db", "host": "127.0.0.1", "port": port, "client": "Acme"}])
        check_ok(nwi)
        assert nwi.sweep().returncode == 0
    status = json.loads(nwi.run("status", "--json").stdout)
    assert [(row["name"], row["kind"], row["client"]) for row in status] == [
        ("router", "host", None), ("a-site", "http", "Acme"), ("z-db", "tcp", "Acme"), ("b-api", "http", "Beta")]
    api = next(row for row in status if row["name"] == "b-api")
    assert (api["last_check"], api["status_code"], api["reason"]) == ("failed", 503, "status 503 (expected 200-399)")
    assert api["excerpt"] == "status 503 from the server second line"
    only_tcp = json.loads(nwi.run("status", "--json", "--kind", "tcp").stdout)
    assert [row["name"] for row in only_tcp] == ["z-db"]
    table = nwi.run("status", "--kind", "http", "--kind", "host").stdout.splitlines()
    assert [line.split()[0] for line in table] == ["name", "router", "a-site", "b-api"]


def test_reports_cover_checks_by_client_and_kind(nwi: InProcess) -> None:
    nwi.clock = Clock()
    with ServiceServer() as web, listening() as port:
        write_config(nwi, hosts=[{"name": "router", "address": "127.0.0.1"}],
                     http_checks=[{"name": "shop", "url": web.url + "/switch/shop", "client": "Acme", "account": "1"},
                                  {"name": "api", "url": web.url + "/ok", "client": "Beta"}],
                     tcp_checks=[{"name": "db", "host": "127.0.0.1", "port": port, "client": "Acme"}])
        check_ok(nwi)  # 10:01, first status: online
        assert nwi.sweep().returncode == 0
        web.switch["shop"] = 500
        check_ok(nwi)
        check_ok(nwi)  # 10:03: the second failure confirms shop down
        web.switch["shop"] = 200
        check_ok(nwi)  # 10:04: up again
    day = ("--from", "2026-11-22", "--to", "2026-11-22")

    def report(*args: str) -> list[dict[str, Any]]:
        done = nwi.run("report", *args, "--json")
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout))

    by_client = report("uptime", *day, "--by", "client")
    # Clients by name, then what has none (the ping-sweep host).
    assert [(r["client"], r["hosts"], r["incidents"], r["downtime_s"]) for r in by_client] == [
        ("Acme", 2, 1, 60), ("Beta", 1, 0, 0), (None, 1, 0, 0)]
    assert report("uptime", *day, "--by", "client", "--from-raw") == by_client
    acme = report("uptime", *day, "--client", "Acme")
    assert [(r["host"], r["kind"], r["client"], r["account"], r["incidents"]) for r in acme] == [
        ("db", "tcp", "Acme", None, 0), ("shop", "http", "Acme", "1", 1)]
    assert [r["host"] for r in report("uptime", *day)] == ["router", "db", "shop", "api"]
    assert [r["host"] for r in report("uptime", *day, "--kind", "tcp", "--kind", "host")] == ["router", "db"]

    [incident] = report("incidents", "--client", "Acme")
    assert (incident["host"], incident["kind"], incident["client"], incident["duration_s"]) == (
        "shop", "http", "Acme", 60)
    assert incident["start"].startswith("2026-11-22T10:03") and incident["end"].startswith("2026-11-22T10:04")
    assert report("incidents", "--kind", "tcp") == [] and report("incidents", "--client", "Beta") == []
    daily = report("daily", "--date", "2026-11-22", "--client", "Acme", "--kind", "http")
    assert [(r["host"], r["checks"], r["good_checks"], r["incidents"]) for r in daily] == [("shop", 4, 2, 1)]
    shop = json.loads(nwi.run("history", "shop", "--since", "36500d", "--json").stdout)
    # Every check of the http-check runs, not only those at a ping-sweep run's time (10:01).
    assert [(row["at"][11:16], row["status"], row["reason"]) for row in shop if row["kind"] == "check"] == [
        ("10:04", "ok", None), ("10:03", "failed", "status 500 (expected 200-399)"),
        ("10:02", "failed", "status 500 (expected 200-399)"), ("10:01", "ok", None)]


def test_each_job_keeps_to_its_own_rows_and_removes_only_its_departed(nwi: InProcess) -> None:
    nwi.clock = Clock()
    with ServiceServer() as web, webhook_receiver() as hook:
        hook_config = {"webhook": {"url": f"http://127.0.0.1:{hook.server_port}/nw", "cooldown_seconds": 0}}
        host = {"name": "router", "address": "127.0.0.1"}
        down = {"name": "broken", "url": web.url + "/status/500", "client": "Acme"}
        up = {"name": "fine", "url": web.url + "/ok"}
        write_config(nwi, hosts=[host], http_checks=[down, up], notifications=hook_config)
        check_ok(nwi)
        check_ok(nwi)
        assert nwi.sweep().returncode == 0
        assert {name: row["status"] for name, row in hosts_rows(nwi).items()} == {
            "router": "online", "broken": "offline", "fine": "online"}

        write_config(nwi, hosts=[], http_checks=[down, up], notifications=hook_config)
        assert nwi.sweep().returncode == 0  # removes the host, not the checks
        assert sorted(hosts_rows(nwi)) == ["broken", "fine"]
        write_config(nwi, hosts=[host], http_checks=[], notifications=hook_config)
        assert nwi.sweep().returncode == 0
        stderr = check_ok(nwi)  # removes both checks, not the host
        assert sorted(hosts_rows(nwi)) == ["router"]
        assert "info: removed 2 checks no longer in the inventory: broken, fine" in log_lines(stderr)

        removed = [body for _, body in hook.received if body["kind"] == "service_removed"]
        assert [(m["subject"], m["title"]) for m in removed] == [
            ("broken", f"REMOVED: broken ({web.url}/status/500) from monitoring")]
        assert "Client Acme" in removed[0]["body"]


def test_shards_split_the_checks_with_their_own_leases(nwi: InProcess) -> None:
    nwi.clock = Clock()
    with listening() as port:
        write_config(nwi, tcp_checks=[{"name": f"t{i}", "host": "127.0.0.1", "port": port} for i in range(12)])
        for index in range(3):
            check_ok(nwi, "--shard", f"{index}/3")
    names = sorted(str(row["host_name"]) for row in nwi.checks())
    assert names == sorted(f"t{i}" for i in range(12))
    leases = sorted(str(row["name"]) for row in nwi.rows("leases"))
    assert [name for name in leases if name.startswith("http-check")] == [f"http-check:{i}/3" for i in range(3)]


def test_the_basic_auth_password_is_sent_and_never_stored_or_logged(nwi: InProcess, tmp_path: Path) -> None:
    nwi.clock = Clock()
    nwi.env["NETWATCH_ENCRYPTION_KEY"] = KEY
    wrong = "Wrong-Password-9931"
    with ServiceServer() as web:
        write_config(nwi, http_checks=[
            {"name": "good", "url": web.url + "/auth", "username": USER,
             "password_encrypted": encrypt(PASSWORD, parse_key(KEY))},
            {"name": "bad", "url": web.url + "/auth", "username": USER,
             "password_encrypted": encrypt(wrong, parse_key(KEY))}])
        done = nwi.run("run", "http-check", "--log-level", "debug")
        assert done.returncode == 0, done.stderr
        assert len(web.seen) == 2 and all("Authorization" in seen.headers for seen in web.seen)
    status = {row["name"]: row for row in json.loads(nwi.run("status", "--json").stdout)}
    assert (status["good"]["last_check"], status["bad"]["last_check"]) == ("ok", "failed")
    assert status["bad"]["excerpt"] is None, "the 401 page echoes the credentials: never quoted"
    engine = build_engine(nwi.db_url)
    try:
        with engine.begin() as conn:
            dumped = repr([conn.execute(select(table)).all() for table in tables.metadata.sorted_tables])
    finally:
        engine.dispose()
    for secret in (PASSWORD, wrong):
        assert secret not in done.stderr + done.stdout + dumped + json.dumps(status)


def test_a_password_that_does_not_decrypt_stops_the_run_before_any_work(nwi: InProcess) -> None:
    nwi.env["NETWATCH_ENCRYPTION_KEY"] = generate_key()
    write_config(nwi, http_checks=[{"name": "web", "url": "http://127.0.0.1:1/", "username": USER,
                             "password_encrypted": encrypt(PASSWORD, parse_key(KEY))}])

    done = nwi.run("run", "http-check")

    assert done.returncode == 78
    [line] = log_lines(done.stderr)[1:]
    assert line.startswith("error: ") and "HTTP check 'web': password_encrypted does not decrypt" in line
    assert nwi.rows("job_runs") == [] and nwi.rows("hosts") == []


def test_a_check_that_hangs_cannot_hold_the_run_past_its_deadline(nwi: InProcess) -> None:
    nwi.clock = Clock()
    with ServiceServer() as web:
        write_config(nwi, http_checks=[{"name": "stuck", "url": web.url + "/hang", "timeout_seconds": 60},
                                {"name": "fine", "url": web.url + "/ok"}],
                     http={"run_deadline_seconds": 3})
        check_ok(nwi)
    checks = {str(row["host_name"]): row for row in nwi.checks()}
    assert checks["fine"]["status"] == "ok", checks["fine"]["error"]
    assert checks["stuck"]["status"] == "failed"
    assert str(checks["stuck"]["error"]).startswith("timeout: the run's deadline came after")


def test_statements_per_run_do_not_grow_with_the_checks(db_url: str, engine: Engine, tmp_path: Path,
                                                       fake: FakeApis) -> None:
    counts = []
    with listening() as port:
        refused = closed_port()
        for size in (3, 20, 200):  # the first run also creates the lease rows: a warm-up
            checks = [{"name": f"c{size}-{i}", "host": "127.0.0.1", "port": port if i % 2 else refused,
                       "account": f"a{i % 3}"} for i in range(size)]
            config = parse_config(
                {"database": {"url": db_url}, "hosts": [], "tcp_checks": checks,
                 "thresholds": {"down_after": 1, "up_after": 1, "notify_initial": True, "min_transition_seconds": 0},
                 "sigma": {"base_url": fake.url, "retry_backoff_seconds": 0}},
                "test", tmp_path, {})
            deps = replace(build_deps(config, {"NETWATCH_SIGMA_TOKEN": TOKEN}, StopFlag(), Redactor()),
                           store_every_s=3600)
            with count_statements(deps.engine) as counter:
                assert run_http_check(config, deps, Shard(), {}) == 0
            counts.append(counter.value)
            deps.engine.dispose()
    assert counts[1] == counts[2], counts
    assert len(fake.sigma_events()) == 223


def test_upgrade_to_7_makes_every_stored_host_a_ping_sweep_host(db_url: str) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    engine = build_engine(db_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, at)
            conn.execute(tables.hosts.insert().values(name="router", address="127.0.0.1", status="online",
                                                      consecutive_failures=0, consecutive_successes=3, held=False))
            for column in ("kind", "client", "last_status_code", "last_size_bytes", "last_excerpt"):
                conn.execute(text(f"ALTER TABLE hosts DROP COLUMN {column}"))
            conn.execute(delete(tables.schema_version).where(tables.schema_version.c.version >= 7))
        with engine.begin() as conn:
            assert migrate.upgrade(conn, at) == [7, 8]
            row = conn.execute(select(tables.hosts)).mappings().one()
    finally:
        engine.dispose()
    assert (row["name"], row["kind"], row["client"], row["consecutive_successes"]) == ("router", "host", None, 3)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def test_down_and_up_through_the_real_process(nw: Netwatch, fake: FakeApis, authority: trustme.CA,
                                              tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    leaf = authority.issue_cert("127.0.0.1")
    with ServiceServer(tls=leaf) as web:
        url = web.url + "/switch/shop"
        write_config(nw, http_checks=[{"name": "shop", "url": url, "ca_file": str(ca_file), "client": "Acme"},
                               {"name": "unverified", "url": web.url + "/ok", "verify_tls": False}],
                     sigma={"base_url": fake.url, "retry_backoff_seconds": 0})
        runs = [nw.run("run", "http-check")]  # online first, not notified
        web.switch["shop"] = 502
        runs += [nw.run("run", "http-check") for _ in range(2)]
        web.switch["shop"] = 200
        runs.append(nw.run("run", "http-check"))
    for done in runs:
        assert done.returncode == 0, done.stderr
        lines = log_lines(done.stderr)  # every stderr line is a log line: no warning printed around them
        assert lines[-1].startswith("info: http-check finished"), lines
    assert [(e["code"], e["host"]["name"]) for e in fake.sigma_events()] == [("E357", "shop"), ("R357", "shop")]
    assert {name: row["status"] for name, row in hosts_rows(nw).items()} == {"shop": "online", "unverified": "online"}
