"""Report periods from command-line text: pure code, bad text is a UsageError naming its option.

A period is whole UTC days [start, end) in epoch seconds; `until` is where what is known stops
(now, for the day in progress), so unknown time is counted up to then, not to the day's end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from netwatch.core.rollup import DAY, bucket_start
from netwatch.errors import UsageError
from netwatch.excerpt import excerpt

_DAYS = re.compile(r"^0*(\d{1,6})d$")
# The most days a report spans: ten years, more than any retention keeps. The report's statement
# reads a few pieces of each month of the period, so its size grows with the months: at a hundred
# years SQLite refused it (more than 500 terms in a compound SELECT).
MAX_DAYS = 3_660


@dataclass(frozen=True)
class Period:
    """[start_s, end_s) in epoch seconds; `until_s` = min(end, now): the end of what can be known."""

    start_s: int
    end_s: int
    until_s: int

    @property
    def known_s(self) -> int:
        """Seconds of the period up to now (what online, offline and unknown time add up to)."""
        return max(0, self.until_s - self.start_s)

    @property
    def first_day(self) -> date:
        return datetime.fromtimestamp(self.start_s, UTC).date()

    @property
    def last_day(self) -> date:
        return datetime.fromtimestamp(self.end_s - DAY, UTC).date()


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def parse_date(option: str, text: str) -> date:
    """An ISO date (2026-11-22) given to `option`."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: expected a date such as 2026-11-22, got {excerpt(text)}") from None


def days_period(since: str, now: datetime) -> Period:
    """`--since Nd`: the last N UTC days including today, up to `now`."""
    match = _DAYS.match(since.strip().lower())
    if not match or not 1 <= int(match[1]) <= MAX_DAYS:
        raise UsageError(f"--since: expected a number of days from 1 to {MAX_DAYS} such as 30d, got {excerpt(since)}")
    now_s = int(now.timestamp())
    end_s = bucket_start(now_s, DAY) + DAY
    return Period(end_s - int(match[1]) * DAY, end_s, now_s)


def dates_period(first: date, last: date, now: datetime) -> Period:
    """`--from D --to D`: the UTC days from `first` to `last`, both included."""
    if last < first:
        raise UsageError(f"--to {last.isoformat()} is before --from {first.isoformat()}")
    if (last - first).days >= MAX_DAYS:
        raise UsageError(f"--from {first.isoformat()} --to {last.isoformat()}: more than {MAX_DAYS} days")
    end_s = _epoch(last) + DAY
    return Period(_epoch(first), end_s, min(end_s, int(now.timestamp())))


def day_period(day: date, now: datetime) -> Period:
    """One UTC day (`report daily --date D`)."""
    return dates_period(day, day, now)


def report_period(since: str | None, first: str | None, last: str | None, now: datetime) -> Period:
    """The period of `--since Nd` (default 30d) or `--from D [--to D]` (--to defaults to today)."""
    if first is None:
        if last is not None:
            raise UsageError("--to needs --from: give the first day of the period too")
        return days_period(since or "30d", now)
    if since is not None:
        raise UsageError("--since and --from name two periods: give one of them")
    end = parse_date("--to", last) if last is not None else now.astimezone(UTC).date()
    return dates_period(parse_date("--from", first), end, now)
