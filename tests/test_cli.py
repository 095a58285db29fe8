"""The `netwatch` command as an operator meets it: exit codes, one-line errors, no tracebacks, no secrets.

Commands run through the real CLI entry (`run_cli`: parsing, logging setup, error mapping) in this
process (tests/inproc.py `run_command`); the few where the process itself matters run as
`python -m netwatch` in a subprocess.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

import click
import pytest
from inproc import Result, run_command
from jobkit import log_lines

from netwatch import logs
from netwatch.cli import _run, cli
from netwatch.config import parse_config
from netwatch.deps import build_deps
from netwatch.errors import ExitCode
from netwatch.logs import Redactor
from netwatch.running.stopflag import StopFlag

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yaml"
TOKEN = "sigma-tok-5e2a9c71d0b34f88"
CLOSED_PORT_MYSQL = "mysql+pymysql://u:hunter2-db@127.0.0.1:1/x"


def _clean(env: dict[str, str] | None) -> dict[str, str]:
    """This environment without the caller's NETWATCH_* variables, plus `env`."""
    return {**{key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}, **(env or {})}


def netwatch(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Runs `netwatch ARGS` in this process with none of the caller's NETWATCH_* variables, plus `env`."""
    return run_command(list(args), _clean(env), cwd or REPO)


def netwatch_process(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """As `netwatch`, in a real `python -m netwatch` process."""
    return subprocess.run(
        [sys.executable, "-m", "netwatch", *args],
        env=_clean(env),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def error_line(result: Result | subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command; fails the test on a traceback or several lines."""
    assert "Traceback" not in result.stderr
    raw = result.stderr.strip().splitlines()
    lines = raw if raw and raw[0].startswith("{") else log_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def command_paths() -> Iterator[tuple[list[str], click.Command]]:
    def walk(prefix: list[str], command: click.Command) -> Iterator[tuple[list[str], click.Command]]:
        yield prefix, command
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk([*prefix, name], sub)

    return walk([], cli)


ALL_COMMANDS = [path for path, _command in command_paths()]


def test_the_command_tree_is_walked() -> None:
    assert ["run", "ping-sweep"] in ALL_COMMANDS
    assert ["db", "schema"] in ALL_COMMANDS
    assert len(ALL_COMMANDS) >= 9


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda path: " ".join(path) or "netwatch")
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    command = dict((tuple(p), c) for p, c in command_paths())[tuple(path)]
    help_text = command.help or ""

    assert help_text.strip(), f"`netwatch {' '.join(path)}` has no help text"
    example = help_text.split("Example:", 1)
    assert len(example) == 2, f"`netwatch {' '.join(path)}` help has no 'Example:'"
    assert "netwatch " in example[1], f"`netwatch {' '.join(path)}` example shows no netwatch command line"


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda path: " ".join(path) or "netwatch")
def test_help_exits_zero_and_never_shows_a_token(path: list[str]) -> None:
    result = netwatch(*path, "--help", env={"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})

    assert result.returncode == 0, result.stderr
    assert "Example:" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_version() -> None:
    result = netwatch_process("--version")

    assert result.returncode == 0
    assert "0.1.0" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bogus"], "No such option"),
        (["status", "--bogus"], "No such option"),
        (["no-such-command"], "No such command"),
        (["--log-format", "xml", "status"], "--log-format"),
        (["run", "ping-sweep", "--shard", "x"], "--shard"),
        (["run", "ping-sweep", "--shard", "2/2"], "--shard"),
        (["run", "ping-sweep", "--shard", "0/0"], "--shard"),
        (["--log-format", "json", "run", "ping-sweep", "--shard", "-1/2"], "--shard"),
    ],
)
def test_usage_errors_exit_64_with_one_line(args: list[str], fragment: str) -> None:
    result = netwatch(*args, "--config", str(EXAMPLE))

    assert result.returncode == 64
    assert fragment in error_line(result)


def test_bare_command_shows_help_and_exits_64() -> None:
    result = netwatch()

    assert result.returncode == 64
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Usage: netwatch")


def job_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error line of a job that failed after its start line, which names the database (password masked)."""
    assert "Traceback" not in result.stderr
    start, error = log_lines(result.stderr)
    assert start.startswith("info: ping-sweep started database=") and "config=" in start, start
    return error


def test_bad_shard_is_reported_before_the_config_is_read(tmp_path: Path) -> None:
    result = netwatch("run", "ping-sweep", "--shard", "3/2", "--config", str(tmp_path / "missing.yaml"))

    assert result.returncode == 64


@pytest.mark.parametrize("command", [["check-config"], ["status"], ["db", "init"], ["run", "ping-sweep"]])
def test_bad_config_exits_78_naming_the_key(tmp_path: Path, command: list[str]) -> None:
    config_file = write(tmp_path / "nw.yaml", "ping:\n  count: lots\n")

    result = netwatch(*command, "--config", str(config_file))

    assert result.returncode == 78
    line = error_line(result)
    assert f"{config_file}: ping.count: must be a whole number" in line


def test_unknown_key_exits_78(tmp_path: Path) -> None:
    config_file = write(tmp_path / "nw.yaml", "thresholds:\n  down_affter: 3\n")

    result = netwatch("check-config", "--config", str(config_file))

    assert result.returncode == 78
    assert "thresholds.down_affter: unknown key" in error_line(result)


def test_config_from_env_variable(tmp_path: Path) -> None:
    config_file = write(tmp_path / "nw.yaml", "pign: {}\n")

    result = netwatch("check-config", env={"NETWATCH_CONFIG": str(config_file)})

    assert result.returncode == 78
    assert f"{config_file}: pign: unknown key" in error_line(result)


def test_missing_default_config_exits_78(tmp_path: Path) -> None:
    result = netwatch("check-config", cwd=tmp_path)

    assert result.returncode == 78
    assert "netwatch.yaml: config file not found" in error_line(result)


def test_check_config_ok_line() -> None:
    result = netwatch("check-config", "--config", str(EXAMPLE))

    assert result.returncode == 0
    assert result.stdout.splitlines()[:3] == [f"{EXAMPLE}: ok (3 hosts)", f"database: sqlite:///{REPO / 'netwatch.db'}",
                                              "ping-sweep: ready"]


@pytest.mark.parametrize("command", [["db", "init"], ["status"], ["run", "ping-sweep"]])
def test_database_on_closed_port_exits_69_without_password(command: list[str]) -> None:
    result = netwatch(*command, "--config", str(EXAMPLE), env={"NETWATCH_DATABASE_URL": CLOSED_PORT_MYSQL})

    assert result.returncode == 69
    line = job_error_line(result) if command[0] == "run" else error_line(result)
    assert "database unavailable" in line
    assert "hunter2" not in result.stdout + result.stderr


def test_unsupported_database_url_exits_78_without_password() -> None:
    result = netwatch("db", "init", "--config", str(EXAMPLE),
                      env={"NETWATCH_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/x"})

    assert result.returncode == 78
    assert "NETWATCH_DATABASE_URL: unsupported database 'postgresql'" in error_line(result)
    assert "hunter2" not in result.stdout + result.stderr


def test_json_log_format_makes_the_error_line_json() -> None:
    result = netwatch("--log-format", "json", "status", "--config", str(EXAMPLE),
                      env={"NETWATCH_DATABASE_URL": CLOSED_PORT_MYSQL})

    entry = json.loads(error_line(result))
    assert result.returncode == 69
    assert entry["level"] == "error"
    assert entry["exit_code"] == 69
    assert entry["msg"].startswith("database unavailable")


def test_json_log_format_from_env(tmp_path: Path) -> None:
    config_file = write(tmp_path / "nw.yaml", "ping: 3\n")

    result = netwatch("check-config", "--config", str(config_file), env={"NETWATCH_LOG_FORMAT": "json"})

    entry = json.loads(error_line(result))
    assert result.returncode == 78
    assert entry["msg"] == f"{config_file}: ping: must be a mapping"


def test_text_log_format_is_the_default(tmp_path: Path) -> None:
    config_file = write(tmp_path / "nw.yaml", "ping: 3\n")

    result = netwatch("check-config", "--config", str(config_file))

    assert error_line(result) == f"error: {config_file}: ping: must be a mapping"


def test_init_config_writes_the_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "netwatch.yaml"
    example = files("netwatch").joinpath("config.example.yaml").read_text(encoding="utf-8")

    first = netwatch("init-config", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert target.read_text(encoding="utf-8") == example == EXAMPLE.read_text(encoding="utf-8")

    target.write_text("# mine\n", encoding="utf-8")
    second = netwatch("init-config", cwd=tmp_path)
    assert second.returncode == 64
    assert "--force" in error_line(second)
    assert target.read_text(encoding="utf-8") == "# mine\n"

    forced = netwatch("init-config", str(target), "--force")
    assert forced.returncode == 0
    assert target.read_text(encoding="utf-8") == example

    checked = netwatch("check-config", "--config", str(target))
    assert checked.returncode == 0
    assert checked.stdout.splitlines()[0] == f"{target}: ok (3 hosts)"


def test_init_config_dash_prints_the_example(tmp_path: Path) -> None:
    result = netwatch("init-config", "-", cwd=tmp_path)

    assert result.returncode == 0
    assert result.stdout == EXAMPLE.read_text(encoding="utf-8")
    assert list(tmp_path.iterdir()) == []


def test_init_config_into_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = netwatch("init-config", str(tmp_path / "no" / "such" / "dir.yaml"))

    assert result.returncode == 64
    assert "cannot write" in error_line(result)


def test_db_schema_equals_schema_sql() -> None:
    result = netwatch("db", "schema")

    assert result.returncode == 0
    assert result.stdout == (REPO / "schema.sql").read_text(encoding="utf-8")


def test_db_init_twice_then_upgrade_and_status(db_url: str, tmp_path: Path) -> None:
    env = {"NETWATCH_DATABASE_URL": db_url}
    config = str(EXAMPLE)

    first = netwatch("db", "init", "--config", config, env=env)
    second = netwatch("db", "init", "--config", config, env=env)
    upgrade = netwatch("db", "upgrade", "--config", config, env=env)
    as_json = netwatch("status", "--json", "--config", config, env=env)
    as_table = netwatch("status", "--config", config, env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("schema created at version")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("schema already initialised at version")
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.startswith("schema is current")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == []
    assert as_table.returncode == 0
    assert as_table.stdout.split() == ["name", "kind", "client", "address", "status", "since", "last_check",
                                      "last_check_at", "streak", "loss_pct", "rtt_avg_ms", "reason", "held_until"]


def test_status_before_db_init_then_upgrade_creates_the_schema(db_url: str) -> None:
    env = {"NETWATCH_DATABASE_URL": db_url}

    status = netwatch("status", "--config", str(EXAMPLE), env=env)
    upgrade = netwatch("db", "upgrade", "--config", str(EXAMPLE), env=env)
    after = netwatch("status", "--json", "--config", str(EXAMPLE), env=env)

    assert status.returncode == 78
    # A report creates no database: on SQLite the first job run does (tests/test_report_opens_read_only.py).
    assert ("the first job run" if db_url.startswith("sqlite") else "netwatch db init") in error_line(status)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.startswith("applied versions [1")
    assert after.returncode == 0
    assert json.loads(after.stdout) == []


def test_ping_sweep_on_the_example_config_then_status(db_url: str, tmp_path: Path) -> None:
    env = {"NETWATCH_DATABASE_URL": db_url}
    assert netwatch("db", "init", "--config", str(EXAMPLE), env=env).returncode == 0

    run = netwatch("--log-format", "json", "run", "ping-sweep", "--config", str(EXAMPLE), env=env, cwd=tmp_path)
    status = netwatch("status", "--json", "--config", str(EXAMPLE), env=env)

    assert run.returncode == 0, run.stderr
    entries = [json.loads(line) for line in run.stderr.splitlines()]
    assert any(entry.get("hosts") == 3 for entry in entries)
    assert status.returncode == 0
    assert {(host["name"], host["last_check"]) for host in json.loads(status.stdout)} == {
        ("loopback-1", "ok"), ("loopback-2", "ok"), ("localhost-name", "ok"),
    }


def sigma_on_closed_port(tmp_path: Path) -> Path:
    return write(tmp_path / "nw.yaml", """
run: {deadline_seconds: 5}
thresholds: {up_after: 1, notify_initial: true}
hosts:
  - {name: lo, address: 127.0.0.1, account: "1234", partition: "01", zone: "001"}
sigma:
  base_url: http://127.0.0.1:1
  timeout_seconds: 1
  retry_backoff_seconds: 0
""")


def test_token_never_appears_in_any_output(db_url: str, tmp_path: Path) -> None:
    config = str(sigma_on_closed_port(tmp_path))
    env = {"NETWATCH_DATABASE_URL": db_url, "NETWATCH_SIGMA_TOKEN": TOKEN}
    results = [
        netwatch("--help", env=env),
        netwatch("run", "ping-sweep", "--help", env=env),
        netwatch("check-config", "--config", config, env=env),
        netwatch("db", "init", "--config", config, env=env),
        netwatch("--log-level", "debug", "run", "ping-sweep", "--config", config, env=env),
        netwatch("--log-level", "debug", "--log-format", "json", "run", "ping-sweep", "--config", config, env=env),
        netwatch("status", "--json", "--config", config, env=env),
    ]
    sweep_text, sweep_json = results[4], results[5]

    assert [r.returncode for r in results] == [0, 0, 0, 0, 1, 1, 0]
    assert "sigma" in sweep_text.stderr  # the delivery failure was logged, so there was output to leak into
    assert "Traceback" not in sweep_text.stderr + sweep_json.stderr
    assert all(json.loads(line) for line in sweep_json.stderr.splitlines())
    for result in results:
        assert TOKEN not in result.stdout
        assert TOKEN not in result.stderr


def test_missing_token_exits_78_naming_the_variable(tmp_path: Path) -> None:
    config = str(sigma_on_closed_port(tmp_path))

    result = netwatch("run", "ping-sweep", "--config", config,
                      env={"NETWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'nw.db'}"})

    assert result.returncode == 78
    assert "NETWATCH_SIGMA_TOKEN is not set" in error_line(result)


@contextmanager
def captured_logs(fmt: str, redactor: logs.Redactor | None = None) -> Iterator[io.StringIO]:
    """netwatch's own logging set up as the CLI does, into a string; the logger is restored after."""
    root = logging.getLogger("netwatch")
    saved = (root.handlers[:], root.level, root.propagate)
    stream = io.StringIO()
    logs.setup_logging(fmt, "info", redactor or logs.Redactor(), stream)
    try:
        yield stream
    finally:
        # setup_logging is process-wide; give later tests (and caplog) the logger back as it was.
        root.handlers[:], root.propagate = saved[0], saved[2]
        root.setLevel(saved[1])


def test_logged_secrets_are_masked() -> None:
    redactor = logs.Redactor()
    redactor.add(TOKEN)
    with captured_logs("json", redactor) as stream:
        logging.getLogger("netwatch.test").warning("header was Bearer %s", TOKEN, extra={"fields": {"t": TOKEN}})

    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "header was Bearer ***"
    assert entry["t"] == "***"
    assert TOKEN not in stream.getvalue()


def test_a_bug_exits_70_with_its_traceback_and_masked_secrets() -> None:
    redactor = logs.Redactor()
    redactor.add(TOKEN)

    def buggy() -> None:
        raise KeyError(f"lookup of {TOKEN}")

    with captured_logs("json", redactor) as stream:
        code = _run(buggy)
    assert code == ExitCode.SOFTWARE == 70
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["level"] == "critical"
    assert entry["msg"].startswith("netwatch bug (KeyError), exit 70; traceback:\nTraceback (most recent call last):")
    assert "in buggy" in entry["msg"] and "lookup of ***" in entry["msg"]
    assert TOKEN not in stream.getvalue()


def test_readme_first_command_runs_on_a_fresh_sqlite_file_without_db_init(tmp_path: Path) -> None:
    """`make run`: the example config, no database yet, no `db init`: the job creates the SQLite file."""
    config = write(tmp_path / "config.example.yaml", EXAMPLE.read_text(encoding="utf-8"))
    run = netwatch_process("run", "ping-sweep", "--config", str(config), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "initialised a new SQLite database" in run.stderr
    assert (tmp_path / "netwatch.db").is_file()
    status = netwatch("status", "--json", "--config", str(config), cwd=tmp_path)
    assert sorted(host["name"] for host in json.loads(status.stdout)) == ["localhost-name", "loopback-1", "loopback-2"]


def test_the_database_password_is_masked_in_later_log_lines() -> None:
    redactor = Redactor()
    with captured_logs("text", redactor) as stream:
        config = parse_config({"database": {"url": "mysql+pymysql://netwatch:db-pass-7f3e91@127.0.0.1:1/x"}},
                              "test", REPO, {})
        build_deps(config, {}, StopFlag(), redactor).engine.dispose()
        logging.getLogger("netwatch.test").error("connect failed for netwatch:db-pass-7f3e91")
    assert log_lines(stream.getvalue()) == ["error: connect failed for netwatch:***"]
