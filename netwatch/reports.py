"""Read-only reports for the CLI: rows from the database, rendered as a table, JSON or CSV.

Values come from APIs and the inventory and may hold control characters: a table cell shows them
escaped (netwatch.printable), so a newline cannot add a row nor an escape sequence clear the screen.
JSON and CSV keep the real value; both formats quote it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from netwatch.db.hosts import KINDS, list_hosts
from netwatch.db.outbox import list_items
from netwatch.db.register import read_entries
from netwatch.db.runs import list_runs
from netwatch.db.triggers import list_triggers
from netwatch.errors import UsageError
from netwatch.excerpt import excerpt
from netwatch.history.timeline import last_checks
from netwatch.printable import printable

_AGE = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# The longest --since (documented in README): older than anything stored, and far from the
# limits of datetime arithmetic, which a huge age would overflow (a crash, not a usage error).
MAX_AGE = timedelta(days=36_525)
_MAX_AGE_DIGITS = 12

HOST_COLUMNS = ("name", "kind", "client", "address", "status", "since", "held", "last_check", "last_check_at",
                "failures", "successes", "streak", "loss_pct", "rtt_avg_ms", "reason", "held_until", "status_code",
                "size_bytes", "excerpt")
HOST_TABLE = ("name", "kind", "client", "address", "status", "since", "last_check", "last_check_at", "streak",
              "loss_pct", "rtt_avg_ms", "reason", "held_until")
ALERT_COLUMNS = ("account", "cuc", "code", "status", "count", "peak", "threshold", "first_seen", "last_seen",
                 "raised_at", "cleared_at", "clear_reason", "account_name", "company", "client_group")
ALERT_TABLE = ("account", "cuc", "code", "status", "count", "threshold", "first_seen", "last_seen",
               "account_name", "company", "client_group")
LOG_COLUMNS = ("at", "action", "account", "cuc", "code", "count", "threshold", "window_minutes", "reason",
               "active_seconds", "account_name", "company", "client_group")


def parse_age(text: str) -> timedelta:
    """"90s", "30m", "24h" or "7d" as a duration, at most MAX_AGE (100 years)."""
    match = _AGE.match(text.strip().lower())
    if not match:
        raise UsageError(f"--since: expected a number and a unit (s, m, h, d) such as 24h, got {excerpt(text)}")
    digits, unit = match[1].lstrip("0") or "0", match[2]
    # Digits counted before int(): Python refuses to convert thousands of them (ValueError).
    if len(digits) > _MAX_AGE_DIGITS or int(digits) * _UNIT_SECONDS[unit] > MAX_AGE.total_seconds():
        raise UsageError(f"--since: {excerpt(text)} is more than {MAX_AGE.days}d (100 years), the longest age")
    return timedelta(seconds=int(digits) * _UNIT_SECONDS[unit])


def host_rows(conn: Connection, min_transition: timedelta, kinds: Sequence[str] = KINDS) -> list[dict[str, Any]]:
    """Each host's or check's current state, why it is there (its last check, its streak) and when a held
    change is due; grouped by client (hosts and checks without one first), then by name.

    A held change is applied by the first run at or after `held_until` (the last transition plus
    thresholds.min_transition_seconds) whose check still confirms it. An HTTP check also shows its last
    answer's status code, size and (failed, when it may be quoted) the start of its body.
    """
    last = last_checks(conn)
    rows = []
    for h in sorted(list_hosts(conn, kinds), key=lambda row: (row.client is not None, row.client or "", row.name)):
        check = last.get(h.name)
        held_until = (h.state.last_transition_at + min_transition
                      if h.state.held and h.state.last_transition_at is not None else None)
        rows.append({
            "name": h.name, "kind": h.kind, "client": h.client, "address": h.address, "status": str(h.state.status),
            "since": h.state.last_transition_at,
            "held": h.state.held, "last_check": h.last_check_status, "last_check_at": h.last_check_at,
            "failures": h.state.consecutive_failures, "successes": h.state.consecutive_successes,
            "streak": _streak(h.state.consecutive_failures, h.state.consecutive_successes),
            "loss_pct": check.loss_pct if check else None, "rtt_avg_ms": check.rtt_avg_ms if check else None,
            "reason": check.reason if check else None, "held_until": held_until,
            "status_code": h.answer.status_code, "size_bytes": h.answer.size_bytes, "excerpt": h.answer.excerpt})
    return rows


def _streak(failures: int, successes: int) -> str | None:
    if failures:
        return f"{failures} failed"
    return f"{successes} good" if successes else None


def alert_rows(conn: Connection, active_only: bool, since: datetime | None) -> list[dict[str, Any]]:
    """Triggers with their counts, times and enrichment, most recently seen first."""
    return [
        {"account": t.key.account, "cuc": t.key.cuc, "code": t.key.code, "status": t.status, "count": t.count,
         "peak": t.peak, "threshold": t.threshold, "first_seen": t.first_seen, "last_seen": t.last_seen,
         "raised_at": t.raised_at, "cleared_at": t.cleared_at, "clear_reason": t.clear_reason,
         "account_name": t.account_name, "company": t.company, "client_group": t.client_group}
        for t in list_triggers(conn, active_only, since)
    ]


def log_rows(conn: Connection, since: datetime | None) -> list[dict[str, Any]]:
    """The register log, oldest first."""
    return [{column: getattr(entry, column) for column in LOG_COLUMNS} for entry in read_entries(conn, since)]


RUN_COLUMNS = ("id", "job", "shard", "started_at", "finished_at", "duration_s", "outcome", "exit_code", "counts",
               "error")
RUN_TABLE = ("id", "job", "shard", "started_at", "duration_s", "outcome", "exit_code", "counts", "error")
OUTBOX_COLUMNS = ("id", "channel", "kind", "subject", "status", "attempts", "http_status", "last_error",
                  "next_attempt_at", "created_at", "idempotency_key")
OUTBOX_TABLE = ("id", "channel", "kind", "subject", "status", "attempts", "last_error", "next_attempt_at")


def run_rows(conn: Connection, job: str | None, since: datetime, failed_only: bool) -> list[dict[str, Any]]:
    """Job runs since `since`, newest first, with duration and counts (as `key=value` text)."""
    return [
        {"id": r.id, "job": r.job, "shard": r.shard, "started_at": r.started_at, "finished_at": r.finished_at,
         "duration_s": None if r.finished_at is None else round((r.finished_at - r.started_at).total_seconds(), 3),
         "outcome": r.outcome, "exit_code": r.exit_code,
         "counts": " ".join(f"{key}={value}" for key, value in sorted(r.counts.items())), "error": r.error}
        for r in list_runs(conn, job, since, failed_only)
    ]


def outbox_rows(conn: Connection, statuses: Sequence[str], channel: str | None) -> list[dict[str, Any]]:
    """Queued messages with their attempts, last error and next attempt, oldest first."""
    items = list_items(conn, statuses, channel)
    return [{column: getattr(item, column) for column in OUTBOX_COLUMNS} for item in items]


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
           table_columns: Sequence[str] | None = None) -> str:
    """`rows` as an aligned table (fewer columns, control characters escaped), a JSON list or CSV with a header."""
    plain = [{column: _plain(row.get(column)) for column in columns} for row in rows]
    if fmt == "json":
        return json.dumps(plain, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        # RFC 4180 line ends (CRLF): the writer quotes a value holding any character of the terminator, a bare CR too.
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(plain)
        return out.getvalue()
    shown = list(table_columns or columns)
    cells = [shown] + [["-" if row[c] is None else printable(str(row[c])) for c in shown] for row in plain]
    widths = [max(len(line[i]) for line in cells) for i in range(len(shown))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in cells)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
