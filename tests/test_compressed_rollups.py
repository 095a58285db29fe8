"""rollups_hourly in InnoDB's compressed row format on MariaDB (schema 8), and the servers that refuse it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, delete, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import StatementError

from netwatch.db import migrate, rowformat, tables
from netwatch.db.engine import build_engine
from netwatch.db.types import Pending

T0 = datetime(2026, 11, 22, tzinfo=UTC)
HOUR = datetime(2026, 11, 22, 10, tzinfo=UTC)
INT_MAX, SMALLINT_MAX, BIGINT_MAX = 2**31 - 1, 2**15 - 1, 2**63 - 1
# What MariaDB 10.11 says by default: the compressed table can be written.
MARIADB_DEFAULTS = {"innodb_read_only_compressed": "OFF", "innodb_strict_mode": "ON",
                    "innodb_file_per_table": "ON", "innodb_page_size": "16384"}


def _row_formats(conn: Connection) -> dict[str, tuple[str, str]]:
    rows = conn.execute(text("SELECT table_name, row_format, create_options FROM information_schema.tables "
                             "WHERE table_schema = DATABASE() AND table_name LIKE 'rollups_%'"))
    return {str(name): (str(row_format), str(options).lower()) for name, row_format, options in rows}


def _largest(table: Table) -> dict[str, Any]:
    """A row of `table` with every counter at the largest value its column type holds."""
    widest = {"SMALLINT": SMALLINT_MAX, "INTEGER": INT_MAX, "BIGINT": BIGINT_MAX, "Pending": INT_MAX}
    return {column.name: widest[str(column.type)] for column in table.columns
            if column.name not in ("hour", "day", "target_id")}


def _row(table: Table, **values: Any) -> dict[str, Any]:
    """A whole row of `table`: `values`, and the others at 0 (counters) or None."""
    return {column.name: values.get(column.name, None if column.nullable or isinstance(column.type, Pending) else 0)
            for column in table.columns}


def _rows(conn: Connection) -> list[list[dict[str, Any]]]:
    return [[dict(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()]
            for table in (tables.rollups_hourly, tables.rollups_daily)]


def test_a_new_database_compresses_the_hourly_rollups_only(mysql_url: str) -> None:
    engine = build_engine(mysql_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, T0)
            formats = _row_formats(conn)
    finally:
        engine.dispose()
    assert formats == {"rollups_hourly": ("Compressed", "row_format=compressed key_block_size=8"),
                       "rollups_daily": ("Dynamic", "")}


def _version_7_hourly() -> Table:
    """rollups_hourly as version 7 created it: rtt_p95_us NULL while absent, the row format the server's."""
    return Table("rollups_hourly", MetaData(),
                 *[column._copy() for column in tables.rollups_hourly.columns if column.name != "rtt_p95_us"],
                 Column("rtt_p95_us", Integer, nullable=True), **tables.MYSQL)


def test_upgrade_to_8_compresses_the_hourly_rollups_and_keeps_the_rows(db_url: str) -> None:
    engine = build_engine(db_url)
    mysql = engine.dialect.name in ("mysql", "mariadb")
    old = _version_7_hourly()
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, T0)
            tables.rollups_hourly.drop(conn)
            old.create(conn)
            conn.execute(old.insert(), [
                _row(old, hour=HOUR, target_id=1, ok=59, failed=1, sent=180, received=177, rtt_samples=59,
                     rtt_min_us=800, rtt_sum_us=59_000, rtt_max_us=1_700, online_s=3_600, rtt_p95_us=1_500),
                _row(old, hour=HOUR, target_id=2, **_largest(old)),
                # An hour without replies, and one in progress: no p95.
                _row(old, hour=HOUR, target_id=3, failed=60, sent=180, offline_s=3_600),
                _row(old, hour=HOUR, target_id=4, ok=30, sent=90, received=90, rtt_samples=30, rtt_min_us=700,
                     rtt_sum_us=30_000, rtt_max_us=1_300, online_s=1_800)])
            daily = tables.rollups_daily
            conn.execute(daily.insert(), [
                _row(daily, day=T0, target_id=1, online_s=86_400, rtt_min_us=700, rtt_max_us=9_000, mtd_ok=1_440,
                     mtd_sent=4_320, mtd_received=4_300, mtd_rtt_samples=1_440, mtd_rtt_sum_us=1_440_000,
                     mtd_online_s=86_400, mtd_h10=1_400, mtd_h11=40),
                _row(daily, day=T0, target_id=2, **_largest(daily))])
            if mysql:
                assert _row_formats(conn)["rollups_hourly"] == ("Dynamic", "")
            conn.execute(delete(tables.schema_version).where(tables.schema_version.c.version == 8))
            before = [[dict(row) for row in conn.execute(select(old).order_by(old.c.target_id)).mappings()],
                      _rows(conn)[1]]
        with engine.begin() as conn:
            assert migrate.upgrade(conn, T0) == [8]
            after = _rows(conn)
            stored = conn.execute(text("SELECT rtt_p95_us FROM rollups_hourly ORDER BY target_id")).scalars().all()
            [p95] = [column for column in inspect(conn).get_columns("rollups_hourly") if column["name"] == "rtt_p95_us"]
            formats = _row_formats(conn) if mysql else {}
    finally:
        engine.dispose()
    assert after == before and len(after[0]) == 4 and len(after[1]) == 2
    assert after[0][1]["rtt_sum_us"] == BIGINT_MAX and after[1][1]["mtd_h39"] == INT_MAX
    assert [row["rtt_p95_us"] for row in after[0]] == [1_500, INT_MAX, None, None]
    # No NULL left: a p95 written later does not make its row grow.
    assert stored == [1_500, INT_MAX, -1, -1] and not p95["nullable"]
    if mysql:
        assert {name: row_format for name, (row_format, _) in formats.items()} == {
            "rollups_hourly": "Compressed", "rollups_daily": "Dynamic"}


