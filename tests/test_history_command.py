"""`netwatch history HOST`: the host's checks (with loss, RTT, failure reason) and transitions, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from historyseed import HostHistory, Seen, write_history
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy.engine import Engine

HOSTS = [{"name": "web-1", "address": "127.0.0.1"}]


def test_checks_and_transitions_newest_first_within_the_age(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    now = datetime.now(UTC).replace(microsecond=0)
    write_history(engine, [
        HostHistory("web-1", "1234", [
            Seen(now - timedelta(hours=30), "ok", 1.0),
            Seen(now - timedelta(hours=2), "ok", 1.5),
            Seen(now - timedelta(hours=1), "failed", error="DNS: web-1.example: no such host"),
            Seen(now - timedelta(minutes=30), "degraded", 40.0),
        ]),
        HostHistory("other", None, [Seen(now - timedelta(hours=1), "ok", 1.0)]),
    ])

    done = nwi.run("history", "web-1", "--json")

    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["kind"], r["status"]) for r in rows] == [
        ("transition", "online"), ("check", "degraded"), ("transition", "offline"), ("check", "failed"),
        ("check", "ok")]
    back, degraded, down, failed, ok = rows
    assert (degraded["loss_pct"], degraded["rtt_avg_ms"], degraded["rtt_min_ms"]) == (50.0, 40.0, 39.9)
    assert (failed["loss_pct"], failed["rtt_avg_ms"], failed["reason"]) == (100.0, None,
                                                                             "DNS: web-1.example: no such host")
    assert (down["from_state"], down["to_state"], down["at"], down["streak"]) == (
        "online", "offline", (now - timedelta(hours=1)).isoformat(), 1)
    assert (back["from_state"], back["to_state"], back["held_s"]) == ("offline", "online", 0)
    assert ok["at"] == (now - timedelta(hours=2)).isoformat()
    assert len(json.loads(nwi.run("history", "web-1", "--since", "2d", "--json").stdout)) == 7
    table = nwi.run("history", "web-1").stdout.splitlines()
    assert table[0].split() == ["at", "kind", "status", "loss_pct", "rtt_avg_ms", "reason", "streak", "held_s"]
    assert "DNS: web-1.example: no such host" in table[4]


def test_a_host_without_recent_history_is_an_empty_result(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    write_history(engine, [HostHistory("web-1", None, [Seen(datetime(2026, 1, 2, tzinfo=UTC), "ok", 1.0)])])
    done = nwi.run("history", "web-1", "--csv")
    assert (done.returncode, done.stdout.split("\r\n")[1:]) == (0, [""])


@pytest.mark.parametrize(("args", "message"), [
    (["history", "nope"], "error: HOST: no host named 'nope' has ever been checked"),
    (["history", "web-1", "--since", "yesterday"], "error: --since: expected a number and a unit (s, m, h, d)"),
])
def test_an_unknown_host_or_bad_age_is_a_usage_error_also_on_an_empty_database(
        nwi: InProcess, args: list[str], message: str) -> None:
    nwi.write_config(HOSTS)
    done = nwi.run(*args)
    assert done.returncode == 64
    [line] = log_lines(done.stderr)
    assert line.startswith(message)
