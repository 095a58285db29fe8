"""`netwatch status` says why a host is where it is: its last check, its streak, when a held change is due."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from historyseed import HostHistory, Seen, minute_checks, write_history
from inproc import InProcess
from sqlalchemy import update
from sqlalchemy.engine import Engine

from netwatch.db import tables

HOSTS = [{"name": "web-1", "address": "127.0.0.1"}]
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_last_check_streak_and_the_time_a_held_change_is_due(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS, thresholds={"min_transition_seconds": 600})
    write_history(engine, [
        HostHistory("web-1", "1234", [*minute_checks(T0, 3, rtt_ms=2.0),
                                      Seen(T0 + timedelta(minutes=3), "failed", error="no reply", state="online"),
                                      Seen(T0 + timedelta(minutes=4), "failed", error="no reply", state="online")]),
        HostHistory("web-2", "1234", minute_checks(T0, 2, "degraded", rtt_ms=40.0)),
        HostHistory("gone", None, minute_checks(T0, 1), in_inventory=False),
    ])
    # web-1 came online at 10:00; its offline change is held by min_transition_seconds (10 minutes).
    with engine.begin() as conn:
        conn.execute(update(tables.hosts).where(tables.hosts.c.name == "web-1").values(held=True))

    done = nwi.run("status", "--json")

    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert sorted(rows) == ["web-1", "web-2"]
    web_1, web_2 = rows["web-1"], rows["web-2"]
    assert (web_1["status"], web_1["streak"], web_1["loss_pct"], web_1["rtt_avg_ms"], web_1["reason"]) == (
        "online", "2 failed", 100.0, None, "no reply")
    assert (web_1["held"], web_1["held_until"]) == (True, "2026-11-21T10:10:00+00:00")
    assert (web_2["streak"], web_2["loss_pct"], web_2["rtt_avg_ms"], web_2["reason"], web_2["held_until"]) == (
        "2 good", 50.0, 40.0, None, None)
    table = nwi.run("status").stdout.splitlines()
    assert table[0].split()[-5:] == ["streak", "loss_pct", "rtt_avg_ms", "reason", "held_until"]
    assert "2 failed" in table[1] and table[1].endswith("100.0     -           no reply  2026-11-21T10:10:00+00:00")


def test_a_swept_host_shows_its_streak_and_no_held_change(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    assert nwi.sweep().returncode == 0
    [row] = json.loads(nwi.run("status", "--json").stdout)
    assert (row["name"], row["streak"], row["held_until"]) == ("web-1", "1 good", None)