def test_an_hour_without_its_p95_reads_none_and_a_negative_p95_is_refused(engine: Engine) -> None:
    hourly = tables.rollups_hourly
    with engine.begin() as conn:
        # As a run's additive upsert writes a new hour: without naming rtt_p95_us.
        conn.execute(text("INSERT INTO rollups_hourly (hour, target_id, ok) VALUES (:hour, 1, 1)"),
                     {"hour": int(HOUR.timestamp())})
        conn.execute(hourly.insert(), [_row(hourly, hour=HOUR, target_id=2, ok=1)])
        assert conn.execute(select(hourly.c.rtt_p95_us).order_by(hourly.c.target_id)).scalars().all() == [None, None]
    with pytest.raises(StatementError, match="negative value given to a Pending column: -5"), engine.begin() as conn:
        conn.execute(hourly.insert(), [_row(hourly, hour=HOUR, target_id=3, rtt_p95_us=-5)])


def test_this_mariadb_can_write_the_compressed_table(mysql_url: str) -> None:
    engine = build_engine(mysql_url)
    try:
        with engine.connect() as conn:
            variables = rowformat.server_variables(conn)
    finally:
        engine.dispose()
    assert sorted(variables) == sorted(rowformat.VARIABLES)
    assert rowformat.compression_problem(variables) is None


@pytest.mark.parametrize("changed", [
    {}, {"innodb_page_size": "8192"},
    # MySQL has no innodb_read_only_compressed.
    {"innodb_read_only_compressed": None},
    # Without strict mode a server creates the table uncompressed, with a warning, and writes it.
    {"innodb_strict_mode": "OFF", "innodb_file_per_table": "OFF"},
    {"innodb_strict_mode": "OFF", "innodb_page_size": "65536"},
])
def test_servers_that_can_write_the_compressed_table(changed: dict[str, str | None]) -> None:
    variables = {name: value for name, value in {**MARIADB_DEFAULTS, **changed}.items() if value is not None}
    assert rowformat.compression_problem(variables) is None


@pytest.mark.parametrize(("changed", "named"), [
    # MariaDB 10.6.0 to 10.6.5 by default.
    ({"innodb_read_only_compressed": "ON"}, "set innodb_read_only_compressed=OFF"),
    ({"innodb_read_only_compressed": "ON", "innodb_strict_mode": "OFF"}, "set innodb_read_only_compressed=OFF"),
    ({"innodb_file_per_table": "OFF"}, "set innodb_file_per_table=ON"),
    ({"innodb_page_size": "32768"}, "innodb_page_size=32768"),
    ({"innodb_page_size": "65536"}, "innodb_page_size=65536"),
    ({"innodb_page_size": "4096"}, "innodb_page_size=4096"),
])
def test_servers_that_cannot_are_named_with_the_setting_to_change(changed: dict[str, str], named: str) -> None:
    problem = rowformat.compression_problem({**MARIADB_DEFAULTS, **changed})
    assert problem is not None and named in problem
