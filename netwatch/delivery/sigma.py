"""Delivers due host events from the outbox to Sigma: locate, store the final body, then send it.

An event's body is final before its first attempt: partition and zone missing from the host row
are filled in from Segware and stored with the event (one statement for the batch) before any
request goes out, so every attempt of one Idempotency-Key sends the same bytes, also after a run
was killed mid-send and the account data changed meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime

from netwatch.clients.sigma import SigmaEvent
from netwatch.config import Config
from netwatch.core.location import choose_location
from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import BATCH, deliver_items
from netwatch.delivery.report import DeliveryReport
from netwatch.delivery.retry import RetryRule
from netwatch.deps import Deps
from netwatch.enrichment.accounts import AccountLookup, look_up_accounts
from netwatch.errors import ServiceUnavailable
from netwatch.running.lease import Lease

log = logging.getLogger(__name__)

CHANNEL = "sigma"


def deliver_events(deps: Deps, config: Config, now: datetime,
                   turn: Lease | None = None) -> DeliveryReport:
    """Sends due events oldest first, after locating those whose host row lacks partition or zone.

    An event whose account details cannot be read now is held back without spending an attempt
    (Sigma was never asked, so a long Segware outage must not make events dead); the others go out.
    The report's problem is then a rejected Segware token (ApiAuthError, exit 78) or the held-back
    events (ServiceUnavailable, exit 69); every outcome is stored either way.
    """
    sigma = deps.sigma
    if sigma is None:
        return DeliveryReport()
    rule = RetryRule(config.sigma.max_attempts, config.sigma.retry_backoff_seconds)
    with deps.engine.begin() as conn:
        items = outbox.due_items(conn, CHANNEL, now, BATCH)
    if not items:
        return DeliveryReport()
    events, malformed = _parse(items)
    wanted = {item_id: event.account for item_id, event in events.items() if not event.located and event.account}
    lookup = look_up_accounts(deps.engine, deps.segware, set(wanted.values()), now, config.segware.cache_ttl_seconds,
                              deps.stop)
    waiting = {item_id for item_id, account in wanted.items() if account in lookup.unavailable}
    held = [i.with_outcome(last_error=f"enrichment: {lookup.error}", updated_at=now) for i in items if i.id in waiting]
    ready: list[OutboxItem] = []
    located: list[OutboxItem] = []
    for item in items:
        event = events.get(item.id)
        if event is None or item.id in waiting:
            continue
        if not event.located:
            item = _located(item, event, lookup, now)
            located.append(item)
        ready.append(item)
    if located:
        with deps.engine.begin() as conn:
            outbox.store_payloads(conn, located)
    settled = held + [_malformed(i, now) for i in malformed]
    report = deliver_items(deps.engine, ready, lambda item: sigma.send(item.payload, item.idempotency_key), rule, now,
                           deps.stop, deps.redactor.mask, settled, turn=turn, store_every_s=deps.store_every_s)
    if lookup.refused is not None:
        return report + DeliveryReport(problem=lookup.refused)
    if held:
        problem = ServiceUnavailable(
            f"{len(held)} Sigma event(s) held back until their account details can be read: {lookup.error}")
        # Logged here too: a graver problem elsewhere (a refused token) may be the one the run ends with.
        log.warning("%s", problem.message)
        return report + DeliveryReport(problem=problem)
    return report


def _parse(items: list[OutboxItem]) -> tuple[dict[int | None, SigmaEvent], list[OutboxItem]]:
    events: dict[int | None, SigmaEvent] = {}
    malformed: list[OutboxItem] = []
    for item in items:
        try:
            events[item.id] = SigmaEvent.from_body(item.payload)
        except (KeyError, TypeError, ValueError):
            malformed.append(item)
    return events, malformed


def _malformed(item: OutboxItem, now: datetime) -> OutboxItem:
    """A stored body that is no Sigma event can never be sent: failed, without a request."""
    return item.with_outcome(status=outbox.FAILED, last_error="malformed outbox payload: not a Sigma event body",
                             updated_at=now)


def _located(item: OutboxItem, event: SigmaEvent, lookup: AccountLookup, now: datetime) -> OutboxItem:
    details = lookup.found.get(event.account) if event.account else None
    partition, zone = choose_location(details, event.partition, event.zone)
    return item.with_outcome(payload=event.with_location(partition, zone).body(), updated_at=now)
