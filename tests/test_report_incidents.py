"""`netwatch report incidents` and `report daily`: offline periods with the events sent about them, per day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from historyseed import HostHistory, SeedHost, Seen, add_hosts, add_transition, minute_checks, write_history
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy.engine import Engine

from netwatch.core.periods import Period
from netwatch.core.uptime import DowntimeSums
from netwatch.db.outbox import OutboxItem, enqueue
from netwatch.history.incidents import LocatedIncident, Scope, downtime_sums, incidents_in

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
    assert header.split() == ["host", "kind", "client", "account", "start", "end", "duration_s",
                              "start_event_status", "end_event_status"]
    assert row.split()[:6] == ["db-1", "host", "-", "5678", row.split()[4], "ongoing"]


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
    assert other.stdout == "host,kind,client,account,date,checks,good_checks,uptime_pct,latency_avg_ms,incidents\r\n"


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


def _reference(found: list[LocatedIncident], period: Period) -> dict[str, DowntimeSums]:
    """What `downtime_sums` should give, computed from `incidents_in`'s incidents one by one."""
    sums: dict[str, list[int]] = {}
    for item in found:
        incident = item.incident
        end = period.until_s if incident.end_s is None else min(incident.end_s, period.until_s)
        inside = end - max(incident.start_s, period.start_s)
        ended = incident.end_s is not None and incident.end_s <= period.until_s
        total = sums.setdefault(item.host, [0, 0, 0, 0, 0])
        total[0] += 1
        total[1] += inside
        total[2] = max(total[2], inside)
        total[3] += ended
        total[4] += incident.end_s - incident.start_s if ended and incident.end_s is not None else 0
    return {host: DowntimeSums(*values) for host, values in sums.items()}


@pytest.mark.parametrize(("start_s", "end_s", "until_s"), [
    (0, 30 * 86_400, 30 * 86_400), (86_400, 2 * 86_400, 2 * 86_400), (86_400 + 600, 86_400 + 3_600, 86_400 + 3_000),
    (2 * 86_400, 3 * 86_400, 2 * 86_400 + 60), (5 * 86_400, 6 * 86_400, 6 * 86_400),
])
def test_downtime_sums_in_sql_are_the_incidents_clipped_one_by_one(engine: Engine, start_s: int, end_s: int,
                                                                    until_s: int) -> None:
    base = int(T0.timestamp())
    changes = {  # host: (offset from T0 in seconds, to-state), in order
        "a": [(0, "online"), (86_400 + 300, "offline"), (86_400 + 900, "online"), (86_400 + 2_000, "offline"),
              (2 * 86_400 + 120, "online")],
        "b": [(0, "online"), (3_600, "offline")],              # ongoing since the first day
        "c": [(0, "offline"), (86_400 + 3_100, "unknown"), (4 * 86_400, "online")],  # removed, then back
        "d": [(0, "online")],
    }
    with engine.begin() as conn:
        ids = add_hosts(conn, [SeedHost(name, "1234", "online", None) for name in changes])
        for name, moves in changes.items():
            state = "unknown"
            for offset, to_state in moves:
                add_transition(conn, ids[name], T0 + timedelta(seconds=offset), state, to_state)
                state = to_state
    period = Period(base + start_s, base + end_s, base + until_s)
    with engine.connect() as conn:
        found = downtime_sums(conn, period, Scope())
        expected = _reference(incidents_in(conn, period.start_s, period.until_s, Scope()), period)
    assert {host: sums for host, (_, sums) in found.items()} == expected
    assert {account for account, _ in found.values()} <= {"1234"}


def test_of_changes_at_the_same_second_before_the_period_the_last_written_is_the_state_it_began_in(
        engine: Engine) -> None:
    """Two changes stamped with the same second (ids in the order written): the later one holds."""
    tied, later = T0 - timedelta(hours=1), T0 + timedelta(hours=2)
    with engine.begin() as conn:
        ids = add_hosts(conn, [SeedHost(name, "1234", "online", None) for name in ("back", "down")])
        for first, second in (("offline", "online"), ("online", "offline")):
            host = ids["back" if second == "online" else "down"]
            add_transition(conn, host, tied, "unknown", first)
            add_transition(conn, host, tied, first, second)
            add_transition(conn, host, later, second, "unknown")
    period = Period(int(T0.timestamp()), int(T0.timestamp()) + 86_400, int(T0.timestamp()) + 86_400)
    with engine.connect() as conn:
        found = {host: sums for host, (_, sums) in downtime_sums(conn, period, Scope()).items()}
    # "down" went offline an hour before the period and came back 2 h into it; "back" was online.
    assert found == {"down": DowntimeSums(1, 7_200, 7_200, 1, 10_800)}
