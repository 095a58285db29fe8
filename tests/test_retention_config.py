"""`retention.*`: defaults, whole days >= 1 with errors naming the key, and the UTC-day cutoffs they give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from netwatch.config import RetentionConfig, parse_config
from netwatch.core.retention import cutoff
from netwatch.errors import ConfigError
from netwatch.jobs.cleanup import kept_days

DAY_KEYS = ["raw_days", "hourly_days", "daily_days", "transitions_days", "runs_days", "outbox_days",
            "register_days", "scan_counts_days"]


def _retention(section: Any) -> RetentionConfig:
    return parse_config({"hosts": [], "retention": section}, "nw.yaml", Path("/tmp"), {}).retention


def test_defaults_are_the_documented_ones() -> None:
    assert _retention(None) == RetentionConfig(raw_days=14, hourly_days=90, daily_days=400, transitions_days=400,
                                               runs_days=90, outbox_days=30, register_days=400,
                                               scan_counts_days=14, batch_rows=5000)


def test_each_key_is_read_for_its_own_kind() -> None:
    chosen = _retention({key: index + 1 for index, key in enumerate(DAY_KEYS)})

    assert kept_days(chosen) == {"checks": 1, "rollups_hourly": 2, "rollups_daily": 3, "transitions": 4,
                                 "job_runs": 5, "outbox": 6, "register_log": 7, "scan_counts": 8}


@pytest.mark.parametrize("key", [*DAY_KEYS, "batch_rows"])
@pytest.mark.parametrize(("value", "problem"), [
    (0, "must be at least 1, got 0"),
    (-3, "must be at least 1, got -3"),
    (1.5, "must be a whole number, got 1.5"),
    (True, "must be a whole number, got True"),
    ("14", "must be a whole number, got '14'"),
])
def test_a_bad_value_is_refused_naming_its_key(key: str, value: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _retention({key: value})

    assert caught.value.message == f"nw.yaml: retention.{key}: {problem}"


def test_more_than_a_hundred_years_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"retention.raw_days: must be at most 36500"):
        _retention({"raw_days": 36_501})


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"retention.raw_hours: unknown key"):
        _retention({"raw_hours": 3})


@pytest.mark.parametrize(("now", "days", "expected"), [
    (datetime(2026, 11, 22, 10, 30, tzinfo=UTC), 14, datetime(2026, 11, 8, tzinfo=UTC)),
    (datetime(2026, 11, 22, 0, 0, tzinfo=UTC), 1, datetime(2026, 11, 21, tzinfo=UTC)),
    (datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC), 1, datetime(2026, 11, 21, tzinfo=UTC)),
    (datetime(2026, 3, 1, 12, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
    # UTC days, whatever the offset `now` carries: 22:30 at -03:00 is already the 23rd in UTC.
    (datetime(2026, 11, 22, 22, 30, tzinfo=timezone(timedelta(hours=-3))), 1, datetime(2026, 11, 22, tzinfo=UTC)),
])
def test_the_cutoff_is_the_start_of_a_utc_day(now: datetime, days: int, expected: datetime) -> None:
    assert cutoff(now, days) == expected


def test_the_cutoff_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="naive"):
        cutoff(datetime(2026, 11, 22), 1)
