"""Repository functions of the alert jobs (triggers, register, scan counts, outbox cooldown helpers).

Every test runs on SQLite and on MariaDB through the `engine` fixture.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dbread
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from netwatch.core.volume import ActiveTrigger, GroupCount, GroupKey
from netwatch.db import outbox, register, runs, scan_counts, tables, triggers
from netwatch.db.engine import count_statements

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
KEY_A = GroupKey("1234", "55", "E130")
KEY_B = GroupKey("1234", "56", "E130")
KEY_C = GroupKey("9999", "01", "E131")


def _trigger(
    key: GroupKey, last_seen: datetime = T0, status: str = triggers.ACTIVE, **changes: object
) -> triggers.TriggerRow:
    row = triggers.TriggerRow(
        key=key, status=status, generation=1, count=60, peak=60, threshold=50,
        first_seen=last_seen - timedelta(minutes=30), last_seen=last_seen, raised_at=last_seen,
        cleared_at=None, clear_reason=None, account_name="Padaria Central", company="ACME",
        client_group="Retail", updated_at=last_seen,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


# --- triggers -------------------------------------------------------------------------------------


def test_save_triggers_inserts_and_load_returns_them_by_key(engine: Engine) -> None:
    rows = [_trigger(KEY_A), _trigger(KEY_B, status=triggers.CLEARED, cleared_at=T0 + timedelta(hours=1),
                                      clear_reason="expired")]
    with engine.begin() as conn:
        triggers.save_triggers(conn, rows)
    with engine.begin() as conn:
        loaded = triggers.load_triggers(conn)
    assert loaded == {KEY_A: rows[0], KEY_B: rows[1]}


def test_trigger_datetimes_round_trip_aware_with_microseconds(engine: Engine) -> None:
    cleared = T0 + timedelta(hours=2, microseconds=7)
    row = _trigger(KEY_A, status=triggers.CLEARED, cleared_at=cleared, clear_reason="below_threshold")
    with engine.begin() as conn:
        triggers.save_triggers(conn, [row])
    with engine.begin() as conn:
        stored = triggers.load_triggers(conn)[KEY_A]
    for name in ("first_seen", "last_seen", "raised_at", "cleared_at", "updated_at"):
        value = getattr(stored, name)
        assert value == getattr(row, name), name
        assert value.tzinfo is UTC, name
    assert stored.cleared_at is not None and stored.cleared_at.microsecond == cleared.microsecond


def test_save_triggers_upserts_in_place_one_row_per_group(engine: Engine) -> None:
    first = _trigger(KEY_A)
    with engine.begin() as conn:
        triggers.save_triggers(conn, [first, _trigger(KEY_B)])
    later = T0 + timedelta(minutes=10)
    updated = replace(first, status=triggers.CLEARED, generation=2, count=3, peak=80, threshold=70,
                      last_seen=later, cleared_at=later, clear_reason="below_threshold", account_name=None,
                      company=None, client_group=None, updated_at=later)
    with engine.begin() as conn:
        triggers.save_triggers(conn, [updated])
    with engine.begin() as conn:
        loaded = triggers.load_triggers(conn)
        total = conn.execute(select(func.count()).select_from(tables.triggers)).scalar()
    assert total == 2
    assert loaded[KEY_A] == updated
    assert loaded[KEY_B] == _trigger(KEY_B)


def test_save_triggers_is_one_statement_whatever_the_count(engine: Engine) -> None:
    many = [_trigger(GroupKey(f"{n:04d}", "01", "E130")) for n in range(50)]
    with engine.begin() as conn, count_statements(engine) as one:
        triggers.save_triggers(conn, many[:1])
    with engine.begin() as conn, count_statements(engine) as fifty:
        triggers.save_triggers(conn, many)
    with engine.begin() as conn, count_statements(engine) as upsert:
        triggers.save_triggers(conn, [replace(row, count=99) for row in many])
    with engine.begin() as conn, count_statements(engine) as nothing:
        triggers.save_triggers(conn, [])
    assert (one.value, fifty.value, upsert.value, nothing.value) == (1, 1, 1, 0)
    with engine.begin() as conn:
        loaded = triggers.load_triggers(conn)
    assert len(loaded) == 50
    assert {row.count for row in loaded.values()} == {99}


def test_load_triggers_only_active(engine: Engine) -> None:
    with engine.begin() as conn:
        triggers.save_triggers(conn, [
            _trigger(KEY_A),
            _trigger(KEY_B, status=triggers.CLEARED, cleared_at=T0, clear_reason="expired"),
            _trigger(KEY_C),
        ])
    with engine.begin() as conn:
        assert set(triggers.load_triggers(conn, only_active=True)) == {KEY_A, KEY_C}
        assert set(triggers.load_triggers(conn, only_active=False)) == {KEY_A, KEY_B, KEY_C}
        assert set(triggers.load_triggers(conn)) == {KEY_A, KEY_B, KEY_C}


def test_load_triggers_on_an_empty_table(engine: Engine) -> None:
    with engine.begin() as conn:
        assert triggers.load_triggers(conn) == {}
        assert triggers.list_triggers(conn, active_only=False, since=None) == []


def test_list_triggers_orders_by_last_seen_desc_then_account_and_filters(engine: Engine) -> None:
    same_time = T0 + timedelta(minutes=5)
    rows = [
        _trigger(KEY_C, last_seen=T0),
        _trigger(KEY_B, last_seen=same_time),
        _trigger(KEY_A, last_seen=same_time, status=triggers.CLEARED, cleared_at=same_time, clear_reason="expired"),
        _trigger(GroupKey("0001", "01", "E130"), last_seen=T0 + timedelta(minutes=9)),
        _trigger(GroupKey("0002", "01", "E130"), last_seen=T0 - timedelta(microseconds=1)),
    ]
    with engine.begin() as conn:
        triggers.save_triggers(conn, rows)
    with engine.begin() as conn:
        everything = triggers.list_triggers(conn, active_only=False, since=None)
        active = triggers.list_triggers(conn, active_only=True, since=None)
        since_t0 = triggers.list_triggers(conn, active_only=False, since=T0)
        active_since = triggers.list_triggers(conn, active_only=True, since=same_time)
    assert [r.key for r in everything] == [
        GroupKey("0001", "01", "E130"), KEY_A, KEY_B, KEY_C, GroupKey("0002", "01", "E130"),
    ]
    assert [r.key for r in active] == [GroupKey("0001", "01", "E130"), KEY_B, KEY_C, GroupKey("0002", "01", "E130")]
    # `since` is inclusive and exact to the microsecond.
    assert [r.key for r in since_t0] == [GroupKey("0001", "01", "E130"), KEY_A, KEY_B, KEY_C]
    assert [r.key for r in active_since] == [GroupKey("0001", "01", "E130"), KEY_B]
    assert everything[0] == rows[3]


def test_trigger_row_active_carries_what_the_volume_rules_need(engine: Engine) -> None:
    row = _trigger(KEY_A, count=70, peak=90, threshold=50)
    with engine.begin() as conn:
        triggers.save_triggers(conn, [row])
    with engine.begin() as conn:
        stored = triggers.load_triggers(conn, only_active=True)[KEY_A]
    assert stored.active() == ActiveTrigger(key=KEY_A, count=70, peak=90, threshold=50, raised_at=row.raised_at,
                                            last_seen=row.last_seen)


# --- register log ---------------------------------------------------------------------------------


def _entry(at: datetime, action: str = "raised", account: str = "1234", **changes: object) -> register.RegisterEntry:
    entry = register.RegisterEntry(
        at=at, action=action, account=account, cuc="55", code="E130", generation=1, count=60, threshold=50,
        window_minutes=120, reason=None, active_seconds=None, account_name="Padaria Central", company="ACME",
        client_group=None, run_id=None,
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


def test_register_entries_come_back_in_written_order_and_aware(engine: Engine) -> None:
    with engine.begin() as conn:
        run_id = runs.start_run(conn, "event-scan", "0/1", "me", T0)
    # Written out of time order on purpose: the log keeps insertion order, not `at` order.
    first = [_entry(T0 + timedelta(minutes=5), run_id=run_id), _entry(T0, account="9999")]
    second = [_entry(T0 + timedelta(minutes=1), action="cleared", reason="below_threshold", active_seconds=3600.5,
                     count=3, generation=2, client_group="Retail")]
    with engine.begin() as conn:
        register.append_entries(conn, first)
    with engine.begin() as conn:
        register.append_entries(conn, second)
    with engine.begin() as conn:
        read = register.read_entries(conn, since=None)
    assert read == first + second
    assert all(entry.at.tzinfo is UTC for entry in read)
    assert read[0].at.microsecond == T0.microsecond


def test_register_read_since_is_inclusive(engine: Engine) -> None:
    entries = [_entry(T0 - timedelta(microseconds=1)), _entry(T0), _entry(T0 + timedelta(hours=1))]
    with engine.begin() as conn:
        register.append_entries(conn, entries)
    with engine.begin() as conn:
        assert register.read_entries(conn, since=T0) == entries[1:]
        assert register.read_entries(conn, since=T0 + timedelta(hours=2)) == []


def test_register_append_of_nothing_is_a_no_op(engine: Engine) -> None:
    with engine.begin() as conn, count_statements(engine) as counter:
        register.append_entries(conn, [])
    assert counter.value == 0
    with engine.begin() as conn:
        assert register.read_entries(conn, since=None) == []


# --- scan counts ----------------------------------------------------------------------------------


def _count(n: int) -> GroupCount:
    return GroupCount(count=n, first_seen=T0, last_seen=T0 + timedelta(minutes=1))


def test_record_counts_keeps_groups_at_or_above_the_floor(engine: Engine) -> None:
    counts = {KEY_A: _count(10), KEY_B: _count(9), KEY_C: _count(500)}
    start, end = T0 - timedelta(hours=2), T0
    with engine.begin() as conn, count_statements(engine) as counter:
        stored = scan_counts.record_counts(conn, 7, start, end, counts, floor=10)
    assert stored == 2
    assert counter.value == 1
    with engine.begin() as conn:
        assert dbread.counts_of_run(conn, 7) == {KEY_A: 10, KEY_C: 500}
        rows = conn.execute(select(tables.scan_counts).order_by(tables.scan_counts.c.id)).mappings().all()
    assert [(r["window_start"], r["window_end"]) for r in rows] == [(start, end), (start, end)]
    assert all(r["window_end"].tzinfo is UTC for r in rows)


def test_record_counts_below_floor_stores_nothing(engine: Engine) -> None:
    with engine.begin() as conn, count_statements(engine) as counter:
        stored = scan_counts.record_counts(conn, 1, T0, T0, {KEY_A: _count(3)}, floor=4)
    assert stored == 0
    assert counter.value == 0
    with engine.begin() as conn:
        assert scan_counts.record_counts(conn, 1, T0, T0, {}, floor=1) == 0
        assert dbread.counts_of_run(conn, 1) == {}


def test_counts_of_run_separates_runs(engine: Engine) -> None:
    with engine.begin() as conn:
        assert scan_counts.record_counts(conn, 1, T0, T0, {KEY_A: _count(12)}, floor=1) == 1
        assert scan_counts.record_counts(conn, 2, T0, T0, {KEY_A: _count(15), KEY_B: _count(1)}, floor=1) == 2
    with engine.begin() as conn:
        assert dbread.counts_of_run(conn, 1) == {KEY_A: 12}
        assert dbread.counts_of_run(conn, 2) == {KEY_A: 15, KEY_B: 1}
        assert dbread.counts_of_run(conn, 3) == {}


# --- outbox: cooldown anchors and superseding -----------------------------------------------------


def _item(key: str, channel: str, subject: str, status: str = outbox.PENDING,
          delivered_at: datetime | None = None) -> outbox.OutboxItem:
    return outbox.OutboxItem(
        id=None, channel=channel, idempotency_key=key, kind="host_offline", subject=subject,
        payload={"subject": subject}, status=status, attempts=0 if delivered_at is None else 1, http_status=None,
        last_error=None, next_attempt_at=T0, created_at=T0, updated_at=T0, delivered_at=delivered_at, run_id=None,
    )


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.begin() as conn:
        return {item.idempotency_key: item.status for item in dbread.list_items(conn)}


def test_last_delivered_is_the_latest_sent_per_channel_and_subject(engine: Engine) -> None:
    t1, t2, t3 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2, microseconds=5), T0 + timedelta(minutes=3)
    with engine.begin() as conn:
        outbox.enqueue(conn, [
            _item("w-a-1", "webhook", "host-a", outbox.SENT, t1),
            _item("w-a-2", "webhook", "host-a", outbox.SENT, t2),
            # Only `sent` counts: these carry delivered_at but did not go out as sent.
            _item("w-a-3", "webhook", "host-a", outbox.FAILED, t3),
            _item("w-a-4", "webhook", "host-a", outbox.PENDING, t3),
            _item("w-a-5", "webhook", "host-a", outbox.SUPERSEDED, t3),
            _item("e-a-1", "email", "host-a", outbox.SENT, t1),
            _item("w-b-1", "webhook", "host-b", outbox.SENT, t3),
            _item("w-c-1", "webhook", "host-c", outbox.PENDING),
            _item("s-a-1", "sigma", "host-a", outbox.SENT, t3),
            _item("w-z-1", "webhook", "host-z", outbox.SENT, t3),
        ])
    with engine.begin() as conn:
        anchors = outbox.last_delivered(conn, {"webhook", "email", "whatsapp"}, {"host-a", "host-b", "host-c"})
        assert outbox.last_delivered(conn, [], ["host-a"]) == {}
        assert outbox.last_delivered(conn, ["webhook"], []) == {}
        assert outbox.last_delivered(conn, ["whatsapp"], ["host-a"]) == {}
    assert anchors == {("webhook", "host-a"): t2, ("email", "host-a"): t1, ("webhook", "host-b"): t3}
    assert all(at.tzinfo is UTC for at in anchors.values())


def test_supersede_pending_touches_only_waiting_items_of_that_channel_and_subjects(engine: Engine) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, [
            _item("w-a-pending", "webhook", "host-a"),
            _item("w-a-sent", "webhook", "host-a", outbox.SENT, T0),
            _item("w-a-failed", "webhook", "host-a", outbox.FAILED),
            _item("w-a-dead", "webhook", "host-a", outbox.DEAD),
            _item("w-b-pending", "webhook", "host-b"),
            _item("w-c-pending", "webhook", "host-c"),
            _item("e-a-pending", "email", "host-a"),
        ])
    later = T0 + timedelta(minutes=1)
    with engine.begin() as conn:
        outbox.supersede_pending(conn, "webhook", {"host-a", "host-b"}, later)
    assert _statuses(engine) == {
        "w-a-pending": outbox.SUPERSEDED,
        "w-a-sent": outbox.SENT,
        "w-a-failed": outbox.FAILED,
        "w-a-dead": outbox.DEAD,
        "w-b-pending": outbox.SUPERSEDED,
        "w-c-pending": outbox.PENDING,
        "e-a-pending": outbox.PENDING,
    }
    with engine.begin() as conn:
        superseded = dbread.list_items(conn, status=outbox.SUPERSEDED)
        assert outbox.due_items(conn, "webhook", later, 10) == dbread.list_items(conn, "webhook", outbox.PENDING)
    assert {item.updated_at for item in superseded} == {later}


def test_supersede_pending_with_no_subjects_changes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, [_item("w-a", "webhook", "host-a")])
    with engine.begin() as conn, count_statements(engine) as counter:
        outbox.supersede_pending(conn, "webhook", [], T0)
    assert counter.value == 0
    assert _statuses(engine) == {"w-a": outbox.PENDING}
