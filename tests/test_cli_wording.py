"""Small CLI texts that said the wrong thing: --shard with a zero count, check-config's host count,
and where help goes (README's Output section says it, and the CLI does it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inproc import InProcess, run_command
from jobkit import log_lines

from netwatch.errors import UsageError
from netwatch.shard import parse_shard

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("text", ["1/0", "0/0", "7/00"])
def test_a_zero_shard_count_is_named_as_such(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_shard(text)
    assert err.value.message == f"--shard: the count must be at least 1, got {text!r}"


def test_an_index_past_the_count_names_the_allowed_indexes() -> None:
    with pytest.raises(UsageError) as err:
        parse_shard("2/2")
    assert err.value.message == "--shard: index must be below the count (0..1), got '2/2'"


@pytest.mark.parametrize(("count", "shown"), [(0, "0 hosts"), (1, "1 host"), (2, "2 hosts")])
def test_check_config_counts_hosts_in_good_english(nwi: InProcess, count: int, shown: str) -> None:
    config = nwi.write_config([{"name": f"lo-{n}", "address": f"127.0.0.{n + 1}"} for n in range(count)])

    done = nwi.run("check-config")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"{config}: ok ({shown})"


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["run", "--help"], ["db", "upgrade", "--help"]])
def test_asked_for_help_goes_to_stdout_with_exit_0(args: list[str]) -> None:
    done = run_command(args, _clean_env())
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Usage: netwatch")


@pytest.mark.parametrize("args", [[], ["run"], ["db"]])
def test_a_group_without_its_command_prints_its_help_to_stderr_with_exit_64(args: list[str]) -> None:
    done = run_command(args, _clean_env())
    assert (done.returncode, done.stdout) == (64, "")
    assert done.stderr.startswith("Usage: netwatch")


def test_readme_says_where_help_goes() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "and the help that `--help` or `-h` asks for, with exit 0" in text
    assert "prints its help to stderr instead, with exit 64" in text


def test_a_directory_given_as_config_is_still_a_configuration_error(tmp_path: Path) -> None:
    """--config offers file names to shell completion; the loader, not click, judges the file (78)."""
    done = run_command(["status", "--config", str(tmp_path)], _clean_env())
    assert done.returncode == 78, done.stderr
    assert log_lines(done.stderr) == [f"error: {tmp_path}: cannot read config file: a directory, not a regular file"]
