"""Sigma Cloud Events API adapter: every Sigma field name lives in this module and only here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from netwatch.clients.http import ApiClient, ApiRejected, ApiUnavailable
from netwatch.delivery.outcome import Delivery

EVENT_TYPES = frozenset({"HOST_OFFLINE", "HOST_ONLINE"})
_EVENTS_PATH = "/v1/events"


@dataclass(frozen=True)
class SigmaEvent:
    """One host state change to report to Sigma; `idempotency_key` is stable across re-sends."""

    idempotency_key: str
    account: str
    partition: str
    zone: str
    code: str
    type: str
    host_name: str
    host_address: str
    occurred_at: datetime
    description: str

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown Sigma event type {self.type!r}")
        if self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        if not self.idempotency_key:
            raise ValueError("idempotency_key must not be empty")


def format_timestamp(when: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, to the second: 2026-11-22T10:00:00Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(event: SigmaEvent) -> dict[str, Any]:
    """The JSON body of POST /v1/events for one event."""
    return {
        "account": event.account,
        "partition": event.partition,
        "zone": event.zone,
        "code": event.code,
        "type": event.type,
        "host": {"name": event.host_name, "address": event.host_address},
        "occurredAt": format_timestamp(event.occurred_at),
        "description": event.description,
    }


class SigmaClient:
    """Sends host events to Sigma; 401/403 raise ApiAuthError, everything else becomes a Delivery."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def send_event(self, event: SigmaEvent) -> Delivery:
        """POST one event with its Idempotency-Key; 409 (already received) counts as sent."""
        try:
            response = self._api.request(
                "POST",
                _EVENTS_PATH,
                json_body=event_body(event),
                headers={"Idempotency-Key": event.idempotency_key},
                accept=(201, 202, 409),
            )
        except ApiUnavailable as exc:
            return Delivery("pending", exc.status, exc.message, exc.retry_after_s)
        except ApiRejected as exc:
            return Delivery("failed", exc.status, exc.message)
        return Delivery("sent", response.status_code, None)
