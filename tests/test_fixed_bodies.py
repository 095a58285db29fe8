"""A Sigma event's body is fixed before its first attempt: every POST of one Idempotency-Key is the same.

Partition and zone missing from the host row come from Segware; they are stored with the event
before any request, so neither a retry nor a run after a kill locates the event again, whatever
Segware says by then. The account cache is off (TTL 0) so that a second location would see the
changed account.
"""

from __future__ import annotations

from typing import Any

from fakeapi import FakeApis
from inproc import InProcess
from jobkit import ACCOUNT, TOKEN, Netwatch, expire_leases
from sqlalchemy.engine import Engine

HOST = {"name": "cam-1", "address": "127.0.0.1", "account": "1234"}
MOVED_ZONES: dict[str, Any] = {**ACCOUNT, "partitions": [{"code": "07", "name": "Deposito"}],
                               "zones": [{"code": "099", "name": "Doca", "partition": "07"}]}


def _sections(url: str) -> dict[str, Any]:
    return {"thresholds": {"notify_initial": True}, "segware": {"base_url": url, "cache_ttl_seconds": 0},
            "sigma": {"base_url": url, "retry_backoff_seconds": 0}}


def _bodies(fake: FakeApis) -> list[Any]:
    return [r.body for r in fake.requests_to("POST", "/v1/events")]


def _keys(fake: FakeApis) -> set[str]:
    return {r.headers["idempotency-key"] for r in fake.requests_to("POST", "/v1/events")}


def test_a_retry_sends_the_stored_body_after_the_account_changed(nwi: InProcess, fake: FakeApis) -> None:
    nwi.write_config([HOST], **_sections(fake.url))
    fake.sigma_status, fake.sigma_retry_after = 503, "0"

    first = nwi.sweep()

    assert first.returncode == 1, first.stderr
    [pending] = nwi.outbox()
    assert (pending.status, pending.attempts) == ("pending", 1)
    assert (pending.payload["partition"], pending.payload["zone"]) == ("01", "003"), "located before the attempt"
    fake.accounts["1234"] = MOVED_ZONES
    fake.sigma_status = None

    second = nwi.sweep()

    assert second.returncode == 0, second.stderr
    assert [(i.status, i.attempts) for i in nwi.outbox()] == [("sent", 2)]
    bodies = _bodies(fake)
    assert len(bodies) >= 2 and len(_keys(fake)) == 1
    assert all(body == bodies[0] for body in bodies), "one Idempotency-Key, two bodies"
    assert (bodies[-1]["partition"], bodies[-1]["zone"]) == ("01", "003")
    assert nwi.outbox()[0].payload == bodies[0]


def test_a_run_killed_while_sigma_holds_the_first_post_sends_the_same_body_again(
    nw: Netwatch, engine: Engine
) -> None:
    """The issue's case: the next run must not locate the event again with the account's new zones."""
    with FakeApis(accounts={"1234": dict(ACCOUNT)}, token=TOKEN) as sigma:
        held = sigma.hold("POST", "/v1/events", from_request=1)
        nw.write_config([HOST], **_sections(sigma.url))
        running = nw.start("run", "ping-sweep")
        try:
            held.wait_arrived()
        finally:
            running.kill()
            running.wait(timeout=30)
        assert running.returncode == -9
        sigma.accounts["1234"] = MOVED_ZONES
        expire_leases(engine)
        held.release()

        after = nw.sweep()

        assert after.returncode == 0, after.stderr
        [key] = _keys(sigma)
        bodies = sigma.bodies_of(key)
        assert len(bodies) == 2
        assert bodies[0] == bodies[1], "one Idempotency-Key, two bodies"
        raw = sigma.raw_bodies_of(key)
        assert raw[0] == raw[1], "the same bytes, also when the first attempt's body was built in memory"
        assert (bodies[1]["partition"], bodies[1]["zone"]) == ("01", "003")
    assert [(i.status, i.attempts) for i in nw.outbox()] == [("sent", 1)]
