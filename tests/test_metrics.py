"""metrics.*: each run's Prometheus metrics, at a real loopback Pushgateway stand-in and in a textfile."""

from __future__ import annotations

import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from inproc import InProcess
from jobkit import TOKEN, serving
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from netwatch.db.clock import server_now
from netwatch.errors import ExitCode
from netwatch.running.lease import Lease

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class _Gateway(ThreadingHTTPServer):
    """Answers like a Pushgateway (200 to a PUT of a group) and keeps what was pushed."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Push)
        self.lock = threading.Lock()
        self.pushes: list[tuple[str, str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Push(BaseHTTPRequestHandler):
    server: _Gateway

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with self.server.lock:
            self.server.pushes.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the pushes."""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def samples(text: str) -> Samples:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


HOSTS = [{"name": "up-1", "address": "127.0.0.1"}, {"name": "down-1", "address": "127.0.0.2"}]


def test_a_run_pushes_its_figures_and_the_state_it_leaves(nwi: InProcess) -> None:
    webhook = {"url": f"http://127.0.0.1:{closed_port()}/hook", "cooldown_seconds": 0}
    nwi.write_config(HOSTS, notifications={"webhook": webhook})
    assert nwi.sweep().returncode == 0  # both online: a first status sends nothing
    nwi.sweep_plan.set_down("down-1")
    with serving(_Gateway()) as push:
        nwi.write_config(HOSTS, metrics={"pushgateway_url": push.url}, notifications={"webhook": webhook})
        done = nwi.sweep()
    # The notice of down-1 could not be delivered: exit 1, and the message waits in the outbox.
    assert done.returncode == ExitCode.DELIVERY_FAILED, done.stderr
    [(method, path, body)] = push.pushes
    assert (method, path) == ("PUT", "/metrics/job/netwatch-ping-sweep/shard/0-of-1")
    found = samples(body)
    assert found[("netwatch_run_exit_code", ())] == 1
    assert found[("netwatch_run_items", (("counted", "transitions"),))] == 1
    assert found[("netwatch_run_items", (("counted", "hosts"),))] == 2
    assert found[("netwatch_targets", (("kind", "host"), ("state", "online")))] == 1
    assert found[("netwatch_targets", (("kind", "host"), ("state", "offline")))] == 1
    [(open_status, count)] = [(dict(labels)["status"], value) for (name, labels), value in found.items()
                              if name == "netwatch_outbox_messages"]
    assert (open_status in ("pending", "failed"), count) == (True, 1)
    assert found[("netwatch_active_alerts", ())] == 0
    # A run with a delivery failure has still committed its work: it is the last success.
    assert found[("netwatch_last_success_timestamp_seconds", ())] > 0
    assert found[("netwatch_run_duration_seconds", ())] > 0


def test_a_textfile_per_job_and_shard_is_replaced_whole(nwi: InProcess) -> None:
    out = nwi.tmp_path / "textfiles"
    out.mkdir()
    nwi.write_config(HOSTS, metrics={"textfile_dir": str(out)})
    assert nwi.sweep().returncode == 0
    assert nwi.run("run", "ping-sweep", "--shard", "1/2").returncode == 0
    files = sorted(path.name for path in out.iterdir())
    assert files == ["netwatch-ping-sweep-0-of-1.prom", "netwatch-ping-sweep-1-of-2.prom"]
    whole = out / "netwatch-ping-sweep-0-of-1.prom"
    assert stat.S_IMODE(whole.stat().st_mode) == 0o644
    found = samples(whole.read_text())
    run = (("job", "ping-sweep"), ("shard", "0-of-1"))
    assert found[("netwatch_run_exit_code", run)] == 0
    assert found[("netwatch_targets", tuple(sorted((*run, ("kind", "host"), ("state", "online")))))] == 2
    first_end = found[("netwatch_run_end_timestamp_seconds", run)]
    assert nwi.sweep().returncode == 0
    assert samples(whole.read_text())[("netwatch_run_end_timestamp_seconds", run)] >= first_end
    assert sorted(path.name for path in out.iterdir()) == files  # no temporary file left


def test_a_run_without_its_database_still_reports_its_exit_code(tmp_path: Path) -> None:
    down = f"mysql+pymysql://netwatch:password123@127.0.0.1:{closed_port()}/nw"
    nwi = InProcess(tmp_path, down, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})
    with serving(_Gateway()) as push:
        nwi.write_config(HOSTS, metrics={"pushgateway_url": push.url})
        done = nwi.sweep()
    assert done.returncode == ExitCode.UNAVAILABLE
    [(_, _, body)] = push.pushes
    found = samples(body)
    assert found[("netwatch_run_exit_code", ())] == ExitCode.UNAVAILABLE
    assert not any(name == "netwatch_targets" for name, _ in found)
    assert "metrics: cannot read the state from the database (OperationalError)" in done.stderr


def test_a_failed_push_or_write_never_fails_the_run(nwi: InProcess) -> None:
    nwi.write_config(HOSTS, metrics={"pushgateway_url": f"http://127.0.0.1:{closed_port()}",
                                     "textfile_dir": str(nwi.tmp_path / "missing")})
    done = nwi.sweep()
    assert done.returncode == 0
    assert "metrics: the push to the Pushgateway failed (URLError); the run goes on" in done.stderr
    assert "metrics: cannot write" in done.stderr and "No such file or directory" in done.stderr


def test_a_run_that_finds_the_lease_held_pushes_nothing(nwi: InProcess, engine: Engine) -> None:
    assert Lease(engine, "ping-sweep:0/1", "another-run", 120, server_now).try_acquire()
    with serving(_Gateway()) as push:
        nwi.write_config(HOSTS, metrics={"pushgateway_url": push.url})
        assert nwi.sweep().returncode == ExitCode.LEASE_HELD
    assert push.pushes == []


@pytest.mark.parametrize(("metrics", "problem"), [
    ({"pushgateway_url": "udp://push.example.invalid"}, "metrics.pushgateway_url: must start with http://"),
    ({"pushgateway_url": "https://user:s3cret-pw@push.example.invalid"},
     "metrics.pushgateway_url: credentials in the URL are not supported"),
    ({"timeout_seconds": 0}, "metrics.timeout_seconds: must be at least 0.1"),
])
def test_bad_metrics_settings_are_config_errors(nwi: InProcess, metrics: dict[str, Any], problem: str) -> None:
    nwi.write_config([], metrics=metrics)
    done = nwi.sweep()
    assert done.returncode == ExitCode.CONFIG
    assert problem in done.stderr and "s3cret-pw" not in done.stderr
