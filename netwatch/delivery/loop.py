"""What one delivery attempt means for an outbox item, the same for Sigma and every channel."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.outcome import Delivery
from netwatch.errors import ConfigError, NetwatchError
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag

log = logging.getLogger(__name__)

BATCH = 10_000
DELIVERY_LEASE = "outbox-delivery:0/1"
_MAX_WAIT_S = timedelta(days=1).total_seconds()


@contextmanager
def delivery_turn(engine: Engine, holder: str, lease_seconds: float,
                  clock: Callable[[], datetime]) -> Iterator[Lease | None]:
    """One process at a time delivers from the outbox, whatever job it runs, so no message is sent twice.

    Yields the delivery lease (hand it to `deliver_items`, which stops sending once it is no longer
    valid), or None when another run is delivering: this run's messages then go out with a later run.
    """
    lease = Lease(engine, DELIVERY_LEASE, holder, lease_seconds, clock)
    if not lease.try_acquire():
        log.info("another run is delivering from the outbox; this run leaves its messages to a later run")
        yield None
        return
    lease.keep_renewed()
    try:
        yield lease
    finally:
        lease.release()


@dataclass(frozen=True)
class RetryRule:
    max_attempts: int
    backoff_seconds: float


@dataclass(frozen=True)
class DeliveryReport:
    """What one run delivered; `problem` is what kept part of the outbox from going out (78 or 69)."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    dead: int = 0
    problem: NetwatchError | None = None

    @property
    def trouble(self) -> bool:
        """True when any delivery attempt of this run did not end as sent."""
        return bool(self.failed or self.pending or self.dead)

    def counts(self) -> dict[str, int]:
        """The summary-line counts of a run's deliveries."""
        return {"sent": self.sent, "delivery_failed": self.failed, "pending": self.pending, "dead": self.dead}

    @classmethod
    def of(cls, items: Sequence[OutboxItem]) -> DeliveryReport:
        statuses = [item.status for item in items]
        return cls(
            sent=statuses.count(outbox.SENT),
            failed=statuses.count(outbox.FAILED),
            pending=statuses.count(outbox.PENDING),
            dead=statuses.count(outbox.DEAD),
        )

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.sent + other.sent, self.failed + other.failed, self.pending + other.pending,
                              self.dead + other.dead, _graver(self.problem, other.problem))


def _graver(first: NetwatchError | None, second: NetwatchError | None) -> NetwatchError | None:
    """A refused credential (fix the config) outranks an unavailable service (wait); else the first."""
    if first is None or (isinstance(second, ConfigError) and not isinstance(first, ConfigError)):
        return second
    return first


def apply_outcome(item: OutboxItem, outcome: Delivery, now: datetime, rule: RetryRule) -> OutboxItem:
    """The item after one attempt: sent, failed, pending with its next attempt time, or dead."""
    attempts = item.attempts + 1
    fields = {"channel": item.channel, "subject": item.subject, "kind": item.kind, "key": item.idempotency_key,
              "attempts": attempts}
    common = {"attempts": attempts, "http_status": outcome.http_status, "updated_at": now}
    if outcome.status == "sent":
        log.info("%s delivered", item.kind, extra={"fields": fields})
        return item.with_outcome(status=outbox.SENT, last_error=None, next_attempt_at=None, delivered_at=now,
                                 **common)
    if outcome.status == "failed":
        log.warning("%s refused by %s: %s", item.kind, item.channel, outcome.error, extra={"fields": fields})
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


def deliver_items(
    engine: Engine,
    items: Sequence[OutboxItem],
    send: Callable[[OutboxItem], Delivery],
    rule: RetryRule,
    now: datetime,
    stop: StopFlag,
    settled: Sequence[OutboxItem] = (),
    turn: Lease | None = None,
) -> DeliveryReport:
    """Sends `items` in order and stores every outcome (and the already `settled` ones) in one batch.

    A transient failure (pending) ends the loop: the sink is struggling and the rest waits for the
    next run. Outcomes already obtained are stored even when SIGTERM or a rejected token ends the
    loop, so a delivered message is not sent again (and if it were, its idempotency key says so); a
    rejected token becomes the report's `problem`.
    The report counts the stored outcomes only: one discarded because a newer message superseded
    the item meanwhile is no delivery trouble. With `turn` (the delivery lease), sending stops once
    the lease may be lapsing, before another process could take it over and send the same items.
    """
    if not items and not settled:
        return DeliveryReport()
    done = list(settled)
    problem: ConfigError | None = None
    try:
        for item in items:
            stop.check()
            if turn is not None and not turn.valid():
                log.warning("the outbox delivery lease is no longer ours; the rest waits for a later run")
                break
            try:
                outcome = send(item)
            except ConfigError as exc:
                # The sink refused our credentials: the rest of its queue waits, other sinks go on.
                log.warning("delivery to %s stopped: it refused our credentials; the rest waits", item.channel)
                problem = exc
                break
            done.append(apply_outcome(item, outcome, now, rule))
            if outcome.status == "pending":
                break
    finally:
        with engine.begin() as conn:
            stored = outbox.record_outcomes(conn, done)
    if len(stored) < len(done):
        log.info("%d delivery outcomes dropped: superseded meanwhile by newer messages", len(done) - len(stored))
    return replace(DeliveryReport.of(stored), problem=problem)
