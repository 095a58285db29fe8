"""`--since` ages are bounded (100 years): a larger one is a usage error (64), never an overflow (70)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from inproc import InProcess
from jobkit import log_lines

from netwatch.errors import UsageError
from netwatch.reports import MAX_AGE, parse_age

HUGE = ["36526d", "99999999d", "876601h", "999999999999999999999999s", "9" * 5000 + "s", "0000000000000036526d"]


@pytest.mark.parametrize(("text", "age"), [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("24 h", timedelta(hours=24)),
    ("36525d", timedelta(days=36_525)), ("876600h", timedelta(days=36_525)), ("0d", timedelta(0)),
    ("000007d", timedelta(days=7)),
])
def test_ages_up_to_a_hundred_years(text: str, age: timedelta) -> None:
    assert parse_age(text) == age
    assert MAX_AGE == timedelta(days=36_525)


@pytest.mark.parametrize("text", HUGE)
def test_a_larger_age_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_age(text)
    assert "is more than 36525d (100 years), the longest age" in err.value.message
    assert len(err.value.message) < 200


@pytest.mark.parametrize("args", [["alerts", "--since", "99999999d"],
                                  ["alerts", "log", "--since", "999999999999999999999999s"],
                                  ["alerts", "--since", "9" * 5000 + "s", "log"]])
def test_the_report_commands_refuse_a_huge_age_with_64(nwi: InProcess, args: list[str]) -> None:
    done = nwi.run(*args)
    assert done.returncode == 64, done.stderr
    [line] = log_lines(done.stderr)
    assert line.startswith("error: --since: ") and line.endswith("is more than 36525d (100 years), the longest age")
    assert done.stdout == ""
