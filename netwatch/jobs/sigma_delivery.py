"""Delivers due host events from the outbox to Sigma (enriched first) and stores the outcomes in one batch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from netwatch.clients.sigma import SigmaEvent
from netwatch.config import Config
from netwatch.core.location import UNKNOWN, choose_location
from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.deps import Deps
from netwatch.jobs.delivery import BATCH, DeliveryReport, RetryRule, apply_outcome
from netwatch.jobs.enrichment import AccountLookup, look_up_accounts
from netwatch.outcome import Delivery

CHANNEL = "sigma"


def deliver_events(engine: Engine, deps: Deps, config: Config, now: datetime) -> DeliveryReport:
    """Sends due events oldest first; on a transient Sigma failure the rest waits for the next run.

    Outcomes already obtained are stored even when SIGTERM or a rejected token ends the loop, so a
    sent event is not sent again (and if it were, its Idempotency-Key makes Sigma answer 409).
    """
    if deps.sigma is None:
        return DeliveryReport()
    rule = RetryRule(config.sigma.max_attempts, config.sigma.retry_backoff_seconds)
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
                done.append(apply_outcome(item, outcome, now, rule))
                continue
            located = _located(item, lookup)
            outcome = deps.sigma.send_event(_sigma_event(located))
            done.append(apply_outcome(located, outcome, now, rule))
            if outcome.status == "pending":
                break
    finally:
        with engine.begin() as conn:
            outbox.record_outcomes(conn, done)
    return DeliveryReport.of(done)


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
