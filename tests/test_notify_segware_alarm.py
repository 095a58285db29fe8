"""The segware_alarm channel and SegwareClient.post_alarm against the loopback FakeApis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fakeapi import FakeApis, FakeTime, api_client

from netwatch.clients.http import ApiAuthError
from netwatch.clients.segware import Alarm, SegwareClient
from netwatch.notify.message import Message
from netwatch.notify.segware_alarm import SegwareAlarmChannel
from netwatch.outcome import Delivery

KEY = "alert:1234/CUC-77/E130:raised:2026-11-22T10:00:00Z"

MESSAGE = Message(
    kind="alert_raised",
    subject="1234/CUC-77/E130",
    title="E130 burst on account 1234",
    body="12 events of E130 in 10 minutes",
    occurred_at=datetime(2026, 11, 22, 7, 0, tzinfo=timezone(timedelta(hours=-3))),
    recovery=False,
    account="1234",
    partition="01",
    zone="003",
    code="E130",
    data={"count": 12},
)

CONTRACT_BODY: dict[str, Any] = {
    "account": "1234",
    "partition": "01",
    "zone": "003",
    "code": "X900",
    "description": "E130 burst on account 1234",
    "occurredAt": "2026-11-22T10:00:00Z",
}


def channel(fake: FakeApis, *, token: str | None = None, clock: FakeTime | None = None) -> SegwareAlarmChannel:
    client = SegwareClient(api_client(fake.url, name="segware", token=token, fake_time=clock))
    return SegwareAlarmChannel(client, code="X900")


def test_alarm_is_posted_with_the_contract_body_and_key() -> None:
    with FakeApis(token="s3cret") as fake:
        sink = channel(fake, token="s3cret")
        assert sink.name == "segware_alarm"
        assert sink.send(MESSAGE, KEY) == Delivery("sent", 201, None)
        assert fake.alarms() == [CONTRACT_BODY]
        (request,) = fake.requests_to("POST", "/v1/alarms")
        assert request.headers["idempotency-key"] == KEY
        assert request.headers["content-type"] == "application/json"


def test_a_repeated_key_is_already_delivered() -> None:
    with FakeApis() as fake:
        sink = channel(fake)
        assert sink.send(MESSAGE, KEY).status == "sent"
        assert sink.send(MESSAGE, KEY) == Delivery("sent", 409, None)
        assert fake.alarms() == [CONTRACT_BODY]


def test_missing_location_becomes_unknown() -> None:
    with FakeApis() as fake:
        host_message = Message(
            kind="host_offline",
            subject="router-loja-centro",
            title="router-loja-centro offline",
            body="3 consecutive failed checks",
            occurred_at=datetime(2026, 11, 22, 10, 0, 0, 250_000, tzinfo=UTC),
            recovery=False,
            account=None,
            partition=None,
            zone=None,
            code=None,
            data={},
        )
        assert channel(fake).send(host_message, "host-7:offline").status == "sent"
        assert fake.alarms() == [
            {
                "account": "unknown",
                "partition": "unknown",
                "zone": "unknown",
                "code": "X900",
                "description": "router-loja-centro offline",
                "occurredAt": "2026-11-22T10:00:00.250000Z",
            }
        ]


def test_a_recovery_carries_the_restore_code() -> None:
    with FakeApis() as fake:
        client = SegwareClient(api_client(fake.url, name="segware"))
        sink = SegwareAlarmChannel(client, code="X900", recovery_code="R900")
        cleared = replace(MESSAGE, kind="alert_cleared", recovery=True)
        assert sink.send(MESSAGE, KEY).status == "sent"
        assert sink.send(cleared, KEY + ":cleared").status == "sent"
        assert [a["code"] for a in fake.alarms()] == ["X900", "R900"]


def test_a_rejected_alarm_fails_for_good() -> None:
    with FakeApis(alarms_status=400) as fake:
        delivery = channel(fake).send(MESSAGE, KEY)
        assert (delivery.status, delivery.http_status) == ("failed", 400)
        assert delivery.error is not None and "HTTP 400" in delivery.error
        assert len(fake.requests_to("POST", "/v1/alarms")) == 1


def test_an_unavailable_segware_leaves_the_alarm_pending() -> None:
    with FakeApis(alarms_status=503) as fake:
        clock = FakeTime()
        delivery = channel(fake, clock=clock).send(MESSAGE, KEY)
        assert (delivery.status, delivery.http_status) == ("pending", 503)
        assert len(fake.requests_to("POST", "/v1/alarms")) == 4
        assert fake.alarms() == []


def test_a_refused_token_raises() -> None:
    with FakeApis(token="s3cret") as fake:
        with pytest.raises(ApiAuthError) as err:
            channel(fake, token="wrong-token").send(MESSAGE, KEY)
        assert "wrong-token" not in str(err.value)
        assert fake.alarms() == []


def test_values_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Alarm("1234", "01", "003", "X900", "d", datetime(2026, 11, 22, 10, 0))
    with FakeApis() as fake:
        with pytest.raises(ValueError, match="code"):
            SegwareAlarmChannel(SegwareClient(api_client(fake.url, name="segware")), code="")
        with pytest.raises(ValueError, match="idempotency_key"):
            channel(fake).send(MESSAGE, "")
        assert fake.requests == []
