"""Sigma Cloud Events API adapter: every Sigma field name lives in this module and only here.

A `SigmaEvent` is stored in the outbox as its wire body (`body()`), so what a retry sends is
exactly what was stored; `from_body` reads a stored body back. An event whose partition or zone
is still unknown is stored with nulls there and located (filled in and stored again) before its
first attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from netwatch.clients.http import ApiClient, format_timestamp, parse_timestamp
from netwatch.core.times import require_aware
from netwatch.outcome import Delivery

HOST_OFFLINE = "HOST_OFFLINE"
HOST_ONLINE = "HOST_ONLINE"
EVENT_TYPES = frozenset({HOST_OFFLINE, HOST_ONLINE})
UNKNOWN = "unknown"
_EVENTS_PATH = "/v1/events"
# 201/202 sent; 409: the key was already received, which also means sent.
_ACCEPTED = (201, 202, 409)


@dataclass(frozen=True)
class SigmaEvent:
    """One host state change for Sigma; `partition` / `zone` None until the event is located."""

    account: str | None
    partition: str | None
    zone: str | None
    code: str
    type: str
    host_name: str
    host_address: str
    occurred_at: datetime
    description: str

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown Sigma event type {self.type!r}")
        require_aware(self.occurred_at, "occurred_at")

    @property
    def located(self) -> bool:
        """Whether partition and zone are known (or settled as unknown): the body is final."""
        return bool(self.partition) and bool(self.zone)

    def with_location(self, partition: str, zone: str) -> SigmaEvent:
        """The event with its partition and zone settled; an event of no account says "unknown"."""
        return replace(self, account=self.account or UNKNOWN, partition=partition, zone=zone)

    def body(self) -> dict[str, Any]:
        """The JSON body of POST /v1/events (occurredAt to the second, as the contract shows it).

        A located event of no account says "unknown": the contract's account is a string.
        """
        return {
            "account": self.account or (UNKNOWN if self.located else None),
            "partition": self.partition,
            "zone": self.zone,
            "code": self.code,
            "type": self.type,
            "host": {"name": self.host_name, "address": self.host_address},
            "occurredAt": format_timestamp(self.occurred_at.replace(microsecond=0)),
            "description": self.description,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SigmaEvent:
        """An event from a stored `body()`; KeyError, TypeError or ValueError when it has another shape."""
        host = body["host"]
        return cls(
            account=body["account"],
            partition=body["partition"],
            zone=body["zone"],
            code=body["code"],
            type=body["type"],
            host_name=host["name"],
            host_address=host["address"],
            occurred_at=parse_timestamp(body["occurredAt"]),
            description=body["description"],
        )


class SigmaClient:
    """Sends stored event bodies to Sigma; 401/403 raise ApiAuthError, everything else is a Delivery."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def send(self, body: Mapping[str, Any], idempotency_key: str) -> Delivery:
        """POST one stored body, exactly as stored, with its Idempotency-Key."""
        return self._api.deliver("POST", _EVENTS_PATH, body, idempotency_key, _ACCEPTED)
