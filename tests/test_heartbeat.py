"""heartbeat.url: dead-man's-switch pings around every run, against a real loopback receiver."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from inproc import InProcess
from jobkit import TOKEN, serving
from sqlalchemy.engine import Engine

from netwatch.db.clock import server_now
from netwatch.errors import ExitCode
from netwatch.heartbeat import fill_in, template_problem
from netwatch.running.lease import Lease

KEY = "5f3c2a9e-hc-key"


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Ping)
        self.lock = threading.Lock()
        self.pings: list[tuple[str, str]] = []
        self.status = 200
        self.hang = threading.Event()
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/{KEY}"


class _Ping(BaseHTTPRequestHandler):
    server: _Receiver

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        [rid] = parse_qs(url.query)["rid"]
        with self.server.lock:
            self.server.pings.append((url.path, rid))
        if self.server.hang.is_set():
            self.server.released.wait(10)
            return
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on the pings."""


@contextmanager
def receiver() -> Iterator[_Receiver]:
    with serving(_Receiver()) as server:
        try:
            yield server
        finally:
            server.released.set()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sweep_with(nwi: InProcess, heartbeat: dict[str, Any]) -> tuple[int, str]:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}], heartbeat=heartbeat)
    done = nwi.sweep()
    return done.returncode, done.stderr


def test_a_run_pings_its_start_then_its_success_with_one_run_id(nwi: InProcess) -> None:
    with receiver() as hc:
        code, _ = sweep_with(nwi, {"url": hc.url + "/netwatch-{job}-{shard}"})
        second, _ = sweep_with(nwi, {"url": hc.url + "/netwatch-{job}-{shard}"})
    assert (code, second) == (0, 0)
    path = f"/{KEY}/netwatch-ping-sweep-0-of-1"
    assert [p for p, _ in hc.pings] == [f"{path}/start", path, f"{path}/start", path]
    rids = [rid for _, rid in hc.pings]
    # Start and end of a run pair up; each run has its own id.
    assert rids[0] == rids[1] and rids[2] == rids[3] and rids[0] != rids[2]


def test_a_shard_pings_a_url_of_its_own(nwi: InProcess) -> None:
    with receiver() as hc:
        nwi.write_config([{"name": "lo", "address": "127.0.0.1"}], heartbeat={"url": hc.url + "/{job}/{shard}"})
        assert nwi.run("run", "ping-sweep", "--shard", "1/2").returncode == 0
    assert [p for p, _ in hc.pings] == [f"/{KEY}/ping-sweep/1-of-2/start", f"/{KEY}/ping-sweep/1-of-2"]


def test_a_run_that_finds_the_lease_held_pings_nothing(nwi: InProcess, engine: Engine) -> None:
    assert Lease(engine, "ping-sweep:0/1", "another-run", 120, server_now).try_acquire()
    with receiver() as hc:
        code, _ = sweep_with(nwi, {"url": hc.url})
    assert code == ExitCode.LEASE_HELD
    assert hc.pings == []


def test_a_run_that_cannot_reach_its_database_pings_its_exit_code(tmp_path: Path) -> None:
    down = f"mysql+pymysql://netwatch:password123@127.0.0.1:{closed_port()}/nw"
    nwi = InProcess(tmp_path, down, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})
    with receiver() as hc:
        code, _ = sweep_with(nwi, {"url": hc.url})
    assert code == ExitCode.UNAVAILABLE
    # No start: the run never held its lease.
    assert [p for p, _ in hc.pings] == [f"/{KEY}/{int(ExitCode.UNAVAILABLE)}"]


def test_a_failing_heartbeat_never_fails_the_run_and_never_shows_its_url(nwi: InProcess) -> None:
    code, stderr = sweep_with(nwi, {"url": f"http://127.0.0.1:{closed_port()}/{KEY}"})
    assert code == 0
    lines = [line for line in stderr.splitlines() if "warning: heartbeat:" in line]
    assert len(lines) == 2 and "the start ping failed (ConnectionError)" in lines[0]
    assert "the success ping failed (ConnectionError)" in lines[1]
    with receiver() as hc:
        hc.status = 500
        code, stderr = sweep_with(nwi, {"url": hc.url})
    assert code == 0
    assert "heartbeat: the start ping got HTTP 500; the run goes on" in stderr
    assert KEY not in stderr


def test_a_heartbeat_that_does_not_answer_is_given_up_after_its_timeout(nwi: InProcess) -> None:
    with receiver() as hc:
        hc.hang.set()
        code, stderr = sweep_with(nwi, {"url": hc.url, "timeout_seconds": 0.2})
    assert code == 0
    assert [p for p, _ in hc.pings] == [f"/{KEY}/start", f"/{KEY}"]
    assert "the start ping failed (ReadTimeout)" in stderr and "the success ping failed (ReadTimeout)" in stderr


@pytest.mark.parametrize(("url", "problem"), [
    ("ftp://hc.example.invalid/k", "must start with http:// or https://"),
    ("https://hc.example.invalid/k/{host}", "unknown placeholder {host}: placeholders are {job} and {shard}"),
    ("https://hc.example.invalid/k/{job!r}", "unknown placeholder {job}"),
    ("https://hc.example.invalid/k/{job", "has an unmatched { or }"),
])
def test_a_bad_url_is_a_config_error_that_does_not_echo_it(nwi: InProcess, url: str, problem: str) -> None:
    nwi.write_config([], heartbeat={"url": url})
    done = nwi.sweep()
    assert done.returncode == ExitCode.CONFIG
    assert "heartbeat.url: " + problem in done.stderr
    assert "hc.example.invalid" not in done.stderr


def test_the_url_template_fills_in_job_and_shard() -> None:
    assert fill_in("https://h/k/{job}-{shard}", "http-check", "2/4") == "https://h/k/http-check-2-of-4"
    assert fill_in("https://h/k", "cleanup", "0/1") == "https://h/k"
    assert template_problem("https://h/k/{job}/{shard}") is None
