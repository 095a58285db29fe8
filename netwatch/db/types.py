"""Column types that behave the same on MySQL/MariaDB and SQLite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timezone
from typing import Any, cast

from sqlalchemy import BigInteger, DateTime, Integer, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# BIGINT primary keys do not autoincrement on SQLite; INTEGER there is the rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes stored as naive UTC in DATETIME(6).

    `DateTime(timezone=True)` drops the offset on MariaDB and SQLite, and plain DATETIME drops
    microseconds on MariaDB, so values are normalised to UTC here and read back as aware UTC.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any]:
        """The type's own conversion (process_bind_param, then the dialect's), once per run of equal values.

        A batch's rows mostly bind one value over and over (a run's `now`, its window's ends: 5,000
        scan_counts rows bind two values 10,000 times). Only values at a fixed offset (`timezone`,
        UTC among them) are remembered: between those, equal means the same instant. Two values of
        one zone with rules (`ZoneInfo`) that differ only in `fold` are equal yet an hour apart, so
        those, and naive ones (refused by process_bind_param), are converted every time.
        """
        # Never None: this type has a process_bind_param.
        convert = cast("Callable[[datetime | None], Any]", super().bind_processor(dialect))
        last: list[tuple[object, Any]] = [(_NOTHING, None)]

        def process(value: datetime | None) -> Any:
            if value is None:
                return None
            if type(value.tzinfo) is not timezone:
                return convert(value)
            seen, converted = last[0]
            if value != seen:
                converted = convert(value)
                last[0] = (value, converted)  # one assignment: connections on other threads share this
            return converted

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


_NOTHING = object()  # equal to no value bound


class JoinedValues(FunctionElement[str]):
    """SQL: column values as one text, `|`-separated, NULL as the empty text (`split_values` reads it back);
    a UTCDateTime as its stored text, `YYYY-MM-DD HH:MM:SS[.ffffff]` (naive UTC), for `UTCReader`.

    For columns whose values never hold a `|` and are never empty texts (numbers, times, codes).
    PyMySQL decodes each column of a row in Python (a DATETIME into a datetime): eleven such columns
    of 10,000 hosts cost more than the query. Joined they are one string per row, and the rows of
    one read share few distinct ones (a run checks all its hosts at one `now`), each read once."""

    type = String()
    inherit_cache = True


@compiles(JoinedValues, "sqlite")
def _joined_values_sqlite(element: JoinedValues, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores a UTCDateTime as that text already; || makes text of the numbers.
    parts = [f"COALESCE({compiler.process(column, **kw)}, '')" for column in element.clauses]
    joined = " || '|' || ".join(parts)
    return f"CAST({joined} AS TEXT)"


@compiles(JoinedValues, "mysql")
@compiles(JoinedValues, "mariadb")
def _joined_values_mysql(element: JoinedValues, compiler: SQLCompiler, **kw: Any) -> str:
    # CONCAT_WS skips NULLs, which would shift the values after them: each is '' instead.
    parts = [f"COALESCE(CAST({compiler.process(column, **kw)} AS CHAR), '')" for column in element.clauses]
    return f"CONCAT_WS('|', {', '.join(parts)})"


def split_values(text: str) -> list[str | None]:
    """The values of a JoinedValues text, in order, as text (None for NULL)."""
    return [value or None for value in text.split("|")]


class UTCReader:
    """Reads UTCDateTime values selected as text (`JoinedValues`): what the type gives, at a fraction of its cost
    per row.

    The rows of one read share few distinct values (a run checks all its hosts at one `now`), so
    each distinct text is converted once.
    """

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}

    def __call__(self, value: str | None) -> datetime | None:
        if value is None:
            return None
        aware = self._seen.get(value)
        if aware is None:
            aware = self._seen[value] = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return aware


class EpochSeconds(TypeDecorator[datetime]):
    """Aware UTC datetimes stored as whole seconds since the Unix epoch in an INTEGER (4 bytes).

    For the history tables: half the size of DATETIME(6) on MariaDB, the same on both databases,
    and plain integers in SQL, so bucket arithmetic (`t - t % 3600`) needs no dialect functions.
    Fractions of a second are dropped (floor).
    """

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return int(value.timestamp() // 1)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.fromtimestamp(int(value), UTC)


class EpochOf(FunctionElement[int]):
    """SQL: a UTCDateTime column's value as EpochSeconds stores it (whole seconds, floor), so that a
    datetime column can meet an epoch column in a join condition and still use its index."""

    type = Integer()
    inherit_cache = True


@compiles(EpochOf, "sqlite")
def _epoch_of_sqlite(element: EpochOf, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime('%s') rounds the fraction (to milliseconds,
    # so .9995 s becomes the next second): cut it off first.
    return f"CAST(strftime('%s', substr({compiler.process(element.clauses, **kw)}, 1, 19)) AS INTEGER)"


@compiles(EpochOf, "mysql")
@compiles(EpochOf, "mariadb")
def _epoch_of_mysql(element: EpochOf, compiler: SQLCompiler, **kw: Any) -> str:
    # Not UNIX_TIMESTAMP: that reads the value in the session's time zone; this truncates, as floor does.
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {compiler.process(element.clauses, **kw)})"


class JoinedIntegers(FunctionElement[str]):
    """SQL: integer expressions as one text, comma-separated, NULL as 0 (`split_integers` reads it back).

    PyMySQL decodes each column of a row in Python, about a microsecond each: a wide result (a
    report's 49 counters per host, 10,000 hosts) costs far less as one column per row."""

    type = String()
    inherit_cache = True


def _joined_parts(element: JoinedIntegers, compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [f"COALESCE({compiler.process(column, **kw)}, 0)" for column in element.clauses]


@compiles(JoinedIntegers, "sqlite")
def _joined_integers_sqlite(element: JoinedIntegers, compiler: SQLCompiler, **kw: Any) -> str:
    # Text also when there is a single part (|| gives text from two on).
    joined = " || ',' || ".join(_joined_parts(element, compiler, **kw))
    return f"CAST({joined} AS TEXT)"


@compiles(JoinedIntegers, "mysql")
@compiles(JoinedIntegers, "mariadb")
def _joined_integers_mysql(element: JoinedIntegers, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CONCAT_WS(',', {', '.join(_joined_parts(element, compiler, **kw))})"


def split_integers(text: str) -> list[int]:
    """The integers of a JoinedIntegers value, in order."""
    return list(map(int, text.split(",")))


class Pending(TypeDecorator[int]):
    """An optional count that is never negative, stored NOT NULL as -1 while absent (None in Python).

    For a value that arrives after its row was written (an hour's p95, at its close): with NULL the
    row would grow by the value's 4 bytes then, and a compressed InnoDB page whose rows grow splits
    in two half-empty pages; -1 keeps every row its width from the start.
    """

    impl = Integer
    cache_ok = True
    ABSENT = -1

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int:
        if value is None:
            return self.ABSENT
        if value < 0:
            raise ValueError(f"negative value given to a Pending column: {value}")
        return value

    def process_result_value(self, value: int | None, dialect: Dialect) -> int | None:
        return None if value is None or value == self.ABSENT else value
