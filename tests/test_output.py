"""What netwatch writes to stderr, as README's "Output" section promises.

Text log lines start with a UTC timestamp; an error line for a person carries no `exit_code=NN`
(a JSON line does, and so does the summary line in both formats); click's usage errors are JSON
lines under `--log-format json`; the global options are accepted before and after any subcommand.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from inproc import InProcess, Result, _restored_logging
from jobkit import log_lines

from netwatch import logs
from netwatch.cli import cli, early_log_options

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (debug|info|warning|error|critical): ")
HOSTS = [{"name": "lo-1", "address": "127.0.0.1"}, {"name": "lo-2", "address": "127.0.0.2"}]


@pytest.fixture(autouse=True)
def _no_log_format_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETWATCH_LOG_FORMAT", raising=False)


@pytest.fixture
def bare(tmp_path: Path) -> InProcess:
    """The in-process CLI with a SQLite config, for commands that need no database of the fixtures."""
    return InProcess(tmp_path, f"sqlite:///{tmp_path / 'nw.db'}", {})


def json_lines(stderr: str) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in stderr.splitlines()]
    assert entries and all(isinstance(entry, dict) for entry in entries), stderr
    return entries


def only_json_line(result: Result) -> dict[str, object]:
    [entry] = json_lines(result.stderr)
    return entry


def summary_line(stderr: str) -> str:
    [line] = [line for line in log_lines(stderr) if line.startswith("info: ping-sweep finished ")]
    return line


def command_paths() -> Iterator[list[str]]:
    def walk(prefix: list[str], command: click.Command) -> Iterator[list[str]]:
        yield prefix
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk([*prefix, name], sub)

    return walk([], cli)


# --- timestamps --------------------------------------------------------------------------------


def test_text_log_lines_start_with_a_utc_timestamp_whatever_the_local_zone(tmp_path: Path) -> None:
    config = tmp_path / "nw.yaml"
    config.write_text("ping: 3\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}

    done = subprocess.run([sys.executable, "-m", "netwatch", "check-config", "--config", str(config)],
                          env={**env, "TZ": "JST-9"}, capture_output=True, text=True, timeout=60, check=False)

    [line] = done.stderr.splitlines()
    match = _TIMESTAMP.match(line)
    assert match is not None, line
    stamped = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    # A local time (JST-9: a zone that needs no tzdata) would be 9 hours off.
    assert abs(stamped - datetime.now(UTC)) < timedelta(minutes=5)
    assert line.endswith(f"error: {config}: ping: must be a mapping")


@pytest.mark.parametrize(("fmt", "expected"), [
    ("text", "2026-11-22T10:00:00.250Z info: hello"),
    ("json", '{"ts": "2026-11-22T10:00:00.250Z", "level": "info", "logger": "netwatch.test", "msg": "hello"}'),
])
def test_a_record_is_stamped_with_its_creation_time_in_utc(fmt: str, expected: str) -> None:
    stream = io.StringIO()
    created = datetime(2026, 11, 22, 10, 0, 0, 250_000, tzinfo=UTC).timestamp()
    with _restored_logging():
        logs.setup_logging(fmt, "info", logs.Redactor(), stream)
        record = logging.makeLogRecord({"name": "netwatch.test", "levelno": logging.INFO, "levelname": "INFO",
                                        "msg": "hello", "created": created})
        logging.getLogger("netwatch.test").handle(record)

    assert stream.getvalue() == expected + "\n"


def test_every_line_of_a_sweep_is_a_timestamped_text_line(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)

    done = nwi.sweep()

    assert done.returncode == 0, done.stderr
    lines = log_lines(done.stderr)  # fails on a line without its timestamp
    assert len(lines) == len(done.stderr.splitlines()) >= 1


# --- exit codes in error and summary lines -------------------------------------------------------


@pytest.mark.parametrize(("args", "code"), [
    (["--bogus"], 64),
    (["run", "ping-sweep", "--shard", "x"], 64),
    (["check-config", "--config", "{missing}"], 78),
    (["status", "--config", "{closed_port}"], 69),
])
def test_an_error_line_for_a_person_has_no_exit_code_and_its_json_line_has_it(
        bare: InProcess, tmp_path: Path, args: list[str], code: int) -> None:
    closed_port = tmp_path / "closed.yaml"
    closed_port.write_text("database: {url: 'mysql+pymysql://u@127.0.0.1:1/x'}\n", encoding="utf-8")
    args = [arg.format(missing=tmp_path / "missing.yaml", closed_port=closed_port) for arg in args]

    text = bare.cli(*args)
    as_json = bare.cli(*args, "--log-format", "json")

    assert text.returncode == as_json.returncode == code
    [line] = log_lines(text.stderr)
    assert line.startswith("error: ")
    assert "exit_code" not in line
    entry = only_json_line(as_json)
    assert entry["level"] == "error"
    assert entry["exit_code"] == code
    assert entry["msg"] == line.removeprefix("error: ")


def test_the_summary_line_keeps_exit_code_in_text_and_json(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)

    text = nwi.sweep()
    as_json = nwi.run("run", "ping-sweep", "--log-format", "json")

    assert text.returncode == as_json.returncode == 0, text.stderr
    line = summary_line(text.stderr)
    assert " exit_code=0" in line and " duration_s=" in line and " hosts=2" in line
    [summary] = [entry for entry in json_lines(as_json.stderr) if entry["msg"] == "ping-sweep finished"]
    assert summary["exit_code"] == 0 and summary["hosts"] == 2 and isinstance(summary["duration_s"], float)


# --- click usage errors in JSON -------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--log-format", "json", "--bogus"],
    ["status", "--bogus", "--log-format", "json"],
    ["--log-format=json", "no-such-command"],
    ["run", "ping-sweep", "--log-format", "json", "--shard", "x"],
    ["alerts", "--log-format", "json", "--since"],
    ["--log-format", "json", "--log-level", "loud", "status"],
    ["db", "--log-format", "json", "no-such-command"],
    ["--log-format", "json", "run"],
    ["--log-format", "json"],
    ["init-config", "a.yaml", "b.yaml", "--log-format", "json"],
], ids=" ".join)
def test_usage_errors_are_one_json_line_under_log_format_json(bare: InProcess, args: list[str]) -> None:
    done = bare.cli(*args)

    assert done.returncode == 64
    assert done.stdout == ""
    entry = only_json_line(done)
    assert entry["level"] == "error" and entry["exit_code"] == 64
    assert isinstance(entry["msg"], str) and entry["msg"]


def test_a_usage_error_is_json_with_the_format_from_the_environment(bare: InProcess) -> None:
    bare.env["NETWATCH_LOG_FORMAT"] = "json"

    done = bare.cli("run", "ping-sweep", "--bogus")

    assert done.returncode == 64
    assert only_json_line(done)["msg"] == "No such option '--bogus'."


def test_a_usage_error_of_the_real_process_is_json() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}

    done = subprocess.run([sys.executable, "-m", "netwatch", "run", "ping-sweep", "--bogus", "--log-format", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 64
    [line] = done.stderr.splitlines()
    assert json.loads(line)["exit_code"] == 64


def test_a_bare_group_still_shows_its_help_in_text(bare: InProcess) -> None:
    done = bare.cli("run")

    assert done.returncode == 64
    # No log line: the help is the answer.
    assert done.stderr.startswith("Usage: netwatch run") and " error: " not in done.stderr


# --- where the global options may stand -----------------------------------------------------------


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda path: " ".join(path) or "netwatch")
def test_global_options_are_accepted_after_every_command(bare: InProcess, path: list[str]) -> None:
    done = bare.cli(*path, "--log-format", "json", "--log-level", "debug", "--help")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: netwatch {' '.join(path)}".rstrip())


@pytest.mark.parametrize("path", [path for path in command_paths() if len(path) == 2], ids=" ".join)
def test_global_options_are_accepted_between_a_group_and_its_command(bare: InProcess, path: list[str]) -> None:
    done = bare.cli(path[0], "--log-format=json", "--log-level=warning", path[1], "--help")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: netwatch {' '.join(path)}")


def test_log_format_after_the_subcommand_makes_every_line_json(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)

    done = nwi.run("run", "ping-sweep", "--log-format", "json")

    assert done.returncode == 0, done.stderr
    assert "ping-sweep finished" in [entry["msg"] for entry in json_lines(done.stderr)]


def test_log_level_after_the_subcommand_applies(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)

    chatty = nwi.run("run", "ping-sweep", "--log-level=debug")  # the first statuses are logged at debug
    quiet = nwi.run("run", "ping-sweep", "--log-level", "warning")

    assert quiet.returncode == chatty.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert any(line.startswith("debug: ") for line in log_lines(chatty.stderr))


def test_the_last_log_format_given_wins(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)

    done = nwi.cli("--log-format", "text", "run", "ping-sweep", "--config", str(nwi.tmp_path / "netwatch.yaml"),
                   "--log-format", "json")

    assert done.returncode == 0, done.stderr
    assert json_lines(done.stderr)


@pytest.mark.parametrize(("args", "env", "expected"), [
    ([], {}, ("text", "info")),
    ([], {"NETWATCH_LOG_FORMAT": "json"}, ("json", "info")),
    (["run", "ping-sweep", "--log-format", "json", "--log-level", "debug"], {}, ("json", "debug")),
    (["--log-format=json", "status", "--log-level=error"], {}, ("json", "error")),
    (["--log-format", "xml"], {}, ("text", "info")),  # click then reports the bad value, in text
    (["--log-format", "json", "--log-format", "text"], {}, ("text", "info")),
    (["init-config", "--", "--log-format", "json"], {}, ("text", "info")),  # after --, an argument
    (["--log-format"], {"NETWATCH_LOG_FORMAT": "json"}, ("json", "info")),
])
def test_early_log_options(args: list[str], env: dict[str, str], expected: tuple[str, str]) -> None:
    assert early_log_options(args, env) == expected
