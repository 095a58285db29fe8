"""Schema creation and versioned upgrades, tracked in `schema_version`.

Each migration is a function of a connection, applied in order inside the caller's transaction.
A new table or column goes into `tables.py` and gets a migration here that creates or alters it;
a change in what rows hold gets a data migration that rewrites them in batches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from netwatch import limits
from netwatch.core import mtd, rollup
from netwatch.db import history, outbox, rollups, rowformat, tables
from netwatch.db.types import BigId, Pending, UTCDateTime
from netwatch.db.upsert import insert_missing
from netwatch.errors import ConfigError

# Versions 1 to 4 kept one wide row per host per run here; version 5 moves its rows to `checks`.
_legacy = MetaData()
LEGACY_CHECK_RESULTS = Table(
    "check_results",
    _legacy,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigId, nullable=False),
    Column("host_name", String(limits.HOST_NAME), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("address", String(limits.RESOLVED_ADDRESS), nullable=True),
    Column("sent", Integer, nullable=False),
    Column("received", Integer, nullable=False),
    Column("loss_percent", Float, nullable=False),
    Column("rtt_min_ms", Float, nullable=True),
    Column("rtt_avg_ms", Float, nullable=True),
    Column("rtt_max_ms", Float, nullable=True),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", String(limits.ERROR_TEXT), nullable=True),
    Index("ix_check_results_host_checked", "host_name", "checked_at"),
    Index("ix_check_results_checked", "checked_at"),
    **tables.MYSQL,
)


def _v1_ping_sweep(conn: Connection) -> None:
    tables.metadata.create_all(
        conn,
        tables=[tables.leases, tables.job_runs, tables.hosts, tables.outbox, tables.account_cache],
    )
    LEGACY_CHECK_RESULTS.create(conn)


def _v2_event_scan(conn: Connection) -> None:
    tables.metadata.create_all(conn, tables=[tables.triggers, tables.register_log, tables.scan_counts])


def _v3_trigger_location(conn: Connection) -> None:
    # A database created at version 2 by this code already has the columns (create_all above).
    _add_missing_columns(conn, tables.triggers, ("partition_code", "zone_code"))


# A Sigma event as versions 1 to 3 queued it: netwatch's own flat keys, not the wire body that
# SigmaEvent.from_body reads (delivery would mark such a row failed without sending it).
_FLAT_SIGMA_KEYS = frozenset({"type", "code", "host_name", "host_address", "account", "partition", "zone",
                              "occurred_at", "description", "streak"})
_SIGMA_CHANNEL = "sigma"  # netwatch/delivery/sigma.py CHANNEL
# Outbox rows read, and rewritten in one statement, at a time: memory and bind parameters stay bounded.
REWRITE_BATCH = 200


def _v4_sigma_bodies(conn: Connection) -> None:
    """Rewrites every queued Sigma event (pending or undelivered) of the flat shape to its wire body.

    An empty partition or zone becomes null, so the event is located before its first attempt, as
    a new one is. Two statements per batch of rows, never one per row; a row of any other shape is
    left as it is.
    """
    # Imported here: only this migration needs the Sigma adapter (the body's field names live there),
    # and its HTTP stack would slow the start of every report.
    from netwatch.clients.sigma import SigmaEvent

    def body(stored: str) -> str | None:
        try:
            flat: Any = json.loads(stored)
            if not isinstance(flat, dict) or not _FLAT_SIGMA_KEYS <= flat.keys():
                return None
            event = SigmaEvent(
                account=flat["account"] or None, partition=flat["partition"] or None, zone=flat["zone"] or None,
                code=flat["code"], type=flat["type"], host_name=flat["host_name"],
                host_address=flat["host_address"], occurred_at=datetime.fromisoformat(flat["occurred_at"]),
                description=flat["description"],
            )
        except (TypeError, ValueError):
            return None  # not an event netwatch queued: delivery reports it as malformed
        return outbox.encode_payload(event.body())

    rows_of = tables.outbox.c
    after = 0
    while True:
        rows = conn.execute(
            select(rows_of.id, rows_of.payload)
            .where(and_(rows_of.channel == _SIGMA_CHANNEL, rows_of.status.in_((outbox.PENDING, outbox.UNDELIVERED)),
                        rows_of.id > after))
            .order_by(rows_of.id)
            .limit(REWRITE_BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        bodies = {row.id: new for row in rows if (new := body(row.payload)) is not None}
        if bodies:
            conn.execute(update(tables.outbox).where(rows_of.id.in_(sorted(bodies)))
                         .values(payload=case(bodies, value=rows_of.id)))


# check_results rows copied, and rollup rows written, per statement: bind parameters stay bounded.
COPY_BATCH = 1_000


def _v5_history(conn: Connection) -> None:
    """The history tables and `hosts.held_since`; the `check_results` rows move to `checks`, with rollups.

    A copied check's confirmed state before and after is unknown (check_results did not store it)
    and its gap 0, so its rollups count the checks, packets and RTTs but no online or offline time.
    A host's target is created as of its first copied check.
    Rows are copied a batch at a time (a fixed number of statements per batch); two rows of one host
    in one second (a clock step) keep the first.
    """
    tables.metadata.create_all(conn, tables=[tables.targets, tables.check_errors, tables.checks,
                                             tables.transitions, tables.rollups_hourly, tables.rollups_daily])
    _add_missing_columns(conn, tables.hosts, ("held_since",))
    if not inspect(conn).has_table(LEGACY_CHECK_RESULTS.name):
        return
    old = LEGACY_CHECK_RESULTS.c
    firsts = conn.execute(select(old.host_name, func.min(old.checked_at)).group_by(old.host_name)).all()
    insert_missing(conn, tables.targets, [{"name": name, "created_at": first} for name, first in firsts])
    ids = dict(conn.execute(select(tables.targets.c.name, tables.targets.c.id)).all())
    after = 0
    while rows := conn.execute(select(LEGACY_CHECK_RESULTS).where(old.id > after).order_by(old.id)
                               .limit(COPY_BATCH)).mappings().all():
        after = rows[-1]["id"]
        errors = history.error_ids(conn, {row["error"] for row in rows if row["error"] is not None})
        insert_missing(conn, tables.checks, [_copied_check(row, ids, errors) for row in rows])
    first, last = conn.execute(select(func.min(tables.checks.c.checked_at), func.max(tables.checks.c.checked_at))).one()
    if first is not None:
        for day in range(rollup.bucket_start(int(first.timestamp()), rollup.DAY), int(last.timestamp()) + 1,
                         rollup.DAY):
            rollups.write_rollups(conn, rollups.rollups_from_raw(conn, day, day + rollup.DAY), COPY_BATCH)
    LEGACY_CHECK_RESULTS.drop(conn)


def _copied_check(row: Any, ids: dict[str, int], errors: dict[str, int]) -> dict[str, Any]:
    def micros(ms: float | None) -> int | None:
        return None if ms is None else round(ms * 1000)

    unknown = rollup.STATE_CODES["unknown"]
    return {"checked_at": row["checked_at"].replace(microsecond=0), "target_id": ids[row["host_name"]],
            "status": rollup.CHECK_CODES[row["status"]], "prior": unknown, "state": unknown, "gap_s": 0,
            "sent": row["sent"], "received": row["received"], "attempts": row["attempts"],
            "rtt_min_us": micros(row["rtt_min_ms"]), "rtt_avg_us": micros(row["rtt_avg_ms"]),
            "rtt_max_us": micros(row["rtt_max_ms"]),
            "rtt_bucket": None if row["rtt_avg_ms"] is None else rollup.rtt_bucket(row["rtt_avg_ms"]),
            "error_id": None if row["error"] is None else errors[row["error"]]}


def _add_missing_columns(conn: Connection, table: Table, names: tuple[str, ...]) -> None:
    """Adds the nullable columns of `names` that `table` lacks (a database created by newer code has them)."""
    present = {column["name"] for column in inspect(conn).get_columns(table.name)}
    for name in names:
        if name not in present:
            column = table.c[name]
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name}"
                              f" {column.type.compile(dialect=conn.dialect)} NULL"))



# Version 5's daily rollups held each day's own sums; version 6 keeps month-to-date totals instead.
_V5_DAILY_SUMS = ("ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us",
                  "online_s", "offline_s", "unknown_s", *[f"h{k:02d}" for k in range(rollup.RTT_BUCKETS)])
LEGACY_DAILY_V5 = Table(
    "rollups_daily",
    _legacy,
    Column("day", Integer, nullable=False),
    Column("target_id", Integer, nullable=False),
    Column("checks", Integer, nullable=False),
    *[Column(name, Integer, nullable=False) for name in _V5_DAILY_SUMS],
    Column("rtt_min_us", Integer, nullable=True),
    Column("rtt_max_us", Integer, nullable=True),
    Index("ix_rollups_daily_day_time", "day", "target_id", "online_s", "offline_s"),
)
_V5_DAILY_KEPT = "rollups_daily_v5"


def _v6_month_totals(conn: Connection) -> None:
    """Daily rollups with month-to-date totals (tables.rollups_daily): the version-5 rows are copied
    a UTC month at a time, each column's running sum over the host's days of the month so far; the
    hourly rows lose `checks` (ok + degraded + failed). Tables created by newer code are left as
    they are."""
    hourly = {column["name"] for column in inspect(conn).get_columns(tables.rollups_hourly.name)}
    if "checks" in hourly:
        conn.execute(text(f"ALTER TABLE {tables.rollups_hourly.name} DROP COLUMN checks"))
    present = {column["name"] for column in inspect(conn).get_columns(tables.rollups_daily.name)}
    if "mtd_ok" in present:
        return
    for index in LEGACY_DAILY_V5.indexes:
        index.drop(conn)
    conn.execute(text(f"ALTER TABLE {tables.rollups_daily.name} RENAME TO {_V5_DAILY_KEPT}"))
    tables.rollups_daily.create(conn)
    first, last = conn.execute(text(f"SELECT MIN(day), MAX(day) FROM {_V5_DAILY_KEPT}")).one()
    if first is not None:
        totals = ", ".join(f"SUM({name}) OVER (PARTITION BY target_id ORDER BY day ROWS UNBOUNDED PRECEDING)"
                           for name in _V5_DAILY_SUMS)
        columns = ", ".join(f"mtd_{name}" for name in _V5_DAILY_SUMS)
        month = mtd.month_start(int(first))
        while month <= int(last):
            following = mtd.next_month(month)
            conn.execute(text(
                f"INSERT INTO {tables.rollups_daily.name} (day, target_id, online_s, offline_s, rtt_min_us,"
                f" rtt_max_us, {columns}) SELECT day, target_id, online_s, offline_s, rtt_min_us, rtt_max_us,"
                f" {totals} FROM {_V5_DAILY_KEPT} WHERE day >= :month AND day < :following"),
                {"month": month, "following": following})
            month = following
    conn.execute(text(f"DROP TABLE {_V5_DAILY_KEPT}"))


def _v7_service_checks(conn: Connection) -> None:
    """`hosts.kind` (every existing row is a ping-sweep host), `client` and an HTTP check's last answer."""
    present = {column["name"] for column in inspect(conn).get_columns(tables.hosts.name)}
    if "kind" not in present:
        conn.execute(text(f"ALTER TABLE {tables.hosts.name} ADD COLUMN kind VARCHAR(4) NOT NULL DEFAULT 'host'"))
    _add_missing_columns(conn, tables.hosts, ("client", "last_status_code", "last_size_bytes", "last_excerpt"))


