"""Batch upserts in each dialect's own construct (the only dialect-specific SQL in netwatch)."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, func
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection


def upsert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert `rows`, or update the `update` columns of rows whose `key` exists, in one statement.

    On MySQL the update clause only references `VALUES(col)`: a bound parameter there breaks
    PyMySQL's executemany (PyMySQL#554).
    """
    if rows:
        conn.execute(_upserting(conn, table, key, update), list(rows))


def _upserting(conn: Connection, table: Table, key: Sequence[str], update: Sequence[str]) -> Any:
    """An INSERT of `table` updating the `update` columns of a row whose `key` exists, in the dialect's construct."""
    insert = _insert(conn, table)
    if conn.dialect.name in ("mysql", "mariadb"):
        return insert.on_duplicate_key_update({col: insert.inserted[col] for col in update})
    return insert.on_conflict_do_update(index_elements=list(key), set_={col: insert.excluded[col] for col in update})


# Rows per INSERT of integer rows on MySQL: at most about 1.7 MB of text (14 columns of 11 digits),
# far under MariaDB's default max_allowed_packet (16 MB); a whole 10,000-host pass in one.
_INTEGER_ROWS = 10_000


def insert_integer_rows(conn: Connection, table: Table, columns: Sequence[str],
                        rows: Sequence[tuple[int | None, ...]]) -> None:
    """A plain INSERT of `rows`, tuples of `columns` (in the table's column order) holding integers and
    NULLs (None) as the driver stores them (EpochSeconds as epoch integers): one statement per 10,000 rows.

    They go to the driver as they are, because SQLAlchemy's processing of each row's parameters cost
    more than the statement itself at 10,000 rows. On MySQL/MariaDB the values are written into the
    statement's text (each checked to be an integer): PyMySQL's executemany escapes every value in
    Python, a fifth of a second for 10,000 rows of 14 columns, and then builds that same multi-row
    INSERT. sqlite3 binds them in C (an executemany of the statement compiled once).
    """
    if rows:
        _execute_integer_rows(conn, table, table.insert(), columns, rows)


def add_integer_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[int | None, ...]],
    key: Sequence[str],
    add: Sequence[str] = (),
    least: Sequence[str] = (),
    greatest: Sequence[str] = (),
) -> None:
    """Insert `rows` (as `insert_integer_rows` takes them), or add them to the rows whose `key` exists.

    A stored row's `add` columns get the new value added, its `least` / `greatest` columns keep the
    smaller / larger of both (a NULL on either side gives the other). No read: the same rows added in
    any order give the same table. The other columns keep their value, or their server default on
    insert. The update clause holds no bound parameter (PyMySQL#554).
    """
    if rows:
        _execute_integer_rows(conn, table, _adding(conn, table, _insert(conn, table), key, add, least, greatest),
                              columns, rows)


def upsert_integer_rows(conn: Connection, table: Table, columns: Sequence[str],
                        rows: Sequence[tuple[int | None, ...]], key: Sequence[str], update: Sequence[str]) -> None:
    """`upsert_rows` of `rows` as `insert_integer_rows` takes them."""
    if rows:
        _execute_integer_rows(conn, table, _upserting(conn, table, key, update), columns, rows)


def _execute_integer_rows(conn: Connection, table: Table, stmt: Any, columns: Sequence[str],
                          rows: Sequence[tuple[int | None, ...]]) -> None:
    """`stmt` (an INSERT of `columns`, with or without an update clause) of `rows`: on MySQL/MariaDB
    its text with the rows written in, 10,000 a statement; elsewhere one executemany."""
    if [column.name for column in table.columns if column.name in columns] != list(columns):
        raise ValueError(f"columns {list(columns)} are not in the order of {table.name}'s columns")
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns)).string
    if conn.dialect.name not in ("mysql", "mariadb"):
        # sqlite3 binds by position.
        conn.exec_driver_sql(compiled, list(rows))
        return
    for statement in integer_rows_sql(compiled, columns, rows):
        conn.exec_driver_sql(statement)


def integer_rows_sql(compiled: str, columns: Sequence[str], rows: Sequence[tuple[int | None, ...]]) -> list[str]:
    """The statements of `rows` (integers and None) for `compiled`, a MySQL INSERT of one row of `columns`
    placeholders (`%s` or `%(name)s`): that row replaced by up to 10,000 rows written in, each value
    checked to be an integer.

    What comes after the placeholders goes as it is: MySQL 8.0.20's `AS new` and the update clause,
    which holds no bound parameter (the upserts' rule, PyMySQL#554).
    """
    for placeholders in (", ".join(["%s"] * len(columns)), ", ".join(f"%({name})s" for name in columns)):
        head, found, tail = compiled.partition(f"({placeholders})")
        if found and "%" not in tail:
            return [head + ",".join(["(" + ",".join(["NULL" if value is None else str(operator.index(value))
                                                     for value in row]) + ")"
                                     for row in rows[start : start + _INTEGER_ROWS]]) + tail
                    for start in range(0, len(rows), _INTEGER_ROWS)]
    raise ValueError(f"not an INSERT of one row of placeholders for {list(columns)}: {compiled}")


def add_selected(
    conn: Connection,
    table: Table,
    query: Select[Any],
    key: Sequence[str],
    add: Sequence[str] = (),
    least: Sequence[str] = (),
    greatest: Sequence[str] = (),
) -> None:
    """As `add_integer_rows`, with the rows computed by the server: `INSERT ... SELECT`, the columns named by
    the labels of `query`'s columns. Nothing goes through the driver row by row."""
    names = [column.key for column in query.selected_columns]
    conn.execute(_adding(conn, table, _insert(conn, table).from_select(names, query), key, add, least, greatest))


def _insert(conn: Connection, table: Table) -> Any:
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no upsert for dialect {dialect}")


def _adding(conn: Connection, table: Table, insert: Any, key: Sequence[str], add: Sequence[str],
            least: Sequence[str], greatest: Sequence[str]) -> Any:
    """`insert` with the update clause of `add_integer_rows`, in the dialect's construct."""
    mysql_like = conn.dialect.name in ("mysql", "mariadb")
    new = insert.inserted if mysql_like else insert.excluded
    # SQLite's min() and max() of several arguments are its LEAST and GREATEST.
    smallest, largest = (func.least, func.greatest) if mysql_like else (func.min, func.max)
    old = table.c
    changes: dict[str, Any] = {col: old[col] + new[col] for col in add}
    changes.update({col: smallest(func.coalesce(old[col], new[col]), func.coalesce(new[col], old[col]))
                    for col in least})
    changes.update({col: largest(func.coalesce(old[col], new[col]), func.coalesce(new[col], old[col]))
                    for col in greatest})
    if mysql_like:
        return insert.on_duplicate_key_update(changes)
    return insert.on_conflict_do_update(index_elements=list(key), set_=changes)


def insert_missing(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows`, silently skipping any whose primary or unique key already exists."""
    if not rows:
        return
    prefix = "IGNORE" if conn.dialect.name in ("mysql", "mariadb") else "OR IGNORE"
    conn.execute(table.insert().prefix_with(prefix), list(rows))
