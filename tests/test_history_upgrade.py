"""`netwatch db upgrade`: check_results moves to checks with rollups (5); daily rows get month-to-date totals (6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dbread
import historyseed
from sqlalchemy import delete, inspect, select

from netwatch.core import rollup
from netwatch.db import migrate, tables
from netwatch.db.engine import build_engine, count_statements
from netwatch.db.rollups import read_rollup_rows, rollup_rows, rollups_from_raw

T0 = datetime(2026, 11, 22, 23, 58, 30, 250_000, tzinfo=UTC)
DAY = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp())


def legacy_row(n: int, host: str, at: datetime, ok: bool = True) -> dict[str, Any]:
    return {"run_id": n, "host_name": host, "checked_at": at, "address": "127.0.0.1", "sent": 3,
            "received": 3 if ok else 0, "loss_percent": 0.0 if ok else 100.0,
            "rtt_min_ms": 0.1 * (n % 5 + 1) if ok else None, "rtt_avg_ms": 0.2 * (n % 5 + 1) if ok else None,
            "rtt_max_ms": 0.3 * (n % 5 + 1) if ok else None, "status": "ok" if ok else "failed", "attempts": 1,
            "error": None if ok else f"no reply {n % 2}"}


def make_version_4(url: str, rows: list[dict[str, Any]]) -> None:
    engine = build_engine(url)
    try:
        with engine.begin() as conn:
            tables.schema_version.create(conn)
            for number in (1, 2, 3, 4):
                migrate.MIGRATIONS[number](conn)
                conn.execute(tables.schema_version.insert().values(version=number, applied_at=T0))
            conn.execute(migrate.LEGACY_CHECK_RESULTS.insert(), rows)
    finally:
        engine.dispose()


def upgrade(url: str) -> int:
    engine = build_engine(url)
    try:
        with count_statements(engine) as statements, engine.begin() as conn:
            assert migrate.upgrade(conn, T0) == [5, 6, 7, 8]
        return statements.value
    finally:
        engine.dispose()


def test_upgrade_to_5_moves_check_rows_to_checks_with_their_rollups(db_url: str) -> None:
    rows = [legacy_row(n, host, T0 + timedelta(minutes=n), ok=(n + i) % 3 != 2)
            for n in range(5) for i, host in enumerate(("cam-1", "cam-2"))]
    make_version_4(db_url, rows)
    upgrade(db_url)

    engine = build_engine(db_url)
    try:
        with engine.begin() as conn:
            assert not inspect(conn).has_table("check_results")
            checks = dbread.named_checks(conn)
            created = dict(conn.execute(select(tables.targets.c.name, tables.targets.c.created_at)).all())
            hourly, daily = read_rollup_rows(conn, DAY, DAY + 2 * rollup.DAY)
            raw = rollups_from_raw(conn, DAY, DAY + 2 * rollup.DAY)
    finally:
        engine.dispose()
    assert len(checks) == len(rows)
    first = checks[0]
    assert (first["host_name"], first["checked_at"], first["status"], first["prior"], first["state"],
            first["gap_s"]) == ("cam-1", T0.replace(microsecond=0), "ok", "unknown", "unknown", 0)
    assert (first["rtt_min_us"], first["rtt_avg_us"], first["rtt_max_us"]) == (100, 200, 300)
    assert sorted({str(c["error"]) for c in checks if c["status"] == "failed"}) == ["no reply 0", "no reply 1"]
    assert created == {"cam-1": T0.replace(microsecond=0), "cam-2": T0.replace(microsecond=0)}
    assert (hourly, daily) == rollup_rows(raw)
    days = [row for row in daily if row["target_id"] == 1]
    assert len(days) == 2, "the rows cross midnight"
    # Both days are in one month: the later one's month-to-date totals count every check.
    assert days[-1]["mtd_ok"] + days[-1]["mtd_failed"] == 5 and all(row["online_s"] == 0 for row in days)
    # An hour's p95 is there once it is over (its host has a later check), never for the hour in progress.
    latest = {row["target_id"]: row["hour"] for row in hourly}
    assert [(row["hour"] < latest[row["target_id"]], row["rtt_p95_us"] is not None) for row in hourly
            if row["rtt_samples"]] == [(True, True)] * 2 + [(False, False)] * 2


def test_the_copy_runs_in_batches_not_a_statement_per_row(db_url: str) -> None:
    def statements_for(count: int) -> int:
        make_version_4(db_url, [legacy_row(n, "cam-1", T0 + timedelta(minutes=n)) for n in range(count)])
        used = upgrade(db_url)
        engine = build_engine(db_url)
        with engine.begin() as conn:
            assert len(conn.execute(select(tables.checks)).all()) == count
            tables.metadata.drop_all(conn)
        engine.dispose()
        return used

    few = statements_for(3)
    many = statements_for(migrate.COPY_BATCH * 2 + 5)
    # Two more batches of the copy, and the rollups of a few more days: never a statement per row.
    assert many - few < 40, (few, many)


def test_upgrade_to_6_turns_each_days_sums_into_month_to_date_totals(db_url: str) -> None:
    days = [(1, datetime(2026, 11, 29, tzinfo=UTC), 40), (1, datetime(2026, 11, 30, tzinfo=UTC), 50),
            (1, datetime(2026, 12, 1, tzinfo=UTC), 7), (1, datetime(2026, 12, 3, tzinfo=UTC), 9),
            (2, datetime(2026, 11, 30, tzinfo=UTC), 11)]
    per_day = [historyseed.rollup_row("day", at, target_id, {"checks": n, "ok": n, "sent": 2 * n, "received": 2 * n,
                                                             "online_s": 60 * n},
                                      [(900, 1000 + n, 1100 + n, rollup.rtt_bucket(1 + n / 1000))] * n)
               for target_id, at, n in days]
    engine = build_engine(db_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, T0)
            # A version-5 database: its daily table held each day's own sums.
            tables.rollups_daily.drop(conn)
            migrate.LEGACY_DAILY_V5.create(conn)
            conn.execute(delete(tables.schema_version).where(tables.schema_version.c.version >= 6))
            conn.execute(migrate.LEGACY_DAILY_V5.insert(),
                         [{**row, "day": int(row["day"].timestamp()),
                           "checks": row["ok"] + row["degraded"] + row["failed"]} for row in per_day])
        with engine.begin() as conn:
            assert migrate.upgrade(conn, T0) == [6, 7, 8]
            stored = [dict(row) for row in conn.execute(select(tables.rollups_daily).order_by(
                tables.rollups_daily.c.target_id, tables.rollups_daily.c.day)).mappings()]
    finally:
        engine.dispose()
    assert stored == historyseed.month_totals(per_day)
    assert [row["mtd_ok"] for row in stored] == [40, 90, 7, 16, 11]
