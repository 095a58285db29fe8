"""A command on SQLite loads no MySQL driver: PyMySQL, and the cryptography it imports, cost a run 27 ms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fakeapi import FakeApis
from jobkit import TOKEN

FORBIDDEN = ("pymysql", "cryptography")


def _modules_after(args: list[str], config: Path, tmp_path: Path) -> tuple[int, list[str]]:
    """The exit code of `netwatch ARGS` in a fresh interpreter, and the forbidden modules it had imported."""
    code = ("import sys\n"
            "from netwatch.cli import run_cli\n"
            "from netwatch.running.stopflag import StopFlag\n"
            f"status = run_cli({[*args, '--config', str(config)]!r}, StopFlag())\n"
            f"print(status, *(m for m in sorted(sys.modules) if m.split('.')[0] in {FORBIDDEN!r}))")
    env = {**os.environ, "NETWATCH_SEGWARE_TOKEN": TOKEN}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout, done.stderr
    status, *loaded = done.stdout.splitlines()[-1].split()  # the command's own output comes first
    return int(status), loaded


def _event_scan_config(tmp_path: Path, database: Path, fake: FakeApis) -> Path:
    config = tmp_path / "netwatch.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{database}'}}\n"
                      f"segware: {{base_url: '{fake.url}'}}\n"
                      "event_scan: {codes: {E130: 5}}\n", encoding="utf-8")
    return config


def test_db_init_and_event_scan_on_sqlite_import_neither_pymysql_nor_cryptography(tmp_path: Path) -> None:
    with FakeApis(token=TOKEN) as fake:
        config = _event_scan_config(tmp_path, tmp_path / "netwatch.db", fake)

        assert _modules_after(["db", "init"], config, tmp_path) == (0, [])
        assert _modules_after(["run", "event-scan"], config, tmp_path) == (0, [])
        assert len(fake.requests_to("GET", "/v1/events")) == 1


def test_a_sqlite_file_that_fails_to_open_is_69_without_pymysql_or_cryptography(tmp_path: Path) -> None:
    # Its header passes the check before connecting; the rest of it is not a database.
    database = tmp_path / "netwatch.db"
    database.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    database.chmod(0o600)
    with FakeApis(token=TOKEN) as fake:
        config = _event_scan_config(tmp_path, database, fake)

        assert _modules_after(["db", "init"], config, tmp_path) == (69, [])
        assert _modules_after(["run", "event-scan"], config, tmp_path) == (69, [])
        assert fake.requests_to("GET", "/v1/events") == []
