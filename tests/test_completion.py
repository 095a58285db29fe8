"""Shell completion as README documents it: click's `_NETWATCH_COMPLETE`, through the real entry points.

The completion script comes out of the console script and of `python -m netwatch` alike, and
completing words works without importing what the commands run (the CLI imports lazily).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CONSOLE_SCRIPT = Path(sys.executable).with_name("netwatch")
ENTRY_POINTS = {"console script": [str(CONSOLE_SCRIPT)], "python -m netwatch": [sys.executable, "-m", "netwatch"]}
SCRIPT_MARKS = {
    "bash": "complete -o nosort -F _netwatch_completion netwatch",
    "zsh": "#compdef netwatch",
    "fish": "complete --no-files --command netwatch",
}


def complete(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("NETWATCH_", "_NETWATCH_"))}
    return subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False)


def bash_completions(words: str, *, python_flags: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """What bash would offer for the last of `words` (an empty last word when they end in a space)."""
    split = words.split(" ")
    done = complete([sys.executable, *python_flags, "-m", "netwatch"],
                    {"_NETWATCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(split) - 1)})
    assert done.returncode == 0, done.stderr
    return [line.partition(",")[2] for line in done.stdout.splitlines()], done.stderr


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("shell", SCRIPT_MARKS)
def test_the_completion_script_comes_out(entry: str, shell: str) -> None:
    done = complete(ENTRY_POINTS[entry], {"_NETWATCH_COMPLETE": f"{shell}_source"})

    assert done.returncode == 0, done.stderr
    assert SCRIPT_MARKS[shell] in done.stdout
    assert "_NETWATCH_COMPLETE" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(("words", "offered"), [
    ("netwatch ru", ["run", "runs"]),
    ("netwatch run ", ["alert-clear", "cleanup", "event-scan", "http-check", "ping-sweep", "status-page"]),
    ("netwatch run ping-sweep --log-f", ["--log-format"]),
    ("netwatch --log-format ", ["text", "json"]),
    ("netwatch db ", ["init", "schema", "upgrade"]),
])
def test_words_complete(words: str, offered: list[str]) -> None:
    assert bash_completions(words)[0] == offered


def test_completing_imports_none_of_what_the_commands_run() -> None:
    offered, importtime = bash_completions("netwatch run ping-sweep --", python_flags=("-X", "importtime"))

    assert "--shard" in offered and "--config" in offered
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", importtime, re.MULTILINE))
    assert "click" in imported
    assert not {"sqlalchemy", "requests", "yaml", "netwatch.jobs.ping_sweep"} & imported


@pytest.mark.parametrize("words", ["netwatch status --config ", "netwatch run ping-sweep --config net",
                                   "netwatch alerts log --config ", "netwatch db init --config "])
def test_config_completes_file_names(words: str) -> None:
    """click's `file` completion: the shell then offers the file names of the current folder."""
    split = words.split(" ")
    done = complete([sys.executable, "-m", "netwatch"],
                    {"_NETWATCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(split) - 1)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"file,{split[-1]}"]
