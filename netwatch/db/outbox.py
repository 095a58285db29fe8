"""`outbox`: every outgoing message, committed before any HTTP call, with its delivery status.

Status: `pending` (to deliver, now or at `next_attempt_at`), `sent`, `failed` (permanent refusal),
`dead` (gave up after the configured attempts), `undelivered` (no sink configured when created),
`superseded` (a newer notification about the same subject replaced it while it waited).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from netwatch import limits
from netwatch.db.tables import outbox
from netwatch.db.upsert import upsert_rows
from netwatch.errors import NotRetryable

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
DEAD = "dead"
UNDELIVERED = "undelivered"
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class OutboxItem:
    id: int | None
    channel: str
    idempotency_key: str
    kind: str
    subject: str
    payload: Mapping[str, Any]
    status: str
    attempts: int
    http_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    run_id: int | None

    def with_outcome(self, **changes: Any) -> OutboxItem:
        """A copy with delivery fields changed (error text cut to the column width)."""
        if changes.get("last_error"):
            changes["last_error"] = changes["last_error"][: limits.ERROR_TEXT]
        return replace(self, **changes)


def encode_payload(payload: Mapping[str, Any]) -> str:
    """The stored text of a payload (compact JSON, keys sorted)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _values(item: OutboxItem) -> dict[str, Any]:
    return {
        "channel": item.channel,
        "idempotency_key": item.idempotency_key,
        "kind": item.kind,
        "subject": item.subject,
        "payload": encode_payload(item.payload),
        "status": item.status,
        "attempts": item.attempts,
        "http_status": item.http_status,
        "last_error": item.last_error,
        "next_attempt_at": item.next_attempt_at,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "delivered_at": item.delivered_at,
        "run_id": item.run_id,
    }


