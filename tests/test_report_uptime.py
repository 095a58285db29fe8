"""`netwatch report uptime`: from daily rollups or raw checks (the same numbers), by host or account.

The data (tests/historyseed.py) is what ping-sweep writes: web-1 checked every minute from
2026-11-20 23:50 to 2026-11-21 00:30 with an incident 00:05-00:15; web-2 (same account) fine on
2026-11-21 10:00-10:10; db-1 (another account) offline from 2026-11-21 12:06, still ongoing.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from historyseed import HostHistory, minute_checks, write_history
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy import delete, event
from sqlalchemy.engine import Engine

from netwatch.core.periods import MAX_DAYS, dates_period, days_period
from netwatch.db import tables
from netwatch.db.accounts import CachedAccount, store_accounts
from netwatch.history.incidents import Scope
from netwatch.history.uptime import uptime_rows

HOSTS = [{"name": "web-1", "address": "127.0.0.1"}]
DAY_21 = ["--from", "2026-11-21", "--to", "2026-11-21"]


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def seed(engine: Engine) -> None:
    web_1 = (minute_checks(at(20, 23, 50), 15) + minute_checks(at(21, 0, 5), 10, "failed", error="no reply")
             + minute_checks(at(21, 0, 15), 16))
    web_2 = minute_checks(at(21, 10, 0), 11, rtt_ms=2.5)
    db_1 = minute_checks(at(21, 12, 0), 6, rtt_ms=0.7) + minute_checks(at(21, 12, 6), 5, "failed")
    write_history(engine, [HostHistory("web-1", "1234", web_1), HostHistory("web-2", "1234", web_2),
                           HostHistory("db-1", "5678", db_1)])
    with engine.begin() as conn:
        store_accounts(conn, [CachedAccount("1234", True, {"name": "Loja Centro"}, at(21, 0, 0))])


def uptime(nwi: InProcess, *args: str) -> list[dict[str, object]]:
    done = nwi.run("report", "uptime", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_per_host_figures_of_one_day(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)

    rows = {row["host"]: row for row in uptime(nwi, *DAY_21)}

    assert sorted(rows) == ["db-1", "web-1", "web-2"]
    web_1 = rows["web-1"]
    # The 00:00 check's minute lies before the day: online 00:01-00:05 and 00:16-00:30, offline 00:06-00:15.
    assert (web_1["online_s"], web_1["offline_s"], web_1["unknown_s"]) == (1200, 600, 86_400 - 1800)
    assert (web_1["uptime_pct"], web_1["checks"], web_1["good_checks"]) == (66.667, 31, 21)
    assert (web_1["incidents"], web_1["downtime_s"], web_1["longest_downtime_s"], web_1["mttr_s"]) == (1, 600, 600, 600)
    assert (web_1["account_name"], web_1["from"], web_1["to"]) == ("Loja Centro", "2026-11-21", "2026-11-21")
    assert (web_1["latency_avg_ms"], web_1["latency_max_ms"]) == (1.0, 1.1)
    # db-1's incident is ongoing: down until the end of the (past) day, never recovered.
    db_1 = rows["db-1"]
    assert (db_1["incidents"], db_1["downtime_s"], db_1["mttr_s"]) == (1, 86_400 - (12 * 60 + 6) * 60, None)
    assert (db_1["offline_s"], db_1["online_s"], db_1["loss_pct"]) == (240, 360, 45.455)


def test_a_check_after_the_period_credits_its_gap_back_into_it(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)

    for source in ([], ["--from-raw"]):
        [web_1] = uptime(nwi, "--from", "2026-11-20", "--to", "2026-11-20", *source)
        # Ten checks 23:50-23:59 (the first has no gap), and 23:59-24:00 from the check at 00:00.
        assert (web_1["host"], web_1["checks"], web_1["online_s"]) == ("web-1", 10, 600)


@pytest.mark.parametrize("args", [DAY_21, ["--from", "2026-11-20", "--to", "2026-11-22"],
                                  ["--from", "2026-11-20", "--to", "2026-11-20"]])
@pytest.mark.parametrize("by", ["host", "account"])
def test_raw_checks_and_rollups_give_the_same_report(nwi: InProcess, engine: Engine, args: list[str], by: str) -> None:
    nwi.write_config(HOSTS)
    seed(engine)
    for fmt in ("--json", "--csv"):
        from_rollups = nwi.run("report", "uptime", *args, "--by", by, fmt)
        from_raw = nwi.run("report", "uptime", *args, "--by", by, "--from-raw", fmt)
        assert from_rollups.returncode == from_raw.returncode == 0, from_raw.stderr
        assert from_rollups.stdout == from_raw.stdout
        assert from_rollups.stdout.count("web-") + from_rollups.stdout.count("1234") > 0


@pytest.mark.parametrize("by", ["host", "account"])
def test_the_day_in_progress_is_the_same_from_both_sources(engine: Engine, by: str) -> None:
    seed(engine)
    period = days_period("2d", at(21, 23, 0))  # 2026-11-20 and 2026-11-21 up to 23:00
    with engine.connect() as conn:
        from_rollups = uptime_rows(conn, period, Scope(by=by))
        assert from_rollups == uptime_rows(conn, period, Scope(by=by), from_raw=True)
    first = from_rollups[0]
    assert first["unknown_s"] == (86_400 + 23 * 3600) * first["hosts"] - first["online_s"] - first["offline_s"]
    assert (first["from"], first["to"]) == ("2026-11-20", "2026-11-21")


def test_the_rollup_report_still_works_after_raw_checks_are_gone(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)
    before = nwi.run("report", "uptime", *DAY_21, "--json").stdout
    with engine.begin() as conn:
        conn.execute(delete(tables.checks))

    assert nwi.run("report", "uptime", *DAY_21, "--json").stdout == before
    assert nwi.run("report", "uptime", *DAY_21, "--json", "--from-raw").stdout == "[]\n"


def test_by_account_sums_the_hosts_of_each_account(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)

    rows = uptime(nwi, *DAY_21, "--by", "account")

    assert [(row["account"], row["account_name"], row["hosts"]) for row in rows] == [
        ("1234", "Loja Centro", 2), ("5678", None, 1)]
    # web-1 1200 s online + web-2 600 s, 600 s offline; two hosts' worth of known time.
    assert (rows[0]["online_s"], rows[0]["offline_s"], rows[0]["uptime_pct"]) == (1800, 600, 75.0)
    assert (rows[0]["unknown_s"], rows[0]["incidents"], rows[0]["checks"]) == (2 * 86_400 - 2400, 1, 42)
    assert uptime(nwi, *DAY_21, "--account", "1234", "--by", "account") == rows[:1]


def test_host_and_account_filters(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)
    assert [row["host"] for row in uptime(nwi, *DAY_21, "--account", "1234")] == ["web-1", "web-2"]
    assert [row["host"] for row in uptime(nwi, *DAY_21, "--host", "db-1")] == ["db-1"]
    assert uptime(nwi, *DAY_21, "--account", "0000") == []


def test_the_table_shows_uptime_and_unknown_time(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)
    done = nwi.run("report", "uptime", *DAY_21, "--host", "web-1")
    header, row = done.stdout.splitlines()
    assert header.split()[:6] == ["host", "kind", "client", "account", "uptime_pct", "unknown_s"]
    assert row.split()[:6] == ["web-1", "host", "-", "1234", "66.667", "84600"]


def test_an_empty_database_is_an_empty_report(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    assert uptime(nwi) == []
    assert uptime(nwi, "--by", "account", "--from-raw") == []
    done = nwi.run("report", "uptime", "--csv")
    assert (done.returncode, done.stdout.split(",")[:4]) == (0, ["host", "kind", "client", "account"])


def test_the_longest_period_is_answered_and_a_longer_one_refused(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine)
    longest = f"{MAX_DAYS}d"
    for extra in ([], ["--by", "account"], ["--from-raw"]):
        done = nwi.run("report", "uptime", "--since", longest, "--json", *extra)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)
    done = nwi.run("report", "uptime", "--since", f"{MAX_DAYS + 1}d")
    assert done.returncode == 64 and f"from 1 to {MAX_DAYS}" in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "24h"], "error: --since: expected a number of days from 1 to 3660 such as 30d, got '24h'"),
    (["--from", "yesterday"], "error: --from: expected a date such as 2026-11-22, got 'yesterday'"),
    (["--from", "2026-11-02", "--to", "2026-11-01"], "error: --to 2026-11-01 is before --from 2026-11-02"),
    (["--host", "nope"], "error: --host: no host named 'nope' has ever been checked"),
])
def test_bad_options_are_one_line_usage_errors(nwi: InProcess, args: list[str], message: str) -> None:
    nwi.write_config(HOSTS)
    done = nwi.run("report", "uptime", *args)
    assert (done.returncode, log_lines(done.stderr), done.stdout) == (64, [message], "")


@pytest.mark.parametrize("from_raw", [False, True])
def test_the_statements_do_not_grow_with_hosts(engine: Engine, from_raw: bool) -> None:
    histories = [HostHistory(f"h-{i:03d}", f"a{i % 3}", minute_checks(at(21, 0, 0), 3)) for i in range(60)]
    write_history(engine, histories)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0]))
    period = dates_period(at(21, 0, 0).date(), at(21, 0, 0).date(), at(22, 0, 0))
    with engine.connect() as conn:
        for by in ("host", "account"):
            statements.clear()
            rows = uptime_rows(conn, period, Scope(by=by), from_raw)
            assert len(rows) == (60 if by == "host" else 3)
            # The sums, the incidents summed per host, the account names.
            assert statements.count("SELECT") == 3


def _month_edge_seed(engine: Engine) -> None:
    """Checks around a month edge with days missing: the reader's windows must find each host's
    latest row of each month, and of the first month before the period."""
    edge = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)
    gappy = (minute_checks(datetime(2026, 11, 3, 8, 0, tzinfo=UTC), 5)
             + minute_checks(datetime(2026, 11, 17, 9, 0, tzinfo=UTC), 7) + minute_checks(edge, 20)
             + minute_checks(datetime(2026, 12, 4, 12, 0, tzinfo=UTC), 4, status="failed")
             + minute_checks(datetime(2026, 12, 4, 12, 4, tzinfo=UTC), 6, rtt_ms=3.0))
    steady = [check for d in range(25, 35) for check in minute_checks(datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
                                                              + timedelta(days=d), 3, rtt_ms=0.4 + d / 100)]
    write_history(engine, [HostHistory("gappy", "1234", gappy), HostHistory("steady", "5678", steady)])


# Within one month, across one edge, whole months, single days on either side of the edge, a
# range starting before the first check: every host's latest rows are found in each case.
MONTH_EDGE_PERIODS = [
    ("2026-11-01", "2026-12-31"), ("2026-11-18", "2026-12-03"), ("2026-11-30", "2026-11-30"),
    ("2026-12-01", "2026-12-01"), ("2026-11-04", "2026-11-16"), ("2026-10-20", "2026-11-02"),
    ("2026-11-17", "2026-12-04"), ("2026-12-02", "2026-12-03"),
]


def test_periods_across_month_edges_and_missing_days_agree_with_raw_checks(engine: Engine) -> None:
    _month_edge_seed(engine)  # once: every period reads the same history
    with engine.connect() as conn:
        for first, last in MONTH_EDGE_PERIODS:
            period = dates_period(date.fromisoformat(first), date.fromisoformat(last),
                                  datetime(2027, 1, 1, tzinfo=UTC))
            for by in ("host", "account"):
                from_rollups = uptime_rows(conn, period, Scope(by=by))
                assert from_rollups == uptime_rows(conn, period, Scope(by=by), from_raw=True), (first, last, by)
                assert all(row["checks"] for row in from_rollups), (first, last, by)
