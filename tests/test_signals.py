"""SIGTERM and SIGINT on a real `netwatch` process: 143 and 130 from its first moments to its last.

Synchronised on conditions, never on sleeps: the early signal goes out when the process reports
(`-X importtime`) that it imported click, the first import after the handlers are installed and
long before the imports end; the late one when Sigma holds the run's POST.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import dbread
import pytest
from fakeapi import FakeApis
from jobkit import TOKEN, Netwatch, log_lines
from sqlalchemy import select
from sqlalchemy.engine import Engine

from netwatch.db import tables

HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"},
         {"name": "lo-2", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "002"}]
CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


def _not_import_lines(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))


def _stderr_until(fd: int, pattern: re.Pattern[bytes]) -> bytes:
    """Reads `fd` in small pieces until `pattern` matches what was read (or the stream ends)."""
    seen = b""
    while not pattern.search(seen):
        piece = os.read(fd, 256)
        if not piece:
            raise AssertionError(f"the stream ended before {pattern.pattern!r}: {seen[-500:]!r}")
        seen += piece
    return seen


def _read_to_end(fd: int) -> bytes:
    pieces = []
    while piece := os.read(fd, 65536):
        pieces.append(piece)
    return b"".join(pieces)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_netwatch_is_still_importing_exits_with_its_code(tmp_path: Path, signum: int) -> None:
    config = tmp_path / "netwatch.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path / 'netwatch.db'}\nhosts: []\n", encoding="utf-8")
    command = [sys.executable, "-X", "importtime", "-m", "netwatch", "run", "ping-sweep", "--config", str(config)]
    # A one-page pipe read in small pieces: once the test stops reading, the process can write at
    # most a few KB of import lines before it blocks, far short of the ~29 KB it writes after
    # click, so the signal lands while it imports however slowly the test is scheduled.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=write_end)
    os.close(write_end)
    try:
        early = _stderr_until(read_end, re.compile(rb"import time:[^\n]*\|\s*click\n"))
        process.send_signal(signum)
        rest = (early + _read_to_end(read_end)).decode()
        process.wait(timeout=30)
    finally:
        os.close(read_end)
        process.kill()
        process.wait(timeout=10)

    assert process.returncode == CODES[signum], rest
    lines = log_lines(_not_import_lines(rest))
    assert lines == [f"error: stopped by {NAMES[signum]} before any work began"]
    assert not (tmp_path / "netwatch.db").exists(), "nothing was written"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_delivery_exits_with_its_code_and_the_run_row_says_stopped(
    tmp_path: Path, engine: Engine, db_url: str, signum: int
) -> None:
    nw = Netwatch(tmp_path, db_url, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})
    with FakeApis(token=TOKEN) as sigma:
        held = sigma.hold("POST", "/v1/events", from_request=1)
        nw.write_config(HOSTS, thresholds={"notify_initial": True},
                        sigma={"base_url": sigma.url, "retry_backoff_seconds": 0})
        running = nw.start("run", "ping-sweep")
        try:
            held.wait_arrived()
            running.send_signal(signum)
            held.release()
            _, err = running.communicate(timeout=60)
        finally:
            running.kill()
            running.wait(timeout=10)

    assert running.returncode == CODES[signum], err
    assert "Traceback" not in err
    errors = [line for line in log_lines(err) if line.startswith("error:")]
    assert errors == [f"error: stopped by {NAMES[signum]} at a safe point: uncommitted work rolled back,"
                      " lease released"]
    with engine.begin() as conn:
        [run] = dbread.recent_runs(conn, "ping-sweep")
        assert (run.outcome, run.exit_code) == ("stopped", CODES[signum])
        assert all(row.holder is None for row in conn.execute(select(tables.leases)))
    assert [r.headers["idempotency-key"] for r in sigma.requests_to("POST", "/v1/events")] == [
        nw.outbox()[0].idempotency_key], "the second event waits for the next run"
