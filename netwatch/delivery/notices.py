"""Notifications for every job: queued in the outbox with per-channel cooldown, then delivered.

Cooldown: per channel and subject (a host, an alert group), messages go out at least
`cooldown_seconds` apart. A message due inside the cooldown waits for its end; a newer message
about the same subject supersedes one still waiting, so a flapping subject yields at most one
message per cooldown, and always the latest state. Recovery messages (host back online, alert
cleared) go only to channels with `send_recovery`; on the others a recovery still supersedes the
waiting message it makes stale (an "offline" must not go out after the host came back). A first
status `online` goes to every channel but the Segware alarm one, where it would be a false alarm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from netwatch.config import NotificationsConfig
from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import BATCH, deliver_items
from netwatch.delivery.report import DeliveryReport
from netwatch.delivery.retry import RetryRule
from netwatch.deps import STORE_EVERY_S
from netwatch.notify.channel import Channel
from netwatch.notify.kinds import ALARM_CHANNELS, CLOSING, Kind, is_alarm_free
from netwatch.notify.message import Message
from netwatch.notify.templates import render
from netwatch.outcome import Delivery
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """A message to send on every configured channel; `key` identifies what happened, stably."""

    message: Message
    key: str


def make_notice(
    kind: Kind,
    key: str,
    subject: str,
    occurred_at: datetime,
    fields: Mapping[str, str],
    config: NotificationsConfig,
    *,
    account: str | None = None,
    partition: str | None = None,
    zone: str | None = None,
    code: str | None = None,
) -> Notice:
    """Renders the kind's templates (operator overrides first) into a Notice."""
    title, body = render(kind, fields, config.templates)
    message = Message(kind=kind, subject=subject, title=title, body=body, occurred_at=occurred_at,
                      recovery=kind in CLOSING, account=account, partition=partition, zone=zone, code=code,
                      data=dict(fields))
    return Notice(message=message, key=key)


def queue_notices(
    conn: Connection, notices: Sequence[Notice], config: NotificationsConfig, now: datetime, run_id: int
) -> int:
    """Queues `notices` (oldest first) on every configured channel; returns the items queued."""
    policies = config.policies()
    if not policies or not notices:
        return 0
    anchors = outbox.last_delivered(conn, policies, {n.message.subject for n in notices})
    items: list[OutboxItem] = []
    for channel, policy in sorted(policies.items()):
        latest = {notice.message.subject: notice for notice in notices}
        outbox.supersede_pending(conn, channel, latest.keys(), now)
        for subject, notice in latest.items():
            if notice.message.recovery and not policy.send_recovery:
                continue
            if channel in ALARM_CHANNELS and is_alarm_free(notice.message.kind, notice.message.data):
                continue  # an alarm for a healthy new host would be a false alarm
            anchor = anchors.get((channel, subject))
            due = now if anchor is None else max(now, anchor + timedelta(seconds=policy.cooldown_seconds))
            items.append(OutboxItem(
                id=None, channel=channel, idempotency_key=f"{channel}-{notice.key}", kind=notice.message.kind,
                subject=subject, payload=notice.message.to_payload(), status=outbox.PENDING, attempts=0,
                http_status=None, last_error=None, next_attempt_at=due, created_at=now, updated_at=now,
                delivered_at=None, run_id=run_id,
            ))
    outbox.enqueue(conn, items)
    return len(items)


def deliver_notices(
    engine: Engine, channels: Mapping[str, Channel], config: NotificationsConfig, now: datetime, stop: StopFlag,
    mask: Callable[[str], str], turn: Lease | None = None, store_every_s: float = STORE_EVERY_S,
) -> DeliveryReport:
    """Sends due notifications channel by channel; a transient failure leaves that channel's rest for later."""
    if not channels:
        return DeliveryReport()
    rule = RetryRule(config.max_attempts, config.retry_backoff_seconds)
    with engine.begin() as conn:
        due = {name: outbox.due_items(conn, name, now, BATCH) for name in sorted(channels)}
    report = DeliveryReport()
    for name, items in due.items():
        channel = channels[name]
        report += deliver_items(engine, items, lambda item, channel=channel: _send(channel, item), rule, now, stop,
                                mask, turn=turn, store_every_s=store_every_s)
    return report


def _send(channel: Channel, item: OutboxItem) -> Delivery:
    try:
        message = Message.from_payload(item.payload)
    except (KeyError, ValueError) as exc:
        return Delivery("failed", None, f"malformed outbox payload: {exc}")
    return channel.send(message, item.idempotency_key)
