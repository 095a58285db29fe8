"""An existing SQLite file that other users may read or write is warned about, and left as it is.

netwatch creates its file 0600; one made before that (0644) holds every host, alert and queued
message for anyone on the machine to read. As for token files, netwatch says so and does not
chmod an operator's file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy import text

from netwatch.db.engine import build_engine

HOSTS = [{"name": "lo", "address": "127.0.0.1"}]


def database_with_mode(path: Path, mode: int) -> None:
    engine = build_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    os.chmod(path, mode)


@pytest.mark.parametrize("command", [["run", "ping-sweep"], ["check-config"], ["status"]], ids=" ".join)
def test_a_database_file_others_can_read_is_named_with_its_mode(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "old.db"
    database_with_mode(path, 0o644)
    nw = InProcess(tmp_path, f"sqlite:///{path}", {})
    nw.write_config(HOSTS)

    done = nw.run(*command)

    warning = f"warning: database.url: {path} can be read or written by other users (mode 0644): chmod 600 it"
    assert warning in log_lines(done.stderr), done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_a_file_only_its_owner_and_group_may_read_gets_no_warning(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "nw.db"
    database_with_mode(path, mode)
    nw = InProcess(tmp_path, f"sqlite:///{path}", {})
    nw.write_config(HOSTS)

    done = nw.sweep()

    assert done.returncode == 0, done.stderr
    assert not [line for line in log_lines(done.stderr) if line.startswith("warning")]
