"""When an outbox item is tried again after a transient failure: apply_outcome and RetryRule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.delivery.loop import RetryRule, apply_outcome, deliver_items
from netwatch.outcome import Delivery
from netwatch.running.stopflag import StopFlag

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
UNAVAILABLE = Delivery("pending", 503, "sigma: HTTP 503 after 3 tries")


def _item(attempts: int = 0, key: str = "nw-backoff-1") -> OutboxItem:
    return OutboxItem(
        id=None, channel="sigma", idempotency_key=key, kind="HOST_OFFLINE", subject="lo-1",
        payload={"type": "HOST_OFFLINE"}, status=outbox.PENDING, attempts=attempts, http_status=None,
        last_error=None, next_attempt_at=None, created_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1), delivered_at=None, run_id=None,
    )


def _wait(after: OutboxItem) -> timedelta:
    assert after.next_attempt_at is not None
    return after.next_attempt_at - NOW


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 60), (2, 120), (3, 240)])
def test_each_transient_failure_doubles_the_wait(attempt: int, seconds: int) -> None:
    after = apply_outcome(_item(attempts=attempt - 1), UNAVAILABLE, NOW, RetryRule(10, 60))
    assert (after.status, after.attempts, after.http_status) == ("pending", attempt, 503)
    assert after.last_error == UNAVAILABLE.error
    assert after.updated_at == NOW
    assert _wait(after) == timedelta(seconds=seconds)


def test_the_wait_stops_growing_at_one_day() -> None:
    rule = RetryRule(40, 60)
    below = apply_outcome(_item(attempts=10), UNAVAILABLE, NOW, rule)  # 60 s * 2**10 = 17 h 4 min
    first_capped = apply_outcome(_item(attempts=11), UNAVAILABLE, NOW, rule)  # 60 s * 2**11 = 34 h
    late = apply_outcome(_item(attempts=30), UNAVAILABLE, NOW, rule)
    assert _wait(below) == timedelta(seconds=60 * 2**10)
    assert _wait(first_capped) == DAY
    assert _wait(late) == DAY


def test_a_retry_after_longer_than_the_backoff_wins() -> None:
    throttled = Delivery("pending", 429, "sigma: HTTP 429", retry_after_s=900)
    after = apply_outcome(_item(attempts=0), throttled, NOW, RetryRule(10, 60))
    assert _wait(after) == timedelta(seconds=900)
    assert after.http_status == 429


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    throttled = Delivery("pending", 429, "sigma: HTTP 429", retry_after_s=5)
    after = apply_outcome(_item(attempts=2), throttled, NOW, RetryRule(10, 60))
    assert _wait(after) == timedelta(seconds=240)


def test_a_retry_after_longer_than_the_cap_is_capped_too() -> None:
    throttled = Delivery("pending", 429, "sigma: HTTP 429", retry_after_s=2 * 86400)
    after = apply_outcome(_item(attempts=3), throttled, NOW, RetryRule(40, 60))
    assert _wait(after) == DAY


def test_backoff_zero_means_due_at_once() -> None:
    after = apply_outcome(_item(attempts=4), UNAVAILABLE, NOW, RetryRule(10, 0))
    assert after.status == outbox.PENDING
    assert after.next_attempt_at == NOW


@pytest.mark.parametrize(("attempts_before", "status"), [(0, "pending"), (1, "pending"), (2, "dead")])
def test_reaching_max_attempts_makes_the_item_dead(attempts_before: int, status: str) -> None:
    after = apply_outcome(_item(attempts=attempts_before), UNAVAILABLE, NOW, RetryRule(3, 60))
    assert (after.status, after.attempts) == (status, attempts_before + 1)
    assert after.last_error == UNAVAILABLE.error
    assert (after.next_attempt_at is None) == (status == "dead")


def test_one_allowed_attempt_makes_the_first_failure_dead() -> None:
    after = apply_outcome(_item(), UNAVAILABLE, NOW, RetryRule(1, 60))
    assert (after.status, after.attempts, after.next_attempt_at) == ("dead", 1, None)


def test_sent_and_refused_never_get_a_next_attempt() -> None:
    rule = RetryRule(3, 60)
    sent = apply_outcome(_item(attempts=2), Delivery("sent", 201, None), NOW, rule)
    refused = apply_outcome(_item(attempts=2), Delivery("failed", 400, "sigma: HTTP 400"), NOW, rule)
    assert (sent.status, sent.next_attempt_at, sent.delivered_at, sent.attempts) == ("sent", None, NOW, 3)
    assert (refused.status, refused.next_attempt_at, refused.delivered_at) == ("failed", None, None)


@pytest.mark.parametrize(("backoff_s", "due_after"), [(0, timedelta(0)), (60, timedelta(seconds=60))])
def test_stored_next_attempt_is_due_exactly_then(engine: Engine, backoff_s: float, due_after: timedelta) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, [_item()])
        [queued] = outbox.due_items(conn, "sigma", NOW, 10)
    report = deliver_items(engine, [queued], lambda _item: UNAVAILABLE, RetryRule(10, backoff_s), NOW, StopFlag(), str)
    assert report.pending == 1
    with engine.begin() as conn:
        too_early = outbox.due_items(conn, "sigma", NOW + due_after - timedelta(milliseconds=1), 10)
        on_time = outbox.due_items(conn, "sigma", NOW + due_after, 10)
    assert too_early == []
    assert [(i.attempts, i.next_attempt_at) for i in on_time] == [(1, NOW + due_after)]


# Found while writing these: apply_outcome builds the uncapped backoff first, and adds an
# unbounded Retry-After to `now`. Both overflow, so a poison item fails every run.

def test_many_attempts_stay_capped_at_one_day() -> None:
    after = apply_outcome(_item(attempts=41), UNAVAILABLE, NOW, RetryRule(100, 60))
    assert _wait(after) == DAY


def test_an_absurd_retry_after_does_not_crash_the_run() -> None:
    throttled = Delivery("pending", 429, "sigma: HTTP 429", retry_after_s=1e12)
    after = apply_outcome(_item(), throttled, NOW, RetryRule(10, 60))
    assert after.status == outbox.PENDING
    assert _wait(after) == DAY
