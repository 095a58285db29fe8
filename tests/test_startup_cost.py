"""What a `netwatch` process spends outside its work: lazy imports at start, no interpreter teardown at the end.

Timing is measured by bench/ping_sweep.py, not here (a loaded machine would make a timing test
flaky); these tests pin down the mechanisms the numbers rest on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import privatedb
import pytest
from jobkit import Netwatch

REPO = Path(__file__).resolve().parent.parent
# Imported by no command before it runs: `--version` and `--help` must not pay for them.
# Commands that open the database.
COMMANDS = [["db", "init"], ["db", "upgrade"], ["run", "ping-sweep"], ["status"]]
# Every other kind of database use: the jobs that need no external API (and status-page, given
# its directory), reports and listings.
MORE_COMMANDS = [["run", "http-check"], ["run", "cleanup"], ["report", "uptime"], ["history", "lo-1"], ["runs"],
                 ["outbox"], ["doctor"]]
HEAVY = ("sqlalchemy", "requests", "urllib3", "yaml", "pymysql", "cryptography", "netwatch.config", "netwatch.deps",
         "netwatch.jobs")
# Runs the real entry point, with an atexit hook that reports whether the interpreter's teardown ran.
ENTRY_WITH_TEARDOWN_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("teardown ran\\n"))
sys.argv = ["netwatch", *sys.argv[1:]]
from netwatch.entry import main
main()
"""


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}


def test_version_imports_nothing_a_command_needs() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "netwatch", "--version"], env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0 and done.stdout.startswith("netwatch, version")
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE))
    assert "click" in imported  # the parse worked
    assert sorted(name for name in imported if any(name == h or name.startswith(f"{h}.") for h in HEAVY)) == []


def test_the_process_ends_without_teardown_once_its_output_is_flushed() -> None:
    # stdout is a pipe, so block-buffered: without the flush the schema would be cut short.
    done = subprocess.run([sys.executable, "-c", ENTRY_WITH_TEARDOWN_PROBE, "db", "schema"], env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout == (REPO / "schema.sql").read_text(encoding="utf-8")
    assert "teardown ran" not in done.stderr


def test_the_exit_code_and_the_last_log_line_survive_the_skipped_teardown(tmp_path: Path) -> None:
    config = tmp_path / "nw.yaml"
    config.write_text("ping: 3\n", encoding="utf-8")

    done = subprocess.run([sys.executable, "-c", ENTRY_WITH_TEARDOWN_PROBE, "check-config", "--config", str(config)],
                          env=clean_env(), capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 78
    assert done.stderr.endswith(f"error: {config}: ping: must be a mapping\n")



@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_command_closes_its_database_before_the_process_ends(tmp_path: Path, command: list[str]) -> None:
    database = tmp_path / "nw.db"
    nw = Netwatch(tmp_path, f"sqlite:///{database}", {})
    nw.write_config([{"name": "lo-1", "address": "127.0.0.1"}])
    config = str(tmp_path / "netwatch.yaml")
    assert subprocess.run([sys.executable, "-m", "netwatch", "db", "init", "--config", config], env=clean_env(),
                          capture_output=True, timeout=60, check=False).returncode == 0

    done = subprocess.run([sys.executable, "-c", ENTRY_WITH_TEARDOWN_PROBE, *command, "--config", config],
                          env=clean_env(), capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert "teardown ran" not in done.stderr
    # SQLite checkpoints and removes its write-ahead log when the last connection closes; a
    # process ending with the connection still open leaves the log behind.
    assert database.exists() and not Path(f"{database}-wal").exists()


@pytest.mark.mysql
def test_no_command_leaves_an_aborted_connection_in_the_mariadb_log(tmp_path: Path) -> None:
    """A process that exits with a connection still open (no COM_QUIT) is logged by MariaDB as an
    "Aborted connection"; a server of the test's own sees only this test's clients."""
    reason = privatedb.unavailable_reason()
    if reason is not None:
        if os.environ.get("NETWATCH_REQUIRE_MYSQL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with privatedb.PrivateMariaDB(tmp_path / "server") as server:
        nw = Netwatch(tmp_path, server.create_database("nw_closed"), {})
        nw.write_config([{"name": "lo-1", "address": "127.0.0.1"}])
        commands = [*COMMANDS, *MORE_COMMANDS, ["run", "status-page", "--out", str(tmp_path / "site")]]
        ran = [nw.run(*command) for command in commands]

        assert [done.returncode for done in ran] == [0] * len(commands), [done.stderr for done in ran]
        assert server.aborted_clients() == 0
        assert "Aborted connection" not in server.error_log()
