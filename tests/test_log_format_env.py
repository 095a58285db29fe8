"""NETWATCH_LOG_FORMAT: text or json in any case with spaces around it; anything else is a usage error (64)
naming the variable, in text, before the command runs."""

from __future__ import annotations

import json
import os

import pytest
from inproc import run_command
from jobkit import log_lines

from netwatch.cli import early_log_options, env_log_format
from netwatch.errors import UsageError


def netwatch(*args: str, log_format: str | None) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if key != "NETWATCH_LOG_FORMAT"}
    if log_format is not None:
        env["NETWATCH_LOG_FORMAT"] = log_format
    done = run_command(list(args), env)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("value", ["json", "JSON", " json", "Json \n", "\tJSON\t"])
def test_json_in_any_case_with_spaces_around_it_is_json(value: str) -> None:
    code, _, err = netwatch("run", log_format=value)  # a group without its command: an error line
    assert code == 64
    [line] = err.splitlines()
    assert json.loads(line)["msg"] == "missing command (see `netwatch run --help`)"


@pytest.mark.parametrize("value", ["text", "TEXT", " Text ", "", "   "])
def test_text_in_any_case_and_empty_are_text(value: str) -> None:
    assert env_log_format({"NETWATCH_LOG_FORMAT": value}) == "text"


@pytest.mark.parametrize("value", ["xml", "jsonl", "text json", "j son", "\x1b[31mjson"])
def test_any_other_value_is_a_usage_error_naming_the_variable_in_text(value: str) -> None:
    code, out, err = netwatch("db", "schema", log_format=value)
    assert (code, out) == (64, ""), "the command did not run"
    assert log_lines(err) == [f"error: NETWATCH_LOG_FORMAT={value!r} is not a log format: use text or json"]


def test_a_long_bad_value_is_cut_in_the_message() -> None:
    with pytest.raises(UsageError) as err:
        env_log_format({"NETWATCH_LOG_FORMAT": "x" * 10_000})
    assert len(err.value.message) < 200


def test_the_option_wins_over_a_bad_variable() -> None:
    assert early_log_options(["--log-format", "json"], {"NETWATCH_LOG_FORMAT": "xml"}) == ("json", "info")
    code, out, _ = netwatch("db", "schema", "--log-format", "text", log_format="xml")
    assert code == 0 and "CREATE TABLE" in out