_V7_HOURLY_KEPT = "rollups_hourly_v7"


def _v8_compact_hourly(conn: Connection) -> None:
    """`rollups_hourly` with `rtt_p95_us` NOT NULL (-1 while absent, types.Pending) and, on MariaDB /
    MySQL, in InnoDB's compressed row format (tables.COMPRESSED), its rows kept: one UPDATE and one
    ALTER TABLE there; SQLite, which cannot alter a column, copies the rows into the new table in one
    statement. A table created by this code is left as it is."""
    table = tables.rollups_hourly
    [p95] = [column for column in inspect(conn).get_columns(table.name) if column["name"] == "rtt_p95_us"]
    if not p95["nullable"]:
        return
    absent = Pending.ABSENT
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"ALTER TABLE {table.name} RENAME TO {_V7_HOURLY_KEPT}"))
        table.create(conn)
        names = [column.name for column in table.columns]
        values = ", ".join(f"COALESCE({name}, {absent})" if name == "rtt_p95_us" else name for name in names)
        conn.execute(text(f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {values} FROM {_V7_HOURLY_KEPT}"))
        conn.execute(text(f"DROP TABLE {_V7_HOURLY_KEPT}"))
        return
    conn.execute(text(f"UPDATE {table.name} SET rtt_p95_us = {absent} WHERE rtt_p95_us IS NULL"))
    options = table.dialect_options["mysql"]
    conn.execute(text(f"ALTER TABLE {table.name} MODIFY rtt_p95_us INTEGER NOT NULL DEFAULT {absent}, "
                      f"ROW_FORMAT={options['row_format']} KEY_BLOCK_SIZE={options['key_block_size']}"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_ping_sweep, 2: _v2_event_scan,
                                                       3: _v3_trigger_location, 4: _v4_sigma_bodies,
                                                       5: _v5_history, 6: _v6_month_totals,
                                                       7: _v7_service_checks, 8: _v8_compact_hourly}
# The first version whose hourly rollups are compressed on MariaDB / MySQL: a server is asked whether it
# can write them before any migration up to it runs (netwatch/db/rowformat.py).
COMPRESSED_SINCE = 8
LATEST = max(MIGRATIONS)


def current_version(conn: Connection) -> int | None:
    """The applied schema version, or None when the database has no netwatch schema."""
    if not inspect(conn).has_table(tables.schema_version.name):
        return None
    return conn.execute(select(func.max(tables.schema_version.c.version))).scalar() or 0


def upgrade(conn: Connection, now: datetime) -> list[int]:
    """Creates `schema_version` if needed and applies every pending migration; returns those applied.

    A schema newer than this netwatch is refused (it would otherwise read as current), and so is a
    MariaDB / MySQL server that could not write the compressed hourly rollups, before anything changes.
    """
    version = current_version(conn)
    if version is not None and version > LATEST:
        require_version(conn, version)
    if (version or 0) < COMPRESSED_SINCE and conn.dialect.name in ("mysql", "mariadb"):
        problem = rowformat.compression_problem(rowformat.server_variables(conn))
        if problem is not None:
            database = conn.engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"database {database} cannot hold the hourly rollups: {problem}")
    if version is None:
        tables.schema_version.create(conn)
        version = 0
    applied = []
    for number in sorted(n for n in MIGRATIONS if n > version):
        MIGRATIONS[number](conn)
        conn.execute(tables.schema_version.insert().values(version=number, applied_at=now))
        applied.append(number)
    return applied


def require_current(conn: Connection) -> None:
    """Raises a ConfigError naming the database and the command to run when the schema is missing or behind."""
    require_version(conn, current_version(conn))


def require_version(conn: Connection, version: int | None) -> None:
    """As `require_current`, for a version already read on `conn`."""
    database = conn.engine.url.render_as_string(hide_password=True)
    if version is None:
        # A job run initialises an empty SQLite file itself; a MySQL database is set up once by hand.
        create = ("the first job run creates it, or run `netwatch db init`" if conn.dialect.name == "sqlite"
                  else "run `netwatch db init`")
        raise ConfigError(f"database {database} has no netwatch schema: {create}")
    if version < LATEST:
        raise ConfigError(f"database {database} has schema version {version}, this netwatch needs {LATEST}: "
                          "run `netwatch db upgrade`")
    if version > LATEST:
        raise ConfigError(f"database {database} has schema version {version}, newer than this netwatch "
                          f"({LATEST}): upgrade netwatch")
