"""Driving `netwatch` as a real process for job tests: config files, runs, database reads."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import dbread
import yaml
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import outbox, tables
from netwatch.db.engine import build_engine

_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warning|error|critical): ")


def log_lines(stderr: str) -> list[str]:
    """Text log lines as "level: message fields", without their timestamps; any other line fails the test."""
    lines = []
    for line in stderr.splitlines():
        match = _LOG_LINE.match(line)
        assert match is not None, f"not a timestamped log line: {line!r}"
        lines.append(line[match.end(0) - len(match[1]) - 2:])
    return lines


FAST_PING = {"count": 2, "timeout_seconds": 0.3, "interval_ms": 20, "rate_limit_pps": 1000, "retries": 0}
# The token of both loopback APIs in job tests (the `fake` and `nw` fixtures of conftest.py).
TOKEN = "netwatch-job-test-token-7c1d"
# Segware's account 1234 as the `fake` fixture serves it.
ACCOUNT = {
    "account": "1234", "name": "Loja Centro", "companyId": 9, "companyName": "Acme Seguranca",
    "clientGroup": "Varejo Sul", "partitions": [{"code": "01", "name": "Loja"}],
    "zones": [{"code": "003", "name": "Porta dos fundos", "partition": "01"}],
}


@dataclass
class Netwatch:
    """One test's netwatch set-up: a config file, its database and the environment of its runs."""

    tmp_path: Path
    db_url: str
    env: dict[str, str]

    def write_config(self, hosts: list[dict[str, Any]], **sections: Any) -> Path:
        config = {"database": {"url": self.db_url}, "ping": dict(FAST_PING),
                  "thresholds": {"down_after": 1, "up_after": 1, "min_transition_seconds": 0},
                  "hosts": hosts, "run": {"deadline_seconds": 30}}
        for name, values in sections.items():
            config[name] = {**config.get(name, {}), **values} if isinstance(values, dict) else values
        path = self.tmp_path / "netwatch.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "netwatch", *args, "--config", str(self.tmp_path / "netwatch.yaml")]

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Runs `netwatch <args> --config <file>` to completion."""
        return subprocess.run(self._command(*args), capture_output=True, text=True, timeout=timeout,
                              env=self._env(), check=False)

    def sweep(self) -> subprocess.CompletedProcess[str]:
        return self.run("run", "ping-sweep")

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Starts `netwatch <args>` in the background."""
        return subprocess.Popen(self._command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self._env())

    def engine(self) -> Engine:
        return build_engine(self.db_url)

    def outbox(self) -> list[outbox.OutboxItem]:
        engine = self.engine()
        try:
            with engine.begin() as conn:
                return dbread.list_items(conn)
        finally:
            engine.dispose()

    def checks(self) -> list[dict[str, object]]:
        """The raw checks, named (dbread.named_checks)."""
        engine = self.engine()
        try:
            with engine.begin() as conn:
                return dbread.named_checks(conn)
        finally:
            engine.dispose()

    def rows(self, table_name: str) -> list[Mapping[str, Any]]:
        engine = self.engine()
        try:
            with engine.begin() as conn:
                return [dict(r) for r in conn.execute(select(tables.metadata.tables[table_name])).mappings()]
        finally:
            engine.dispose()

    def wait_for_running(self, job: str, timeout: float = 20) -> None:
        """Waits until a run of `job` has recorded itself as running (bounded): its work has begun."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if any(r["job"] == job and r["outcome"] == "running" for r in self.rows("job_runs")):
                    return
            except SQLAlchemyError:
                pass  # the run is still creating the schema
            time.sleep(0.05)
        raise AssertionError(f"no {job} run began within {timeout} s")

    def wait_for_lease(self, name: str, timeout: float = 20) -> None:
        """Waits until some run holds lease `name` (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if any(r["name"] == name and r["holder"] for r in self.rows("leases")):
                    return
            except SQLAlchemyError:
                pass  # the first run is still creating the schema
            time.sleep(0.05)
        raise AssertionError(f"lease {name} never taken within {timeout} s")


def expire_leases(engine: Engine) -> None:
    """What time does for a killed run: its leases expire (set here, instead of waiting them out)."""
    with engine.begin() as conn:
        conn.execute(update(tables.leases).where(tables.leases.c.holder.is_not(None))
                     .values(expires_at=datetime.now(UTC) - timedelta(days=1)))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Polls `condition` (bounded in time) until it holds; fails the test naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


def terminate(process: subprocess.Popen[str], timeout: float = 20,
              signum: int = signal.SIGTERM) -> tuple[int, str]:
    """Sends SIGTERM (or `signum`) and returns the exit code and stderr."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


@dataclass
class _Mailbox:
    mails: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(message)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[EmailMessage]]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd); yields its port and the mails it accepted."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield port, mailbox.mails
    finally:
        controller.stop()


class _Hook(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        with self.server.lock:
            self.server.received.append((dict(self.headers), body))
            status = self.server.status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on what was received."""


class _HookServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.lock = threading.Lock()
        self.received: list[tuple[dict[str, str], Any]] = []
        self.status = 204


Served = TypeVar("Served", bound=ThreadingHTTPServer)


@contextmanager
def serving(server: Served) -> Iterator[Served]:
    """Serves `server` (bound to a loopback port) on a thread until the block ends, then closes it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[_HookServer]:
    """A real HTTP server on 127.0.0.1 that records webhook POSTs; `.status` sets its answer."""
    with serving(_HookServer()) as server:
        yield server
