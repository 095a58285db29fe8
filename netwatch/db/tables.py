"""The one source of the schema: every table netwatch uses, as SQLAlchemy Core metadata.

`schema.sql` is generated from this module (`netwatch db schema`); a test fails on drift.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from netwatch import limits
from netwatch.db.types import BigId, UTCDateTime

metadata = MetaData()

# Explicit so the DDL does not depend on the server's defaults.
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

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
    **MYSQL,
)

check_results = Table(
    "check_results",
    metadata,
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
