"""Every repository function, on SQLite and on MariaDB (the `engine` fixture runs both)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dbread
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, literal, null, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError

from netwatch.core.checks import CheckResult, CheckStatus
from netwatch.core.history import check_entry
from netwatch.core.hoststate import HostState, Status
from netwatch.db import accounts, history, hosts, leases, migrate, outbox, runs, tables, triggers
from netwatch.db.ddl import mysql_ddl
from netwatch.db.engine import build_engine, count_statements
from netwatch.db.types import JoinedIntegers, JoinedValues, UTCDateTime, split_integers, split_values
from netwatch.errors import ConfigError
from netwatch.running.lease import Lease

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)


def test_utc_datetimes_keep_microseconds_and_come_back_aware(engine: Engine) -> None:
    with engine.begin() as conn:
        run_id = runs.start_run(conn, "ping-sweep", "0/1", "me", T0)
    with engine.begin() as conn:
        stored = conn.execute(select(tables.job_runs.c.started_at).where(tables.job_runs.c.id == run_id)).scalar()
    assert stored == T0
    assert stored.tzinfo is UTC


def test_joined_integers_come_back_in_order_with_null_as_zero(engine: Engine) -> None:
    with engine.connect() as conn:
        joined = conn.execute(select(JoinedIntegers(literal(7), null(), literal(-3), literal(2**62)))).scalar_one()
        alone = conn.execute(select(JoinedIntegers(literal(5)))).scalar_one()
    assert split_integers(joined) == [7, 0, -3, 2**62]
    assert split_integers(alone) == [5]


def test_joined_values_come_back_in_order_with_null_as_none(engine: Engine) -> None:
    with engine.connect() as conn:
        joined = conn.execute(select(JoinedValues(null(), literal(7), literal("online"), null(), literal(-3), null())))
        alone = conn.execute(select(JoinedValues(literal("host")))).scalar_one()
        [row] = joined.all()
    assert split_values(row[0]) == [None, "7", "online", None, "-3", None]
    assert split_values(alone) == ["host"]


def test_naive_datetime_is_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        runs.start_run(conn, "ping-sweep", "0/1", "me", datetime(2026, 11, 22))


def test_a_batch_of_equal_different_and_missing_datetimes_binds_each_row_its_own(engine: Engine) -> None:
    # The type converts a run of equal values once: each row must still get its own value.
    table = Table("utc_batch", MetaData(), Column("n", Integer, primary_key=True), Column("at", UTCDateTime),
                  Column("until", UTCDateTime, nullable=True))
    brazil = timezone(timedelta(hours=-3))
    later = T0 + timedelta(microseconds=1)
    values = [(T0, None), (T0, T0), (T0.astimezone(brazil), later), (later, later), (T0, None), (later, T0),
              (later.astimezone(brazil), None), (T0, T0)]
    table.create(engine)
    try:
        with engine.begin() as conn:
            rows = [{"n": n, "at": at, "until": until} for n, (at, until) in enumerate(values, 1)]
            conn.execute(table.insert(), rows)
            conn.execute(table.insert(), {"n": 100, "at": later, "until": later})
        with engine.connect() as conn:
            stored = conn.execute(select(table.c.at, table.c.until).order_by(table.c.n)).all()
    finally:
        table.drop(engine)
    assert [tuple(row) for row in stored] == [*values, (later, later)]
    assert all(at.tzinfo is UTC for at, _ in stored)


def test_equal_datetimes_that_are_different_instants_bind_each_its_own(engine: Engine) -> None:
    # 01:30 happens twice in New York that night: `fold` tells them apart, `==` does not.
    table = Table("utc_fold", MetaData(), Column("n", Integer, primary_key=True), Column("at", UTCDateTime))
    first = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"n": 1, "at": first}, {"n": 2, "at": second}])
        with engine.connect() as conn:
            stored = conn.execute(select(table.c.at).order_by(table.c.n)).scalars().all()
    finally:
        table.drop(engine)
    assert stored == [datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 3, 6, 30, tzinfo=UTC)]


def test_a_naive_datetime_after_an_equal_aware_one_is_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        runs.start_run(conn, "ping-sweep", "0/1", "me", T0)
        runs.start_run(conn, "ping-sweep", "0/1", "me", T0.replace(tzinfo=None))


def test_migrate_is_idempotent_and_versioned(engine: Engine) -> None:
    with engine.begin() as conn:
        assert migrate.current_version(conn) == migrate.LATEST
        assert migrate.upgrade(conn, T0) == []
        migrate.require_current(conn)


def test_require_current_names_the_command(db_url: str) -> None:
    engine = build_engine(db_url)
    with engine.begin() as conn, pytest.raises(ConfigError, match="netwatch db init"):
        migrate.require_current(conn)
    with engine.begin() as conn:
        tables.schema_version.create(conn)
    with engine.begin() as conn, pytest.raises(ConfigError, match="netwatch db upgrade"):
        migrate.require_current(conn)
    with engine.begin() as conn:
        assert migrate.upgrade(conn, T0) == sorted(migrate.MIGRATIONS)
        migrate.require_current(conn)
    engine.dispose()


def test_upgrade_from_version_1_adds_only_the_later_tables(db_url: str) -> None:
    engine = build_engine(db_url)
    with engine.begin() as conn:
        tables.schema_version.create(conn)
        migrate.MIGRATIONS[1](conn)
        conn.execute(tables.schema_version.insert().values(version=1, applied_at=T0))
        runs.start_run(conn, "ping-sweep", "0/1", "a", T0)
    with engine.begin() as conn:
        assert migrate.upgrade(conn, T0) == [n for n in sorted(migrate.MIGRATIONS) if n > 1]
        migrate.require_current(conn)
        assert len(dbread.recent_runs(conn, "ping-sweep")) == 1
    engine.dispose()


def test_upgrade_from_version_2_adds_the_trigger_location_and_keeps_the_rows(db_url: str) -> None:
    engine = build_engine(db_url)
    location = ("partition_code", "zone_code")
    # The triggers table as version 2 created it, before the location columns.
    old = MetaData()
    old_triggers = Table("triggers", old, *[Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                                            for c in tables.triggers.columns if c.name not in location])
    row = {"account": "1234", "cuc": "C", "code": "E130", "status": "active", "generation": 1, "count": 60,
           "peak": 60, "threshold": 50, "first_seen": T0, "last_seen": T0, "raised_at": T0, "updated_at": T0}
    with engine.begin() as conn:
        tables.schema_version.create(conn)
        migrate.MIGRATIONS[1](conn)
        tables.metadata.create_all(conn, tables=[tables.register_log, tables.scan_counts])
        old.create_all(conn)
        conn.execute(old_triggers.insert().values(**row))
        conn.execute(tables.schema_version.insert(), [{"version": v, "applied_at": T0} for v in (1, 2)])
    with engine.begin() as conn:
        assert migrate.upgrade(conn, T0) == [3, 4, 5, 6, 7, 8]
        [stored] = triggers.load_triggers(conn).values()
    assert (stored.count, stored.partition, stored.zone) == (60, None, None)
    with engine.begin() as conn:
        triggers.save_triggers(conn, [replace(stored, partition="01", zone="003")])
        [stored] = triggers.load_triggers(conn).values()
    assert (stored.partition, stored.zone) == ("01", "003")
    engine.dispose()


def test_schema_sql_matches_the_table_definitions() -> None:
    committed = (Path(__file__).parent.parent / "schema.sql").read_text(encoding="utf-8")
    assert committed == mysql_ddl(), "schema.sql is stale: run `make schema`"


@pytest.mark.mysql
def test_schema_sql_applies_on_mariadb(mysql_url: str) -> None:
    engine = build_engine(mysql_url)
    statements = [s for s in mysql_ddl().split(";\n") if s.strip() and not s.lstrip().startswith("--")]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql("\n".join(line for line in statement.splitlines() if not line.startswith("--")))
    with engine.begin() as conn:
        migrate.require_current(conn)
    engine.dispose()


def acquire(engine: Engine, name: str, holder: str, now: datetime, ttl_seconds: float) -> bool:
    """Claims a lease the way every run does: claim, create the row if missing, claim again."""
    return Lease(engine, name, holder, ttl_seconds, lambda _conn: now).try_acquire()


def test_claim_needs_the_row_and_ensuring_it_twice_is_harmless(engine: Engine) -> None:
    with engine.begin() as conn:
        assert not leases.claim_lease(conn, "job:0/1", "a", T0, 60)
        leases.ensure_lease_row(conn, "job:0/1")
        leases.ensure_lease_row(conn, "job:0/1")
        assert leases.claim_lease(conn, "job:0/1", "a", T0, 60)
        assert leases.read_lease(conn, "job:0/1") == leases.LeaseInfo("a", T0 + timedelta(seconds=60))


def test_lease_excludes_a_second_holder_until_expiry(engine: Engine) -> None:
    assert acquire(engine, "ping-sweep:0/1", "a", T0, 60)
    assert not acquire(engine, "ping-sweep:0/1", "b", T0 + timedelta(seconds=59), 60)
    assert acquire(engine, "ping-sweep:0/1", "a", T0 + timedelta(seconds=1), 60)
    assert acquire(engine, "other:0/1", "b", T0, 60)
    with engine.begin() as conn:
        info = leases.read_lease(conn, "ping-sweep:0/1")
    assert info.holder == "a"
    assert info.expires_at == T0 + timedelta(seconds=61)
    assert acquire(engine, "ping-sweep:0/1", "b", T0 + timedelta(seconds=62), 60)
    with engine.begin() as conn:
        assert not leases.renew_lease(conn, "ping-sweep:0/1", "a", T0 + timedelta(seconds=63), 60)
        assert leases.renew_lease(conn, "ping-sweep:0/1", "b", T0 + timedelta(seconds=63), 60)


def test_released_lease_is_free_at_once(engine: Engine) -> None:
    assert acquire(engine, "job:0/1", "a", T0, 600)
    with engine.begin() as conn:
        leases.release_lease(conn, "job:0/1", "b")
    assert not acquire(engine, "job:0/1", "b", T0, 600)
    with engine.begin() as conn:
        leases.release_lease(conn, "job:0/1", "a")
    assert acquire(engine, "job:0/1", "b", T0, 600)


def test_many_racers_for_a_lease_never_deadlock(db_url: str, engine: Engine) -> None:
    """Eight connections claim one lease at the same moment, five rounds: exactly one wins each round, none errors.

    Threads with an engine each: every claim is its own transaction on its own connection, as with
    separate processes, and a barrier releases them together.
    """
    engines = [build_engine(db_url) for _ in range(8)]
    try:
        for round_number in range(5):
            barrier = threading.Barrier(len(engines))

            def race(index: int, round_number: int = round_number, barrier: threading.Barrier = barrier) -> bool:
                lease = Lease(engines[index], f"race:{round_number}", f"p{index}", 600,
                              lambda _conn: datetime.now(UTC))
                barrier.wait(timeout=30)
                return lease.try_acquire()

            with ThreadPoolExecutor(max_workers=len(engines)) as pool:
                results = list(pool.map(race, range(len(engines))))
            assert sorted(results) == [False] * 7 + [True]
    finally:
        for each in engines:
            each.dispose()


def test_runs_start_finish_and_abandon_crashed_ones(engine: Engine) -> None:
    with engine.begin() as conn:
        crashed = runs.start_run(conn, "ping-sweep", "0/1", "a", T0)
        current = runs.start_run(conn, "ping-sweep", "0/1", "b", T0 + timedelta(minutes=1))
        runs.finish_run(conn, current, T0 + timedelta(minutes=2), "ok", 0, {"hosts": 3})
        latest = dbread.recent_runs(conn, "ping-sweep")
    assert [(r.id, r.outcome) for r in latest] == [(current, "ok"), (crashed, "abandoned")]
    assert latest[0].counts == {"hosts": 3}
    assert latest[0].exit_code == 0


def _host_row(name: str, state: HostState, run_id: int = 1) -> hosts.HostRow:
    return hosts.HostRow(name, "127.0.0.1", "1234", "01", None, state, T0, "ok", run_id)


def test_hosts_upsert_round_trips_state(engine: Engine) -> None:
    first = HostState(Status.ONLINE, 0, 2, T0, False)
    with engine.begin() as conn:
        hosts.save_hosts(conn, [_host_row("a", first), _host_row("b", HostState())])
    later = HostState(Status.OFFLINE, 3, 0, T0 + timedelta(minutes=5), True)
    with engine.begin() as conn:
        hosts.save_hosts(conn, [_host_row("a", later, run_id=2)])
        states = {name: stored.state for name, stored in hosts.load_host_states(conn, hosts.KINDS).items()}
        listed = hosts.list_hosts(conn)
    assert states == {"a": later, "b": HostState()}
    assert [(h.name, h.last_run_id, h.zone) for h in listed] == [("a", 2, None), ("b", 1, None)]


def test_host_save_is_one_statement_whatever_the_count(engine: Engine) -> None:
    counts = []
    for size in (10, 1000):
        rows = [_host_row(f"h{size}-{i}", HostState()) for i in range(size)]
        with engine.begin() as conn, count_statements(engine) as counter:
            hosts.save_hosts(conn, rows)
        counts.append(counter.value)
    assert counts[0] == counts[1]


def test_checks_insert_and_read_with_their_target_and_error_text(engine: Engine) -> None:
    result = CheckResult(3, 2, 33.33, 0.1, 0.2, 0.3, CheckStatus.DEGRADED, "x" * 400, 1)
    with engine.begin() as conn:
        ids = history.target_ids(conn, ["a"], T0)
        assert history.target_ids(conn, ["a"], T0) == ids
        entry = check_entry(ids["a"], int(T0.timestamp()), None, Status.UNKNOWN, Status.ONLINE, result, 900)
        errors = history.error_ids(conn, {"x" * 400})
        history.insert_checks(conn, [entry], errors)
        history.insert_checks(conn, [], {})
        rows = dbread.named_checks(conn)
    assert len(rows) == 1
    assert (rows[0]["host_name"], rows[0]["status"], rows[0]["state"]) == ("a", "degraded", "online")
    assert (rows[0]["received"], rows[0]["rtt_min_us"], rows[0]["rtt_avg_us"]) == (2, 100, 200)
    assert rows[0]["error"] == "x" * 255
    assert rows[0]["checked_at"] == T0.replace(microsecond=0)


def _item(key: str, created: datetime = T0) -> outbox.OutboxItem:
    return outbox.OutboxItem(
        id=None, channel="sigma", idempotency_key=key, kind="HOST_OFFLINE", subject="a",
        payload={"host_name": "a", "zone": None}, status=outbox.PENDING, attempts=0, http_status=None,
        last_error=None, next_attempt_at=None, created_at=created, updated_at=created, delivered_at=None, run_id=1,
    )


def test_outbox_due_order_outcomes_and_unique_keys(engine: Engine) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, [_item("k1"), _item("k2"), _item("k3")])
    with engine.begin() as conn:
        due = outbox.due_items(conn, "sigma", T0, 10)
        assert [i.idempotency_key for i in due] == ["k1", "k2", "k3"]
        sent = due[0].with_outcome(status=outbox.SENT, attempts=1, http_status=201, delivered_at=T0, updated_at=T0)
        later = due[1].with_outcome(attempts=1, last_error="e" * 300, next_attempt_at=T0 + timedelta(minutes=1),
                                    payload={"host_name": "a", "zone": "003"})
        outbox.record_outcomes(conn, [sent, later])
    with engine.begin() as conn:
        assert [i.idempotency_key for i in outbox.due_items(conn, "sigma", T0, 10)] == ["k3"]
        assert [i.idempotency_key for i in outbox.due_items(conn, "sigma", T0 + timedelta(minutes=1), 1)] == ["k2"]
        stored = {i.idempotency_key: i for i in dbread.list_items(conn, "sigma")}
        assert dbread.count_by_status(conn) == {"pending": 2, "sent": 1}
    assert stored["k1"].delivered_at == T0
    assert stored["k2"].payload == _item("k2").payload, "an outcome never rewrites the body fixed before it"
    assert len(stored["k2"].last_error or "") == 255
    with pytest.raises(IntegrityError), engine.begin() as conn:
        outbox.enqueue(conn, [_item("k1")])


def test_account_cache_respects_ttl_and_caches_unknown_accounts(engine: Engine) -> None:
    with engine.begin() as conn:
        accounts.store_accounts(conn, [
            accounts.CachedAccount("1234", True, {"account": "1234", "partitions": []}, T0),
            accounts.CachedAccount("9999", False, None, T0),
        ])
        fresh = accounts.load_cached_accounts(conn, ["1234", "9999", "5555"], T0 + timedelta(seconds=60), 60)
        stale = accounts.load_cached_accounts(conn, ["1234"], T0 + timedelta(seconds=61), 60)
        accounts.store_accounts(conn, [accounts.CachedAccount("1234", False, None, T0 + timedelta(seconds=61))])
        refreshed = accounts.load_cached_accounts(conn, ["1234"], T0 + timedelta(seconds=61), 60)
    assert set(fresh) == {"1234", "9999"}
    assert fresh["1234"].payload == {"account": "1234", "partitions": []}
    assert fresh["9999"].found is False
    assert stale == {}
    assert refreshed["1234"].found is False


def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
