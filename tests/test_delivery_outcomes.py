"""Delivery outcomes are stored as they happen (within `store_every_s`), in statements that do not grow with items.

A run killed during delivery keeps what it had sent (stored within a second), so the next run
does not send it again; each store is one transaction of a fixed number of statements.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fakeapi import FakeApis, api_client
from jobkit import TOKEN, Netwatch, expire_leases, wait_until
from sqlalchemy.engine import Engine

from netwatch.clients.sigma import SigmaClient
from netwatch.db import outbox
from netwatch.db.engine import count_statements
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import deliver_items
from netwatch.delivery.retry import RetryRule
from netwatch.outcome import Delivery
from netwatch.running.stopflag import StopFlag

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RULE = RetryRule(max_attempts=10, backoff_seconds=0)


def _queue(engine: Engine, count: int, prefix: str) -> list[OutboxItem]:
    items = [OutboxItem(id=None, channel="sigma", idempotency_key=f"{prefix}-{n:04d}", kind="HOST_OFFLINE",
                        subject=f"h{n}", payload={"n": n}, status=outbox.PENDING, attempts=0, http_status=None,
                        last_error=None, next_attempt_at=None, created_at=T0, updated_at=T0, delivered_at=None,
                        run_id=None) for n in range(count)]
    with engine.begin() as conn:
        outbox.enqueue(conn, items)
        return [i for i in outbox.due_items(conn, "sigma", T0, 10_000) if i.idempotency_key.startswith(prefix)]


def _statuses(engine: Engine, prefix: str) -> list[str]:
    with engine.begin() as conn:
        rows = conn.execute(outbox.outbox.select().where(outbox.outbox.c.idempotency_key.startswith(prefix))
                            .order_by(outbox.outbox.c.id)).mappings()
        return [row["status"] for row in rows]


def test_outcomes_are_stored_while_the_delivery_goes_on(engine: Engine) -> None:
    """Each send waits until every earlier outcome is in the database: only background stores get there."""
    items = _queue(engine, 4, "bg")

    def sink(item: OutboxItem) -> Delivery:
        position = items.index(item)
        wait_until(lambda: _statuses(engine, "bg")[:position] == ["sent"] * position,
                   f"the outcomes before {item.idempotency_key} stored", timeout=10)
        return Delivery("sent", 201, None)

    report = deliver_items(engine, items, sink, RULE, T0, StopFlag(), lambda text: text, store_every_s=0.05)

    assert report.sent == 4
    assert _statuses(engine, "bg") == ["sent"] * 4


def _statements_to_deliver(engine: Engine, sigma: SigmaClient, count: int) -> int:
    items = _queue(engine, count, f"n{count}")
    with count_statements(engine) as counter:
        # One store at the end whatever the machine's speed: background stores come every second
        # of delivery, so with the default the count would depend on time, never on the items.
        report = deliver_items(engine, items, lambda item: sigma.send(item.payload, item.idempotency_key), RULE,
                               T0, StopFlag(), lambda text: text, store_every_s=3600)
    assert report.sent == count
    return counter.value


def test_statements_of_a_delivery_do_not_grow_with_its_items(engine: Engine, fake: FakeApis) -> None:
    sigma = SigmaClient(api_client(fake.url, token=TOKEN))
    few = _statements_to_deliver(engine, sigma, 50)
    many = _statements_to_deliver(engine, sigma, 500)
    assert few == many <= 3, (few, many)
    assert len(fake.sigma_events()) == 550


def test_a_run_killed_during_delivery_keeps_what_it_sent(nw: Netwatch, engine: Engine) -> None:
    """The issue's case: killed while Sigma holds the third POST, after two were sent."""
    hosts = [{"name": f"lo-{n}", "address": f"127.0.0.{n}", "account": "1234", "partition": "01", "zone": "001"}
             for n in range(1, 5)]
    with FakeApis(token=TOKEN) as sigma:
        held = sigma.hold("POST", "/v1/events", from_request=3)
        nw.write_config(hosts, thresholds={"notify_initial": True},
                        sigma={"base_url": sigma.url, "retry_backoff_seconds": 0})
        running = nw.start("run", "ping-sweep")
        try:
            held.wait_arrived()
            wait_until(lambda: [i.status for i in nw.outbox()][:2] == ["sent", "sent"],
                       "the two delivered events stored as sent while the run still delivers")
        finally:
            running.kill()
            running.wait(timeout=30)
        assert running.returncode == -9
        keys = [i.idempotency_key for i in nw.outbox()]
        expire_leases(engine)
        held.release()

        after = nw.sweep()

        assert after.returncode == 0, after.stderr
        assert sigma.posts_per_key() == {keys[0]: 1, keys[1]: 1, keys[2]: 2, keys[3]: 1}, (
            "only the event whose answer the kill cut off goes out twice (and Sigma answers 409)")
    assert [(i.subject, i.status) for i in nw.outbox()] == [(f"lo-{n}", "sent") for n in range(1, 5)]
