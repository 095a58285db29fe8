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
from netwatch.jobs.delivery import BATCH, DeliveryReport, RetryRule, deliver_items
from netwatch.jobs.enrichment import AccountLookup, look_up_accounts

CHANNEL = "sigma"


def deliver_events(engine: Engine, deps: Deps, config: Config, now: datetime) -> DeliveryReport:
    """Sends due events oldest first, after filling in missing partition/zone from Segware.

    An event whose account details could not be read stays pending (this attempt counts).
    """
    sigma = deps.sigma
    if sigma is None:
        return DeliveryReport()
    rule = RetryRule(config.sigma.max_attempts, config.sigma.retry_backoff_seconds)
    with engine.begin() as conn:
        items = outbox.due_items(conn, CHANNEL, now, BATCH)
    if not items:
        return DeliveryReport()
    accounts = {str(i.payload["account"]) for i in items if _needs_location(i) and i.payload.get("account")}
    lookup = look_up_accounts(engine, deps.segware, accounts, now, config.segware.cache_ttl_seconds, deps.stop)
    waiting = {i.id for i in items if _needs_location(i) and i.payload.get("account") in lookup.unavailable}
    # Not an attempt: Sigma was never asked, so a long Segware outage must not make events dead.
    settled = [i.with_outcome(last_error=f"enrichment: {lookup.error}", updated_at=now)
               for i in items if i.id in waiting]
    ready = [_located(i, lookup) for i in items if i.id not in waiting]
    return deliver_items(engine, ready, lambda item: sigma.send_event(_sigma_event(item)), rule, now, deps.stop,
                         settled)


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
