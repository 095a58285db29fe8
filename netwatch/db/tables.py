"""The one source of the schema: every table netwatch uses, as SQLAlchemy Core metadata.

`schema.sql` is generated from this module (`netwatch db schema`); a test fails on drift.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from netwatch import limits
from netwatch.core import rollup
from netwatch.db.types import BigId, EpochSeconds, Pending, UTCDateTime

metadata = MetaData()

# Explicit so the DDL does not depend on the server's defaults.
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
# rollups_hourly on MariaDB / MySQL (schema 8): InnoDB's compressed row format in 8 KB pages. Its
# rows, 24 per host per day, are small counters much alike from row to row: compressed, a row takes
# 35 bytes on disk instead of 75 (bench/history.py), for about 0.07 s more per run at 10,000 hosts,
# as long as rows keep their width when updated (rtt_p95_us is never NULL, types.Pending): a row
# that grows splits its compressed page, and rows written by runs would then take 64 bytes.
# rollups_daily stays uncompressed: a run's upsert of its wide rows would cost 0.26 s more, to save
# 160 of the 1,240 bytes per host per day. netwatch/db/rowformat.py refuses a server that could not
# write the compressed table.
COMPRESSED = {**MYSQL, "mysql_row_format": "COMPRESSED", "mysql_key_block_size": "8"}

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
    **MYSQL,
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=True),
    Column("acquired_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    **MYSQL,
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job", String(40), nullable=False),
    Column("shard", String(20), nullable=False),
    Column("holder", String(100), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("exit_code", Integer, nullable=True),
    Column("counts", Text, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_job_runs_job_started", "job", "started_at"),
    **MYSQL,
)

hosts = Table(
    "hosts",
    metadata,
    Column("name", String(limits.HOST_NAME), primary_key=True),
    Column("address", String(limits.ADDRESS_COLUMN), nullable=False),
    Column("account", String(limits.ACCOUNT), nullable=True),
    Column("partition_code", String(limits.PARTITION), nullable=True),
    Column("zone_code", String(limits.ZONE), nullable=True),
    Column("status", String(10), nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("consecutive_successes", Integer, nullable=False),
    Column("last_transition_at", UTCDateTime, nullable=True),
    Column("held", Boolean, nullable=False),
    Column("last_check_at", UTCDateTime, nullable=True),
    Column("last_check_status", String(10), nullable=True),
    Column("last_run_id", BigId, nullable=True),
    # When the held change (see `held`) first became due: how long it was held, and when it applies.
    Column("held_since", UTCDateTime, nullable=True),
    # What is checked (schema 7): `host` (ping-sweep), `http` or `tcp` (http-check), each job keeping
    # to its own kinds; `address` is then the URL (no credentials, no query) or host:port, and
    # `client` the client organisation the check belongs to (None for hosts).
    Column("kind", String(4), nullable=False, server_default=text("'host'")),
    Column("client", String(limits.CLIENT), nullable=True),
    # An HTTP check's last answer: its status code, the body bytes read, and the start of the body
    # of a failed answer that may be quoted (netwatch/core/servicecheck.py); None for the others.
    Column("last_status_code", SmallInteger, nullable=True),
    Column("last_size_bytes", Integer, nullable=True),
    Column("last_excerpt", String(limits.ERROR_TEXT), nullable=True),
    **MYSQL,
)

# History (schema 5). Times are whole epoch seconds (EpochSeconds), states and statuses small codes
# (netwatch.core.rollup), hosts a compact integer id: a raw row costs as little as it can.

targets = Table(
    "targets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(limits.HOST_NAME), nullable=False),
    Column("created_at", EpochSeconds, nullable=False),
    UniqueConstraint("name", name="uq_targets_name"),
    **MYSQL,
)

check_errors = Table(
    "check_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("text", String(limits.ERROR_TEXT), nullable=False),
    UniqueConstraint("text", name="uq_check_errors_text"),
    **MYSQL,
)

# One row per host per ping-sweep run. `prior` is the confirmed state before this check and
# `gap_s` the seconds before `checked_at` spent in it (capped by history.gap_limit_seconds; 0 for
# a host's first check or when the clock went back); `state` is the confirmed state after it.
# Stored in primary-key order on both databases (InnoDB always, SQLite as WITHOUT ROWID) and with no
# other index: a run's rows are neighbours, so cleanup deletes whole pages and the writer appends.
# A host's checks are read by point lookups (checked_at, target_id), checked_at being a run's start.
checks = Table(
    "checks",
    metadata,
    Column("checked_at", EpochSeconds, nullable=False),
    Column("target_id", Integer, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("prior", SmallInteger, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("gap_s", Integer, nullable=False),
    Column("sent", SmallInteger, nullable=False),
    Column("received", SmallInteger, nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("rtt_min_us", Integer, nullable=True),
    Column("rtt_avg_us", Integer, nullable=True),
    Column("rtt_max_us", Integer, nullable=True),
    Column("rtt_bucket", SmallInteger, nullable=True),
    Column("error_id", Integer, nullable=True),
    PrimaryKeyConstraint("checked_at", "target_id", name="pk_checks"),
    sqlite_with_rowid=False,
    **MYSQL,
)

# Every confirmed change of a host's state; `held_s`: how long the change waited for
# thresholds.min_transition_seconds; `event_key`: the idempotency key of the event sent about it.
transitions = Table(
    "transitions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("target_id", Integer, nullable=False),
    Column("at", EpochSeconds, nullable=False),
    Column("from_state", SmallInteger, nullable=False),
    Column("to_state", SmallInteger, nullable=False),
    Column("streak", Integer, nullable=False),
    Column("held_s", Integer, nullable=False),
    Column("run_id", BigId, nullable=True),
    Column("event_key", String(100), nullable=True),
    Index("ix_transitions_target_at", "target_id", "at"),
    Index("ix_transitions_at", "at"),
    **MYSQL,
)


def _counter(name: str, kind: type[Integer] | type[SmallInteger] | type[BigInteger]) -> Column[int]:
    # 0 on the server: a run's additive upsert names only the columns it adds to.
    return Column(name, kind, nullable=False, server_default=text("0"))


# Per host per UTC hour. rtt_p95_us is written when the hour closes (the host's next check is in a
# later hour), from the raw checks of that hour; it is None while the hour is in progress (stored as
# -1 since schema 8, types.Pending: the row does not grow when it arrives, see COMPRESSED).
rollups_hourly = Table(
    "rollups_hourly",
    metadata,
    Column("hour", EpochSeconds, nullable=False),
    Column("target_id", Integer, nullable=False),
    # Checks by status (a check counts in one: their number is ok + degraded + failed), bounded by
    # the hour's length; packets; RTT in microseconds; seconds in each confirmed state.
    _counter("ok", SmallInteger),
    _counter("degraded", SmallInteger),
    _counter("failed", SmallInteger),
    _counter("sent", Integer),
    _counter("received", Integer),
    # Checks with a reply: the latency average is rtt_sum_us / rtt_samples (an exact sum, no rounding).
    _counter("rtt_samples", SmallInteger),
    Column("rtt_min_us", Integer, nullable=True),
    _counter("rtt_sum_us", BigInteger),
    Column("rtt_max_us", Integer, nullable=True),
    _counter("online_s", SmallInteger),
    _counter("offline_s", SmallInteger),
    _counter("unknown_s", SmallInteger),
    Column("rtt_p95_us", Pending, nullable=False, server_default=text(str(Pending.ABSENT))),
    PrimaryKeyConstraint("hour", "target_id", name="pk_rollups_hourly"),
    **COMPRESSED,
)

# Per host per UTC day. Two kinds of column:
# - the day's own confirmed-state time and RTT extremes (`online_s`, `offline_s`, `rtt_min_us`,
#   `rtt_max_us`): the status page's bars and a report's min / max read them, through the covering
#   index, never the wide rows;
# - month-to-date running totals (`mtd_*`): the sums of the host's days of the same UTC month up to
#   and including this one, with the RTT histogram as plain counters (core.rollup.RTT_BUCKETS). Any
#   range of days is then a difference of a few rows per host (history/uptime.py): its last row in
#   each month touched, less its last row before the range in the first month. A day's own counts
#   are its totals less those of the host's previous row in the month. Retention deletes whole months.
MTD_COUNTERS = ("ok", "degraded", "failed", "sent", "received", "rtt_samples", "rtt_sum_us",
                "online_s", "offline_s", "unknown_s", *[f"h{index:02d}" for index in range(rollup.RTT_BUCKETS)])
rollups_daily = Table(
    "rollups_daily",
    metadata,
    Column("day", EpochSeconds, nullable=False),
    Column("target_id", Integer, nullable=False),
    _counter("online_s", Integer),
    _counter("offline_s", Integer),
    Column("rtt_min_us", Integer, nullable=True),
    Column("rtt_max_us", Integer, nullable=True),
    *[_counter(f"mtd_{name}", BigInteger if name == "rtt_sum_us" else Integer) for name in MTD_COUNTERS],
    PrimaryKeyConstraint("day", "target_id", name="pk_rollups_daily"),
    # Covers the status page's 90 days of uptime and a report's windows and RTT extremes: a narrow
    # range scan, not the wide rows.
    Index("ix_rollups_daily_day_time", "day", "target_id", "online_s", "offline_s", "rtt_min_us", "rtt_max_us"),
    **MYSQL,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("idempotency_key", String(100), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(limits.SUBJECT), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("last_error", String(limits.ERROR_TEXT), nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("run_id", BigId, nullable=True),
    UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    **MYSQL,
)

account_cache = Table(
    "account_cache",
    metadata,
    Column("account", String(limits.ACCOUNT), primary_key=True),
    Column("found", Boolean, nullable=False),
    Column("payload", Text, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
    **MYSQL,
)

triggers = Table(
    "triggers",
    metadata,
    Column("account", String(limits.ACCOUNT), primary_key=True),
    Column("cuc", String(limits.CUC), primary_key=True),
    Column("code", String(limits.CODE), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("peak", Integer, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("cleared_at", UTCDateTime, nullable=True),
    Column("clear_reason", String(20), nullable=True),
    Column("account_name", String(limits.LABEL), nullable=True),
    Column("company", String(limits.LABEL), nullable=True),
    Column("client_group", String(limits.LABEL), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # The partition and zone of the group's latest event (an injected Segware alarm names them).
    Column("partition_code", String(limits.PARTITION), nullable=True),
    Column("zone_code", String(limits.ZONE), nullable=True),
    Index("ix_triggers_status", "status"),
    **MYSQL,
)

register_log = Table(
    "register_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("action", String(10), nullable=False),
    Column("account", String(limits.ACCOUNT), nullable=False),
    Column("cuc", String(limits.CUC), nullable=False),
    Column("code", String(limits.CODE), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("window_minutes", Integer, nullable=False),
    Column("reason", String(20), nullable=True),
    Column("active_seconds", Float, nullable=True),
    Column("account_name", String(limits.LABEL), nullable=True),
    Column("company", String(limits.LABEL), nullable=True),
    Column("client_group", String(limits.LABEL), nullable=True),
    Column("run_id", BigId, nullable=True),
    Index("ix_register_log_at", "at"),
    **MYSQL,
)

scan_counts = Table(
    "scan_counts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigId, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("account", String(limits.ACCOUNT), nullable=False),
    Column("cuc", String(limits.CUC), nullable=False),
    Column("code", String(limits.CODE), nullable=False),
    Column("count", Integer, nullable=False),
    Index("ix_scan_counts_group_end", "account", "cuc", "code", "window_end"),
    Index("ix_scan_counts_end", "window_end"),
    **MYSQL,
)
