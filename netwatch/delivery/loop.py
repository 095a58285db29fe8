"""The outbox loop: one process delivers at a time, sends due items in order, stores outcomes as they come."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.report import DeliveryReport
from netwatch.delivery.retry import RetryRule, apply_outcome
from netwatch.deps import STORE_EVERY_S
from netwatch.errors import ConfigError, StoppedDuringRequest
from netwatch.outcome import Delivery
from netwatch.running.lease import Lease
from netwatch.running.stopflag import StopFlag

log = logging.getLogger(__name__)

BATCH = 10_000
DELIVERY_LEASE = "outbox-delivery:0/1"


@contextmanager
def delivery_turn(engine: Engine, holder: str, lease_seconds: float,
                  server_now: Callable[[Connection], datetime]) -> Iterator[Lease | None]:
    """One process at a time delivers from the outbox, whatever job it runs, so no message is sent twice.

    Yields the delivery lease (hand it to `deliver_items`, which stops sending once it is no longer
    valid), or None when another run is delivering: this run's messages then go out with a later run.
    """
    lease = Lease(engine, DELIVERY_LEASE, holder, lease_seconds, server_now)
    if not lease.try_acquire():
        log.info("another run is delivering from the outbox; this run leaves its messages to a later run")
        yield None
        return
    lease.keep_renewed()
    try:
        yield lease
    finally:
        lease.release()


class _Recorder:
    """Stores outcomes in the background every `every_s` (and at `close`), each batch in one transaction."""

    def __init__(self, engine: Engine, every_s: float, mask: Callable[[str], str]) -> None:
        self._engine = engine
        self._mask = mask
        self._every_s = every_s
        self._lock = threading.Lock()
        self._waiting: list[OutboxItem] = []
        self._stored: list[OutboxItem] = []
        self.added = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="outbox-outcomes", daemon=True)
        self._thread.start()

    def add(self, item: OutboxItem) -> None:
        if item.last_error:
            item = item.with_outcome(last_error=self._mask(item.last_error))
        with self._lock:
            self._waiting.append(item)
            self.added += 1

    def _loop(self) -> None:
        while not self._done.wait(self._every_s):
            try:
                self._store()
            except SQLAlchemyError as exc:
                # Kept for the next try; the last store (in close) reports a lasting problem.
                log.warning("could not store delivery outcomes yet: %s", type(exc).__name__)

    def _store(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        if not batch:
            return
        try:
            with self._engine.begin() as conn:
                stored = outbox.record_outcomes(conn, batch)
        except BaseException:
            with self._lock:
                self._waiting[:0] = batch
            raise
        with self._lock:
            self._stored.extend(stored)

    def close(self) -> list[OutboxItem]:
        """Stops the background stores, stores what is left, returns every item stored."""
        self._done.set()
        self._thread.join()
        self._store()
        return self._stored


def deliver_items(
    engine: Engine,
    items: Sequence[OutboxItem],
    send: Callable[[OutboxItem], Delivery],
    rule: RetryRule,
    now: datetime,
    stop: StopFlag,
    mask: Callable[[str], str],
    settled: Sequence[OutboxItem] = (),
    turn: Lease | None = None,
    store_every_s: float = STORE_EVERY_S,
) -> DeliveryReport:
    """Sends `items` in order; their outcomes (and the already `settled` ones) are stored as they come.

    Every stored error text goes through `mask` first (secrets an API may echo never reach a row).

    A transient failure (pending) or a request that could not go out (unsent: the deadline is used
    up) ends the loop: the rest waits for the next run. Outcomes already obtained are stored even
    when SIGTERM or a rejected token ends the loop, so a delivered message is not sent again (and
    if it were, its idempotency key says so); so is the attempt a stop cut short once its request
    went out (pending, "stopped during the request"). A rejected token becomes the report's `problem`.
    The report counts the stored outcomes only: one discarded because a newer message superseded
    the item meanwhile is no delivery trouble. With `turn` (the delivery lease), sending stops once
    the lease may be lapsing, before another process could take it over and send the same items.
    """
    if not items and not settled:
        return DeliveryReport()
    recorder = _Recorder(engine, store_every_s, mask)
    for item in settled:
        recorder.add(item)
    problem: ConfigError | None = None
    try:
        for item in items:
            stop.check()
            if turn is not None and not turn.valid():
                log.warning("the outbox delivery lease is no longer ours; the rest waits for a later run")
                break
            try:
                outcome = send(item)
            except StoppedDuringRequest as exc:
                # The request went out: the attempt counts, stored below, before the stop ends the run.
                stopped = Delivery("pending", None, f"{exc.request}: stopped during the request")
                recorder.add(apply_outcome(item, stopped, now, rule))
                raise
            except ConfigError as exc:
                # The sink refused our credentials: the rest of its queue waits, other sinks go on.
                log.warning("delivery to %s stopped: it refused our credentials; the rest waits", item.channel)
                problem = exc
                break
            recorder.add(apply_outcome(item, outcome, now, rule))
            if outcome.status in ("pending", "unsent"):
                break
    finally:
        stored = recorder.close()
    if recorder.added > len(stored):
        log.info("%d delivery outcomes dropped: superseded meanwhile by newer messages", recorder.added - len(stored))
    return replace(DeliveryReport.of(stored), problem=problem)