def item_from_row(row: Mapping[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        channel=row["channel"],
        idempotency_key=row["idempotency_key"],
        kind=row["kind"],
        subject=row["subject"],
        payload=json.loads(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        http_status=row["http_status"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        delivered_at=row["delivered_at"],
        run_id=row["run_id"],
    )


def enqueue(conn: Connection, items: Sequence[OutboxItem]) -> None:
    """Inserts new items in one batch (their ids are assigned by the database)."""
    if items:
        conn.execute(outbox.insert(), [_values(item) for item in items])


def due_items(conn: Connection, channel: str, now: datetime, limit: int) -> list[OutboxItem]:
    """Pending items of `channel` whose next attempt is due, oldest first."""
    rows = conn.execute(
        select(outbox)
        .where(
            and_(
                outbox.c.channel == channel,
                outbox.c.status == PENDING,
                or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
            )
        )
        .order_by(outbox.c.id)
        .limit(limit)
    ).mappings()
    return [item_from_row(row) for row in rows]


def record_outcomes(conn: Connection, items: Sequence[OutboxItem]) -> list[OutboxItem]:
    """Stores the delivery fields of already-queued items (one read, one write); returns those stored.

    The payload is not among them: it was final before the first attempt (see `store_payloads`).
    An item superseded while it was being sent keeps `superseded` unless it was in fact sent: a
    stale message must not come back as pending, failed or dead, so that outcome is discarded (and
    left out of the result). The read locks those rows on MySQL until commit.
    """
    ids = [item.id for item in items if item.id is not None]
    if not ids:
        return []
    superseded = set(
        conn.execute(
            select(outbox.c.id).where(and_(outbox.c.id.in_(ids), outbox.c.status == SUPERSEDED)).with_for_update()
        ).scalars()
    )
    stored = [item for item in items
              if item.id is not None and (item.id not in superseded or item.status == SENT)]
    upsert_rows(
        conn,
        outbox,
        [{"id": item.id, **_values(item)} for item in stored],
        key=["id"],
        update=["status", "attempts", "http_status", "last_error", "next_attempt_at", "updated_at", "delivered_at"],
    )
    return stored


def store_payloads(conn: Connection, items: Sequence[OutboxItem]) -> None:
    """Stores the payloads (and update times) of already-queued items in one statement.

    Only before an item's first attempt: every attempt of one Idempotency-Key sends the stored body.
    """
    upsert_rows(conn, outbox, [{"id": item.id, **_values(item)} for item in items], key=["id"],
                update=["payload", "updated_at"])


def count_waiting(conn: Connection, now: datetime) -> int:
    """Pending items whose next attempt is not due yet (cooldown or backoff)."""
    return int(conn.execute(
        select(func.count()).select_from(outbox).where(and_(outbox.c.status == PENDING, outbox.c.next_attempt_at > now))
    ).scalar_one())


def last_delivered(
    conn: Connection, channels: Collection[str], subjects: Collection[str]
) -> dict[tuple[str, str], datetime]:
    """For each (channel, subject): when its latest message was delivered (the cooldown anchor)."""
    if not channels or not subjects:
        return {}
    rows = conn.execute(
        select(outbox.c.channel, outbox.c.subject, func.max(outbox.c.delivered_at))
        .where(
            and_(
                outbox.c.channel.in_(sorted(channels)),
                outbox.c.subject.in_(sorted(subjects)),
                outbox.c.status == SENT,
            )
        )
        .group_by(outbox.c.channel, outbox.c.subject)
    )
    return {(channel, subject): at for channel, subject, at in rows}


def supersede_pending(conn: Connection, channel: str, subjects: Collection[str], now: datetime) -> None:
    """Marks waiting messages of `channel` about `subjects` as superseded by newer ones."""
    if subjects:
        conn.execute(
            update(outbox)
            .where(
                and_(outbox.c.channel == channel, outbox.c.subject.in_(sorted(subjects)), outbox.c.status == PENDING)
            )
            .values(status=SUPERSEDED, updated_at=now)
        )


# What `netwatch outbox` lists unless told: the messages still waiting or given up on.
OPEN_STATUSES = (PENDING, FAILED, DEAD)
_KEY_CHUNK = 5000


def statuses_of(conn: Connection, keys: Collection[str]) -> dict[str, str]:
    """The status of the message with each idempotency key (one query per 5,000 keys)."""
    wanted = sorted(set(keys))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _KEY_CHUNK):
        rows = conn.execute(select(outbox.c.idempotency_key, outbox.c.status)
                            .where(outbox.c.idempotency_key.in_(wanted[start : start + _KEY_CHUNK])))
        found.update({key: status for key, status in rows})
    return found


def list_items(conn: Connection, statuses: Collection[str], channel: str | None) -> list[OutboxItem]:
    """Messages in any of `statuses` (of `channel` when given), oldest first."""
    condition = outbox.c.status.in_(sorted(statuses))
    if channel is not None:
        condition = and_(condition, outbox.c.channel == channel)
    rows = conn.execute(select(outbox).where(condition).order_by(outbox.c.id)).mappings()
    return [item_from_row(row) for row in rows]


def retry_dead(conn: Connection, ids: Collection[int], now: datetime) -> int:
    """Gives dead messages a new attempt budget (pending, 0 attempts, due now), keeping their keys.

    All or nothing: when an id is missing or its message not dead, NotRetryable and no change
    (the read locks the rows on MySQL, so none changes between the check and the update).
    """
    wanted = sorted(set(ids))
    found = dict(conn.execute(select(outbox.c.id, outbox.c.status).where(outbox.c.id.in_(wanted))
                              .with_for_update()).all())
    problems = [f"{i} {'does not exist' if i not in found else f'is {found[i]}, not dead'}"
                for i in wanted if found.get(i) != DEAD]
    if problems:
        raise NotRetryable(f"outbox retry: message {', '.join(problems)}: nothing changed")
    conn.execute(update(outbox).where(and_(outbox.c.id.in_(wanted), outbox.c.status == DEAD))
                 .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now))
    return len(wanted)
