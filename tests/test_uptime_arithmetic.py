"""The pure arithmetic of the uptime reports: periods from options, incidents clipped, the figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from netwatch.core.periods import Period, dates_period, days_period, report_period
from netwatch.core.rollup import DAY, RTT_BUCKETS
from netwatch.core.uptime import Downtime, DowntimeSums, Totals, downtime, uptime_figures
from netwatch.errors import UsageError

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TODAY_S = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp())


def test_since_days_are_whole_utc_days_including_today_up_to_now() -> None:
    period = days_period("3d", NOW)
    assert (period.start_s, period.end_s, period.until_s) == (TODAY_S - 2 * DAY, TODAY_S + DAY, int(NOW.timestamp()))
    assert (period.first_day, period.last_day) == (date(2026, 11, 20), date(2026, 11, 22))
    assert period.known_s == 2 * DAY + 10.5 * 3600


def test_from_to_includes_both_days_and_a_past_period_is_known_to_its_end() -> None:
    period = dates_period(date(2026, 11, 1), date(2026, 11, 2), NOW)
    assert period.known_s == 2 * DAY
    assert report_period(None, "2026-11-21", None, NOW).last_day == date(2026, 11, 22)


@pytest.mark.parametrize(("since", "first", "last", "message"), [
    ("24h", None, None, "--since: expected a number of days from 1 to 3660 such as 30d, got '24h'"),
    ("0d", None, None, "--since: expected a number of days"),
    (None, "2026-13-01", None, "--from: expected a date such as 2026-11-22, got '2026-13-01'"),
    (None, "2026-11-02", "2026-11-01", "--to 2026-11-01 is before --from 2026-11-02"),
    (None, None, "2026-11-01", "--to needs --from"),
    ("7d", "2026-11-01", None, "--since and --from name two periods"),
])
def test_bad_period_options_are_usage_errors(since: str | None, first: str | None, last: str | None,
                                             message: str) -> None:
    with pytest.raises(UsageError) as err:
        report_period(since, first, last, NOW)
    assert err.value.message.startswith(message)


PERIOD = Period(1000, 2000, 2000)


def test_downtime_adds_hosts_up_keeps_the_longest_and_averages_the_incidents_that_ended() -> None:
    one = DowntimeSums(incidents=3, total_s=700, longest_s=500, ended=2, ended_s=1100)
    other = DowntimeSums(incidents=1, total_s=40, longest_s=40, ended=1, ended_s=40)
    assert downtime([one]) == Downtime(incidents=3, total_s=700, longest_s=500, mttr_s=550)
    assert downtime([one, other]) == Downtime(incidents=4, total_s=740, longest_s=500, mttr_s=380)
    assert downtime([DowntimeSums(1, 100, 100, 0, 0)]) == Downtime(1, 100, 100, None), "none ended: no MTTR"
    assert downtime([]) == Downtime(0, 0, None, None)


def test_figures_from_totals() -> None:
    histogram = [0] * RTT_BUCKETS
    histogram[11] = 10
    totals = Totals(hosts=2, checks=10, ok=7, degraded=1, failed=2, sent=20, received=15, rtt_samples=8,
                    rtt_min_us=900, rtt_sum_us=8 * 1500, rtt_max_us=2500, online_s=300, offline_s=100,
                    histogram=tuple(histogram))
    figures = uptime_figures(totals, PERIOD, Downtime(1, 100, 100, 100))
    assert figures["uptime_pct"] == 75.0
    assert figures["unknown_s"] == 2 * 1000 - 400
    assert (figures["check_success_pct"], figures["good_checks"], figures["loss_pct"]) == (80.0, 8, 25.0)
    assert (figures["latency_avg_ms"], figures["latency_max_ms"]) == (1.5, 2.5)
    assert 0.9 <= figures["latency_p95_ms"] <= 2.5


def test_no_data_gives_no_figures_rather_than_zero() -> None:
    empty = Totals(1, 0, 0, 0, 0, 0, 0, 0, None, 0, None, 0, 0, (0,) * RTT_BUCKETS)
    figures = uptime_figures(empty, PERIOD, Downtime(0, 0, None, None))
    assert [figures[k] for k in ("uptime_pct", "check_success_pct", "loss_pct", "latency_avg_ms", "latency_p95_ms")] \
        == [None] * 5
    assert figures["unknown_s"] == 1000
