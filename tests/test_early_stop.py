"""A signal before a job's run is armed ends the command at once, and nothing can swallow it.

Real signals to this process (`signal.raise_signal`) with netwatch's own handlers installed for the
test, and the real CLI (run_cli) in this process: the early stop is a BaseException, so an `except
Exception` on the way (logging's emit here) lets it through; a command that is no job names
itself in the line instead of "before any work began".
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from jobkit import log_lines
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine

from netwatch.cli import run_cli
from netwatch.db.engine import build_engine
from netwatch.errors import ExitCode, StopNow
from netwatch.running.stopflag import StopFlag, install_signal_handlers


@pytest.fixture
def stop() -> Iterator[StopFlag]:
    """A stop flag with netwatch's SIGTERM and SIGINT handlers installed; pytest's come back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    flag = StopFlag()
    install_signal_handlers(flag)
    try:
        yield flag
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


class SignallingStream(io.StringIO):
    """A log stream that raises `signum` in this process on the first write holding `trigger`."""

    def __init__(self, trigger: str, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self._trigger = trigger
        self._signum = signum
        self.fired = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.fired and self._trigger in text:
            self.fired = True
            signal.raise_signal(self._signum)
        return written


def run(args: list[str], stop: StopFlag, log_stream: io.StringIO, env: dict[str, str],
        stdout: io.StringIO | None = None) -> int:
    """`netwatch ARGS` in this process; the `netwatch` logger is given back as it was afterwards."""
    logger = logging.getLogger("netwatch")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(stdout or io.StringIO()):
            return run_cli(args, stop, log_stream=log_stream)
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "netwatch.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path / 'netwatch.db'}\nhosts: []\n", encoding="utf-8")
    return config


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, ExitCode.STOPPED),
                                              (signal.SIGINT, ExitCode.INTERRUPTED)])
def test_an_early_signal_passes_a_broad_except(stop: StopFlag, signum: int, code: ExitCode) -> None:
    stop.stop_at_once()
    swallowed = False
    with pytest.raises(StopNow) as err:
        try:
            signal.raise_signal(signum)
        except Exception:
            swallowed = True
    assert not swallowed
    assert err.value.exit_code == code
    assert err.value.message.endswith("before any work began")


def test_an_early_sigterm_inside_a_log_line_still_ends_the_job_before_any_work(
    stop: StopFlag, tmp_path: Path
) -> None:
    """logging's emit catches Exception: the signal arrives while the job's start line is written."""
    config = write_config(tmp_path)
    stream = SignallingStream(" started ")

    code = run(["run", "ping-sweep", "--config", str(config)], stop, stream, {})

    assert stream.fired
    assert code == ExitCode.STOPPED, stream.getvalue()
    assert "Logging error" not in stream.getvalue()
    assert [line for line in log_lines(stream.getvalue()) if not line.startswith("info: ping-sweep started")] == [
        "error: stopped by SIGTERM before any work began"]
    assert not (tmp_path / "netwatch.db").exists(), "nothing was written"


@pytest.fixture
def signal_at_first_create() -> Iterator[None]:
    """Raises SIGTERM in this process as any engine is about to run its first CREATE TABLE."""
    fired = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not fired and statement.lstrip().upper().startswith("CREATE TABLE"):
            fired.append(statement)
            signal.raise_signal(signal.SIGTERM)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", before)
    assert fired, "the signal was raised"


@pytest.mark.usefixtures("signal_at_first_create")
def test_a_signal_during_db_upgrade_names_the_command_and_its_rolled_back_transaction(
    stop: StopFlag, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    stream = io.StringIO()

    code = run(["db", "upgrade", "--config", str(config)], stop, stream, {})

    assert code == ExitCode.STOPPED, stream.getvalue()
    assert log_lines(stream.getvalue()) == [
        "error: stopped by SIGTERM during `netwatch db upgrade`: its open transaction rolled back"]
    engine = build_engine(f"sqlite:///{tmp_path / 'netwatch.db'}")
    try:
        assert inspect(engine).get_table_names() == [], "the schema's transaction rolled back"
    finally:
        engine.dispose()


def test_a_signal_during_a_command_without_a_transaction_names_only_the_command(
    stop: StopFlag, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    stream = io.StringIO()
    stdout = SignallingStream("ping-sweep")  # the report's line for the job

    code = run(["check-config", "--config", str(config)], stop, stream, {}, stdout)

    assert stdout.fired
    assert code == ExitCode.STOPPED, stream.getvalue()
    assert log_lines(stream.getvalue()) == ["error: stopped by SIGTERM during `netwatch check-config`"]
