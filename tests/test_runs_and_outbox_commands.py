"""`netwatch runs` (job_runs with outcome, exit code, duration, counts) and `netwatch outbox` (+ `retry`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy import select
from sqlalchemy.engine import Engine

from netwatch.db import runs, tables
from netwatch.db.outbox import OutboxItem, enqueue

HOSTS = [{"name": "web-1", "address": "127.0.0.1"}]


def seed_runs(engine: Engine, now: datetime) -> None:
    with engine.begin() as conn:
        old = runs.start_run(conn, "ping-sweep", "0/1", "h", now - timedelta(hours=30))
        runs.finish_run(conn, old, now - timedelta(hours=30), "ok", 0, {"hosts": 1})
        good = runs.start_run(conn, "ping-sweep", "0/1", "h", now - timedelta(hours=2))
        runs.finish_run(conn, good, now - timedelta(hours=2) + timedelta(seconds=3.5), "ok", 0, {"hosts": 2, "up": 1})
        bad = runs.start_run(conn, "event-scan", "0/1", "h", now - timedelta(hours=1))
        runs.finish_run(conn, bad, now - timedelta(hours=1) + timedelta(seconds=1), "failed", 69, {},
                        "sigma API unavailable")
        runs.record_skipped_run(conn, "event-scan", "0/1", "h", now - timedelta(minutes=5), "lease_held", 75, "held")


def test_runs_newest_first_with_duration_and_counts(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed_runs(engine, datetime.now(UTC))

    done = nwi.run("runs", "--json")

    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["job"], r["outcome"], r["exit_code"]) for r in rows] == [
        ("event-scan", "lease_held", 75), ("event-scan", "failed", 69), ("ping-sweep", "ok", 0)]
    assert (rows[2]["duration_s"], rows[2]["counts"]) == (3.5, "hosts=2 up=1")
    assert rows[1]["error"] == "sigma API unavailable"
    assert [r["outcome"] for r in json.loads(nwi.run("runs", "--failed", "--json").stdout)] == ["failed"]
    assert [r["job"] for r in json.loads(nwi.run("runs", "--job", "ping-sweep", "--since", "2d", "--json").stdout)] \
        == ["ping-sweep", "ping-sweep"]
    assert nwi.run("runs").stdout.splitlines()[0].split() == [
        "id", "job", "shard", "started_at", "duration_s", "outcome", "exit_code", "counts", "error"]


def item(key: str, status: str, channel: str = "sigma", attempts: int = 3) -> OutboxItem:
    at = datetime(2026, 11, 21, tzinfo=UTC)
    return OutboxItem(id=None, channel=channel, idempotency_key=key, kind="host_offline", subject="web-1",
                      payload={"k": key}, status=status, attempts=attempts, http_status=503,
                      last_error="HTTP 503" if status != "sent" else None, next_attempt_at=at + timedelta(minutes=5),
                      created_at=at, updated_at=at, delivered_at=None, run_id=None)


def seed_outbox(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        enqueue(conn, [item("k-sent", "sent"), item("k-pending", "pending"), item("k-failed", "failed", "email"),
                       item("k-dead", "dead"), item("k-dead-2", "dead", "email")])
        return dict(conn.execute(select(tables.outbox.c.idempotency_key, tables.outbox.c.id)).all())


def statuses(engine: Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(tables.outbox.c.idempotency_key, tables.outbox.c.status, tables.outbox.c.attempts))
        return {key: (status, attempts) for key, status, attempts in rows}


def test_outbox_lists_waiting_and_given_up_messages(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    seed_outbox(engine)

    rows = json.loads(nwi.run("outbox", "--json").stdout)

    assert [(r["idempotency_key"], r["status"], r["attempts"], r["last_error"]) for r in rows] == [
        ("k-pending", "pending", 3, "HTTP 503"), ("k-failed", "failed", 3, "HTTP 503"),
        ("k-dead", "dead", 3, "HTTP 503"), ("k-dead-2", "dead", 3, "HTTP 503")]
    assert rows[0]["next_attempt_at"] == "2026-11-21T00:05:00+00:00"
    dead_sigma = json.loads(nwi.run("outbox", "--status", "dead", "--channel", "sigma", "--json").stdout)
    assert [r["idempotency_key"] for r in dead_sigma] == ["k-dead"]
    assert nwi.run("outbox").stdout.splitlines()[0].split() == [
        "id", "channel", "kind", "subject", "status", "attempts", "last_error", "next_attempt_at"]


def test_retry_gives_dead_messages_a_new_budget_keeping_their_key(nwi: InProcess, engine: Engine) -> None:
    nwi.write_config(HOSTS)
    ids = seed_outbox(engine)
    before = datetime.now(UTC)

    done = nwi.run("outbox", "retry", str(ids["k-dead"]), str(ids["k-dead-2"]))

    assert (done.returncode, done.stdout) == (0, "2 message(s) pending again\n"), done.stderr
    after = statuses(engine)
    assert after["k-dead"] == after["k-dead-2"] == ("pending", 0)
    with engine.connect() as conn:
        due = conn.execute(select(tables.outbox.c.next_attempt_at).where(tables.outbox.c.id == ids["k-dead"])).scalar()
    assert before - timedelta(seconds=1) <= due <= datetime.now(UTC)


@pytest.mark.parametrize(("keys", "problem"), [
    (["k-dead", "k-pending"], "is pending, not dead"),
    (["k-dead", "k-sent"], "is sent, not dead"),
    (["k-dead", None], "does not exist"),
])
def test_retry_of_a_message_not_dead_changes_nothing(nwi: InProcess, engine: Engine, keys: list[str | None],
                                                    problem: str) -> None:
    nwi.write_config(HOSTS)
    ids = seed_outbox(engine)
    before = statuses(engine)
    wanted = [str(ids[key]) if key else "999" for key in keys]

    done = nwi.run("outbox", "retry", *wanted)

    assert done.returncode == 65
    culprit = wanted[1]
    assert log_lines(done.stderr) == [f"error: outbox retry: message {culprit} {problem}: nothing changed"]
    assert statuses(engine) == before


def test_empty_database_and_bad_input(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    for command in (["runs"], ["outbox"], ["outbox", "--status", "dead"]):
        done = nwi.run(*command, "--json")
        assert (done.returncode, done.stdout) == (0, "[]\n")
    assert nwi.run("runs", "--since", "soon").returncode == 64
    assert nwi.run("outbox", "--status", "sent").returncode == 64
    assert nwi.run("outbox", "retry").returncode == 64
    assert nwi.run("outbox", "retry", "x").returncode == 64
    assert nwi.run("outbox", "retry", str(2**64)).returncode == 64
