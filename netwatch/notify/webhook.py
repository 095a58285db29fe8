"""The `webhook` channel: one JSON POST per message to the configured URL."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from netwatch.clients.http import ApiClient
from netwatch.notify.message import Message
from netwatch.outcome import Delivery

ACCEPTED = (200, 201, 202, 204)


def webhook_body(message: Message) -> dict[str, Any]:
    """The JSON document a webhook receives (a public contract: add fields, never rename them)."""
    return {
        "kind": message.kind,
        "subject": message.subject,
        "title": message.title,
        "body": message.body,
        "occurred_at": message.occurred_at.astimezone(UTC).isoformat(),
        "recovery": message.recovery,
        "account": message.account,
        "partition": message.partition,
        "zone": message.zone,
        "code": message.code,
        "data": dict(message.data),
    }


class WebhookChannel:
    """POST each message as JSON with an Idempotency-Key header; the client's base URL is the full webhook URL."""

    name = "webhook"

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def send(self, message: Message, idempotency_key: str) -> Delivery:
        """One POST; any 2xx is sent (see ApiClient.deliver for the rest)."""
        return self._api.deliver("POST", "", webhook_body(message), idempotency_key, ACCEPTED)
