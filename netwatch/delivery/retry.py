"""What one delivery attempt means for an outbox item, the same for Sigma and every channel."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.outcome import Delivery

log = logging.getLogger(__name__)

_MAX_WAIT_S = timedelta(days=1).total_seconds()


@dataclass(frozen=True)
class RetryRule:
    max_attempts: int
    backoff_seconds: float


def apply_outcome(item: OutboxItem, outcome: Delivery, now: datetime, rule: RetryRule) -> OutboxItem:
    """The item after one attempt: sent, failed, pending with its next attempt time, or dead.

    An `unsent` outcome (the request never left: the run's deadline was used up) spends no
    attempt and leaves the item due: only a request that reached the receiver, or failed on its way
    there, counts towards `max_attempts`.
    """
    fields = {"channel": item.channel, "subject": item.subject, "kind": item.kind, "key": item.idempotency_key,
              "attempts": item.attempts}
    if outcome.status == "unsent":
        log.warning("%s not sent, no attempt spent: %s", item.kind, outcome.error, extra={"fields": fields})
        return item.with_outcome(last_error=outcome.error, updated_at=now)
    attempts = item.attempts + 1
    fields["attempts"] = attempts
    common = {"attempts": attempts, "http_status": outcome.http_status, "updated_at": now}
    if outcome.status == "sent":
        log.info("%s delivered", item.kind, extra={"fields": fields})
        return item.with_outcome(status=outbox.SENT, last_error=None, next_attempt_at=None, delivered_at=now,
                                 **common)
    if outcome.status == "failed":
        # A 4xx (or an SMTP 5xx reply) is a refusal; a status the contract does not list (Sigma's 200) is not.
        refused = outcome.http_status is None or 400 <= outcome.http_status < 500
        log.warning("%s %s %s: %s", item.kind, "refused by" if refused else "failed for good at", item.channel,
                    outcome.error, extra={"fields": fields})
        return item.with_outcome(status=outbox.FAILED, last_error=outcome.error, next_attempt_at=None, **common)
    if attempts >= rule.max_attempts:
        log.error("%s dead after %d attempts: %s", item.kind, attempts, outcome.error, extra={"fields": fields})
        return item.with_outcome(status=outbox.DEAD, last_error=outcome.error, next_attempt_at=None, **common)
    # In float seconds, capped before a timedelta is built: 2**41 backoffs or a server's absurd
    # Retry-After must neither overflow nor park a message for years.
    backoff_s = rule.backoff_seconds * 2.0 ** min(attempts - 1, 64)
    wait = timedelta(seconds=min(max(backoff_s, outcome.retry_after_s or 0.0), _MAX_WAIT_S))
    log.warning("%s still pending: %s", item.kind, outcome.error, extra={"fields": fields})
    return item.with_outcome(status=outbox.PENDING, last_error=outcome.error, next_attempt_at=now + wait, **common)
