"""Delivers due host events from the outbox to Sigma (enriched first) and stores the outcomes in one batch."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine

from netwatch.clients.sigma import SigmaEvent
from netwatch.config import Config
from netwatch.core.location import UNKNOWN, choose_location
from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import BATCH, DeliveryReport, RetryRule, deliver_items
from netwatch.deps import Deps
from netwatch.enrichment.accounts import AccountLookup, look_up_accounts
from netwatch.errors import ServiceUnavailable
from netwatch.running.lease import Lease

log = logging.getLogger(__name__)

CHANNEL = "sigma"


def deliver_events(engine: Engine, deps: Deps, config: Config, now: datetime,
                   turn: Lease | None = None) -> DeliveryReport:
    """Sends due events oldest first, after filling in missing partition/zone from Segware.

    An event whose account details cannot be read now is held back without spending an attempt
    (Sigma was never asked, so a long Segware outage must not make events dead); the others go out.
    The report's problem is then a rejected Segware token (ApiAuthError, exit 78) or the held-back
    events (ServiceUnavailable, exit 69); every outcome is stored either way.
    """
    sigma = deps.sigma
    if sigma is None:
        return DeliveryReport()
    rule = RetryRule(config.sigma.max_attempts, config.sigma.retry_backoff_seconds)
    with engine.begin() as conn:
        items = outbox.due_items(conn, CHANNEL, now, BATCH)
    if not items:
        return DeliveryReport()
    wanted = {i.id: account for i in items if _needs_location(i) and (account := _account(i))}
    lookup = look_up_accounts(engine, deps.segware, set(wanted.values()), now, config.segware.cache_ttl_seconds,
                              deps.stop)
    waiting = {item_id for item_id, account in wanted.items() if account in lookup.unavailable}
    held = [i.with_outcome(last_error=f"enrichment: {lookup.error}", updated_at=now) for i in items if i.id in waiting]
    ready = [_located(i, lookup) for i in items if i.id not in waiting]
    report = deliver_items(engine, ready, lambda item: sigma.send_event(_sigma_event(item)), rule, now, deps.stop,
                           held, turn=turn)
    if lookup.refused is not None:
        return report + DeliveryReport(problem=lookup.refused)
    if held:
        problem = ServiceUnavailable(
            f"{len(held)} Sigma event(s) held back until their account details can be read: {lookup.error}")
        # Logged here too: a graver problem elsewhere (a refused token) may be the one the run ends with.
        log.warning("%s", problem.message)
        return report + DeliveryReport(problem=problem)
    return report


def _account(item: OutboxItem) -> str | None:
    account = item.payload.get("account")
    return str(account) if account else None


def _needs_location(item: OutboxItem) -> bool:
    return not item.payload.get("partition") or not item.payload.get("zone")


def _located(item: OutboxItem, lookup: AccountLookup) -> OutboxItem:
    if not _needs_location(item):
        return item
    account = _account(item)
    details = lookup.found.get(account) if account else None
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
