"""Only a request that reached the receiver, or failed on its way there, spends a delivery attempt.

A request the run's deadline never let out (`unsent`) leaves the item due with its attempts as
they were, and ends the delivery loop: the rest waits for the next run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import log_lines
from sqlalchemy.engine import Engine

from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import deliver_items
from netwatch.delivery.retry import RetryRule, apply_outcome
from netwatch.outcome import Delivery
from netwatch.running.stopflag import StopFlag

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ONE_ATTEMPT = RetryRule(max_attempts=1, backoff_seconds=60)


def _item(attempts: int = 0, next_attempt_at: datetime | None = None, key: str = "k-1",
          item_id: int | None = 1) -> OutboxItem:
    return OutboxItem(id=item_id, channel="sigma", idempotency_key=key, kind="HOST_OFFLINE", subject="lo-1",
                      payload={"x": 1}, status=outbox.PENDING, attempts=attempts, http_status=None, last_error=None,
                      next_attempt_at=next_attempt_at, created_at=T0, updated_at=T0, delivered_at=None, run_id=1)


@pytest.mark.parametrize("attempts", [0, 3, 9])
@pytest.mark.parametrize("due", [None, T0 - timedelta(minutes=5)])
def test_unsent_spends_no_attempt_and_stays_due(attempts: int, due: datetime | None) -> None:
    item = _item(attempts, due)
    after = apply_outcome(item, Delivery("unsent", None, "not sent, the run's deadline was used up"), T0,
                          RetryRule(max_attempts=attempts + 1, backoff_seconds=60))
    assert (after.status, after.attempts, after.next_attempt_at, after.http_status) == (
        outbox.PENDING, attempts, due, None)
    assert after.last_error == "not sent, the run's deadline was used up"
    assert after.updated_at == T0


def test_a_request_that_went_out_spends_the_last_attempt() -> None:
    """The contrast: the same item after a transient failure on the wire is dead."""
    after = apply_outcome(_item(), Delivery("pending", 503, "HTTP 503"), T0, ONE_ATTEMPT)
    assert (after.status, after.attempts) == (outbox.DEAD, 1)


def test_the_loop_stops_at_an_unsent_item_and_stores_it_unspent(engine: Engine) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, [_item(key=f"k-{n}", item_id=None) for n in range(3)])
        items = outbox.due_items(conn, "sigma", T0, 10)
    asked: list[str] = []

    def sink(item: OutboxItem) -> Delivery:
        asked.append(item.idempotency_key)
        return Delivery("sent", 201, None) if item.idempotency_key == "k-0" else Delivery("unsent", None, "late")

    report = deliver_items(engine, items, sink, ONE_ATTEMPT, T0, StopFlag(), lambda text: text)

    assert asked == ["k-0", "k-1"], "nothing is tried after an unsent item"
    with engine.begin() as conn:
        stored = {i.idempotency_key: (i.status, i.attempts) for i in outbox.due_items(conn, "sigma", T0, 10)}
    assert stored == {"k-1": ("pending", 0), "k-2": ("pending", 0)}
    assert (report.sent, report.pending, report.dead) == (1, 1, 0)


def test_an_event_the_deadline_never_let_out_stays_pending_not_dead(nwi: InProcess, fake: FakeApis) -> None:
    """The issue's case: a hanging Segware lookup for one event uses up the run's deadline."""
    hosts = [{"name": "needs-segware", "address": "127.0.0.1", "account": "1234"},
             {"name": "located", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "001"}]
    apis = {"segware": {"base_url": fake.url}, "sigma": {"base_url": fake.url, "max_attempts": 1}}
    # 3 s: the lookup goes out (a request needs 1 s left), then hangs to the end of the deadline.
    nwi.write_config(hosts, thresholds={"notify_initial": True}, run={"deadline_seconds": 3}, **apis)
    fake.accounts_delay_s = 5  # longer than the whole run may take

    done = nwi.sweep()

    assert done.returncode == 69, done.stderr  # the held-back event: Segware unavailable
    assert fake.requests_to("POST", "/v1/events") == [], "Sigma was never asked"
    assert [(i.subject, i.status, i.attempts) for i in nwi.outbox()] == [
        ("needs-segware", "pending", 0), ("located", "pending", 0)]
    [located] = [i for i in nwi.outbox() if i.subject == "located"]
    assert located.last_error == "sigma API POST /v1/events: not sent, the run's deadline was used up"
    assert any(line.startswith("warning: HOST_ONLINE not sent, no attempt spent") for line in log_lines(done.stderr))

    fake.accounts_delay_s = 0
    nwi.write_config(hosts, thresholds={"notify_initial": True}, **apis)  # the default deadline again
    again = nwi.sweep()

    assert again.returncode == 0, again.stderr
    assert [(i.subject, i.status, i.attempts) for i in nwi.outbox()] == [
        ("needs-segware", "sent", 1), ("located", "sent", 1)]
