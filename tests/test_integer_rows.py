"""upsert.insert_integer_rows: what executemany stored, on both databases; on MySQL written into the text
(upsert.integer_rows_sql, for every MySQL server version)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql
from sqlalchemy.engine import Engine

from netwatch.core.times import utc_now
from netwatch.db import migrate
from netwatch.db.engine import build_engine
from netwatch.db.tables import checks, rollups_hourly
from netwatch.db.upsert import insert_integer_rows, integer_rows_sql

COLUMNS = [column.name for column in checks.columns]


def _row(target_id: int) -> tuple[int | None, ...]:
    failed = target_id % 3 == 0  # no RTT and an error: the NULLs
    return (1_796_000_000, target_id, 2 if failed else 0, 1, 1, 60, 3, 0 if failed else 3, 1,
            None if failed else 41, None if failed else 52, None if failed else 2_147_483_647,
            None if failed else 4, 7 if failed else None)


def test_rows_over_one_statement_are_all_stored_as_given(engine: Engine) -> None:
    rows = [_row(target_id) for target_id in range(1, 10_003)]  # one statement holds 10,000 rows
    with engine.begin() as conn:
        insert_integer_rows(conn, checks, COLUMNS, rows)
    with engine.begin() as conn:
        stored = conn.exec_driver_sql(
            f"SELECT {', '.join(COLUMNS)} FROM checks ORDER BY target_id").all()  # driver values, no EpochSeconds

    assert [tuple(row) for row in stored] == rows


@pytest.mark.mysql
def test_on_mysql_a_value_that_is_no_integer_is_refused_before_any_sql(mysql_url: str) -> None:
    engine = build_engine(mysql_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, utc_now())
        for bad in ("1); DROP TABLE checks; --", 1.5):
            with engine.begin() as conn, pytest.raises(TypeError):
                insert_integer_rows(conn, checks, COLUMNS, [(*_row(1)[:-1], bad)])
        with engine.begin() as conn:
            assert conn.execute(select(checks.c.target_id)).all() == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(("named_row", "update_clause"), [
    (False, " ON DUPLICATE KEY UPDATE rtt_p95_us = VALUES(rtt_p95_us)"),  # MariaDB, MySQL before 8.0.20
    (True, " AS new ON DUPLICATE KEY UPDATE rtt_p95_us = new.rtt_p95_us"),  # MySQL 8.0.20 and later
])
def test_an_upsert_of_integer_rows_keeps_what_follows_its_values(named_row: bool, update_clause: str) -> None:
    """MySQL 8.0.20 and later name the new row (`AS new`) between the VALUES and the update clause."""
    dialect = mysql_pymysql.dialect()
    dialect._requires_alias_for_on_duplicate_key = named_row  # as SQLAlchemy sets it from the server's version
    insert = mysql.insert(rollups_hourly)
    compiled = insert.on_duplicate_key_update({"rtt_p95_us": insert.inserted.rtt_p95_us}).compile(
        dialect=dialect, column_keys=["hour", "target_id", "rtt_p95_us"]).string  # %s placeholders

    columns = ["hour", "target_id", "rtt_p95_us"]
    assert integer_rows_sql(compiled, columns, [(3600, 1, 250), (3600, 2, None)]) == [
        "INSERT INTO rollups_hourly (hour, target_id, rtt_p95_us) VALUES (3600,1,250),(3600,2,NULL)" + update_clause]
    assert len(integer_rows_sql(compiled, columns, [(3600, n, 1) for n in range(10_001)])) == 2
    with pytest.raises(ValueError, match="not an INSERT of one row of placeholders"):
        integer_rows_sql(compiled, columns[:2], [(3600, 1)])
