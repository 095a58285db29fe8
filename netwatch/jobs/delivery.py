"""Delivers due host events from the outbox to Sigma and stores each outcome in one batch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from netwatch.clients.sigma import SigmaEvent
from netwatch.config import Config
from netwatch.core.location import UNKNOWN, choose_location
from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.deps import Deps
from netwatch.jobs.enrichment import AccountLookup, look_up_accounts
from netwatch.outcome import Delivery

log = logging.getLogger(__name__)

CHANNEL = "sigma"
BATCH = 10_000
_MAX_BACKOFF = timedelta(days=1)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    dead: int = 0

    @property
    def trouble(self) -> bool:
        """True when any delivery attempt of this run did not end as sent."""
        return bool(self.failed or self.pending or self.dead)


def deliver_events(engine: Engine, deps: Deps, config: Config, now: datetime) -> DeliveryReport:
    """Sends due events oldest first; on a transient Sigma failure the rest waits for the next run.

    Outcomes already obtained are stored even when SIGTERM or a rejected token ends the loop, so a
    sent event is not sent again (and if it were, its Idempotency-Key makes Sigma answer 409).
    """
    if deps.sigma is None:
        return DeliveryReport()
    with engine.begin() as conn:
        items = outbox.due_items(conn, CHANNEL, now, BATCH)
    if not items:
        return DeliveryReport()
    accounts = {str(i.payload["account"]) for i in items if _needs_location(i) and i.payload.get("account")}
    lookup = look_up_accounts(engine, deps.segware, accounts, now, config.segware.cache_ttl_seconds, deps.stop)
    done: list[OutboxItem] = []
    try:
        for item in items:
            deps.stop.check()
            if _needs_location(item) and item.payload.get("account") in lookup.unavailable:
                outcome = Delivery("pending", None, f"enrichment: {lookup.error}")
                done.append(_apply(item, outcome, now, config))
                continue
            located = _located(item, lookup)
            outcome = deps.sigma.send_event(_sigma_event(located))
            done.append(_apply(located, outcome, now, config))
            if outcome.status == "pending":
                break
    finally:
        with engine.begin() as conn:
            outbox.record_outcomes(conn, done)
    statuses = [item.status for item in done]
    return DeliveryReport(
        sent=statuses.count(outbox.SENT),
        failed=statuses.count(outbox.FAILED),
        pending=statuses.count(outbox.PENDING),
        dead=statuses.count(outbox.DEAD),
    )


def _needs_location(item: OutboxItem) -> bool:
    return not item.payload.get("partition") or not item.payload.get("zone")


def _located(item: OutboxItem, lookup: AccountLookup) -> OutboxItem:
    if not _needs_location(item):
        return item
    account = item.payload.get("account")
    details = lookup.found.get(str(account)) if account else None
    partition, zone = choose_location(details, item.payload.get("partition"), item.payload.get("zone"))
    return item.with_outcome(payload={**item.payload, "partition": partition, "zone": zone})


def _sigma_event(item: OutboxItem) -> SigmaEvent:
    p = item.payload
    return SigmaEvent(
        idempotency_key=item.idempotency_key,
        account=p.get("account") or UNKNOWN,
        partition=p["partition"],
        zone=p["zone"],
        code=p["code"],
        type=p["type"],
        host_name=p["host_name"],
        host_address=p["host_address"],
        occurred_at=datetime.fromisoformat(p["occurred_at"]),
        description=p["description"],
    )


def _apply(item: OutboxItem, outcome: Delivery, now: datetime, config: Config) -> OutboxItem:
    attempts = item.attempts + 1
    fields = {"host": item.subject, "type": item.kind, "key": item.idempotency_key, "attempts": attempts}
    if outcome.status == "sent":
        log.info("event sent", extra={"fields": fields})
        return item.with_outcome(status=outbox.SENT, attempts=attempts, http_status=outcome.http_status,
                                 last_error=None, next_attempt_at=None, updated_at=now, delivered_at=now)
    if outcome.status == "failed":
        log.warning("event refused by sigma: %s", outcome.error, extra={"fields": fields})
        return item.with_outcome(status=outbox.FAILED, attempts=attempts, http_status=outcome.http_status,
                                 last_error=outcome.error, next_attempt_at=None, updated_at=now)
    if attempts >= config.sigma.max_attempts:
        log.error("event dead after %d attempts: %s", attempts, outcome.error, extra={"fields": fields})
        return item.with_outcome(status=outbox.DEAD, attempts=attempts, http_status=outcome.http_status,
                                 last_error=outcome.error, next_attempt_at=None, updated_at=now)
    backoff = timedelta(seconds=config.sigma.retry_backoff_seconds * 2 ** (attempts - 1))
    wait = max(min(backoff, _MAX_BACKOFF), timedelta(seconds=outcome.retry_after_s or 0))
    log.warning("event still pending: %s", outcome.error, extra={"fields": fields})
    return item.with_outcome(status=outbox.PENDING, attempts=attempts, http_status=outcome.http_status,
                             last_error=outcome.error, next_attempt_at=now + wait, updated_at=now)
