"""`netwatch report incidents` and `report daily`: offline periods with the events sent about them, per day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from historyseed import HostHistory, Seen, minute_checks, write_history
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy.engine import Engine

from netwatch.db.outbox import OutboxItem, enqueue

HOSTS = [{"name": "web-1", "address": "127.0.0.1"}]
T0 = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


def message(key: str, status: str) -> OutboxItem:
    return OutboxItem(id=None, channel="sigma", idempotency_key=key, kind="host_offline", subject="web-1",
                      payload={}, status=status, attempts=1, http_status=None, last_error=None, next_attempt_at=None,
                      created_at=T0, updated_at=T0, delivered_at=None, run_id=None)


def seed(engine: Engine, ongoing_since: datetime) -> None:
    """web-1: down 00:05-00:15 on 2026-11-21 (events sent and dead); db-1: down since `ongoing_since`."""
    web_1 = [*minute_checks(T0, 5), Seen(T0 + timedelta(minutes=5), "failed", event_key="k-down"),
             *minute_checks(T0 + timedelta(minutes=6), 9, "failed"),
             Seen(T0 + timedelta(minutes=15), "ok", 1.0, event_key="k-up"),
             *minute_checks(T0 + timedelta(minutes=16), 3)]
    db_1 = [*minute_checks(ongoing_since - timedelta(minutes=3), 3, rtt_ms=0.7),
            Seen(ongoing_since, "failed", error="no reply", event_key="k-db"),
            *minute_checks(ongoing_since + timedelta(minutes=1), 2, "failed")]
    write_history(engine, [HostHistory("web-1", "1234", web_1), HostHistory("db-1", "5678", db_1)])
    with engine.begin() as conn:
        enqueue(conn, [message("k-down", "sent"), message("k-up", "dead"), message("k-db", "pending")])


def incidents(nwi: InProcess, *args: str) -> list[dict[str, object]]:
    done = nwi.run("report", "incidents", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_incident_with_its_end_or_ongoing_and_its_events(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    ongoing_since = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    seed(engine, ongoing_since)

    rows = incidents(nwi)

    assert [(r["host"], r["account"], r["start"], r["end"]) for r in rows] == [
        ("web-1", "1234", "2026-11-21T00:05:00+00:00", "2026-11-21T00:15:00+00:00"),
        ("db-1", "5678", ongoing_since.isoformat(), "ongoing")]
    assert rows[0]["duration_s"] == 600
    assert 1800 <= rows[1]["duration_s"] < 1900  # up to now
    assert [(r["start_event"], r["start_event_status"], r["end_event"], r["end_event_status"]) for r in rows] == [
        ("k-down", "sent", "k-up", "dead"), ("k-db", "pending", None, None)]


def test_open_since_and_scope_filters(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine, datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))

    assert [r["host"] for r in incidents(nwi, "--open")] == ["db-1"]
    # An incident that began before the window but is still ongoing is in it; one that ended before is not.
    assert [r["host"] for r in incidents(nwi, "--since", "1h")] == ["db-1"]
    assert [r["host"] for r in incidents(nwi, "--account", "1234")] == ["web-1"]
    assert [r["host"] for r in incidents(nwi, "--host", "web-1", "--open")] == []


def test_the_table_says_ongoing(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    done = nwi.run("report", "incidents", "--open")
    header, row = done.stdout.splitlines()
    assert header.split() == ["host", "account", "start", "end", "duration_s", "start_event_status",
                              "end_event_status"]
    assert row.split()[:4] == ["db-1", "5678", row.split()[2], "ongoing"]


def test_the_daily_report_per_host(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed(engine, datetime(2026, 11, 21, 12, 0, tzinfo=UTC))

    done = nwi.run("report", "daily", "--date", "2026-11-21", "--json")

    assert done.returncode == 0, done.stderr
    assert [(r["host"], r["account"], r["date"], r["checks"], r["good_checks"], r["uptime_pct"], r["incidents"])
            for r in json.loads(done.stdout)] == [
        ("db-1", "5678", "2026-11-21", 6, 3, 60.0, 1),
        ("web-1", "1234", "2026-11-21", 19, 9, 44.444, 1)]
    other = nwi.run("report", "daily", "--date", "2026-11-22", "--csv")
    assert other.stdout == "host,account,date,checks,good_checks,uptime_pct,latency_avg_ms,incidents\r\n"


@pytest.mark.parametrize("command", [["report", "incidents"], ["report", "incidents", "--open"],
                                     ["report", "daily"], ["report", "daily", "--date", "2026-11-21"]])
def test_an_empty_database_is_an_empty_report(nwi: InProcess, command: list[str]) -> None:
    nwi.write_config(HOSTS)
    done = nwi.run(*command, "--json")
    assert (done.returncode, done.stdout) == (0, "[]\n")


@pytest.mark.parametrize(("args", "message"), [
    (["report", "incidents", "--since", "a week"], "error: --since: expected a number and a unit"),
    (["report", "incidents", "--host", "nope"], "error: --host: no host named 'nope' has ever been checked"),
    (["report", "daily", "--date", "2026-02-30"], "error: --date: expected a date such as 2026-11-22, got"),
])
def test_bad_options_are_usage_errors(nwi: InProcess, args: list[str], message: str) -> None:
    nwi.write_config(HOSTS)
    done = nwi.run(*args)
    assert done.returncode == 64
    [line] = log_lines(done.stderr)
    assert line.startswith(message)
