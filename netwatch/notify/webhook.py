"""The `webhook` channel: one JSON POST per message to the configured URL."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from netwatch.clients.http import ApiClient, ApiRejected, ApiUnavailable
from netwatch.delivery.outcome import Delivery
from netwatch.notify.message import Message

log = logging.getLogger(__name__)

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
        """2xx -> sent; other 4xx -> failed; transient failures -> pending; 401/403 raise ApiAuthError."""
        try:
            response = self._api.request(
                "POST",
                "",
                json_body=webhook_body(message),
                headers={"Idempotency-Key": idempotency_key},
                accept=ACCEPTED,
            )
        except ApiRejected as exc:
            log.warning("webhook failed for good: %s", exc.message)
            return Delivery("failed", exc.status, exc.message)
        except ApiUnavailable as exc:
            log.warning("webhook not delivered, will retry: %s", exc.message)
            return Delivery("pending", exc.status, exc.message, exc.retry_after_s)
        status = response.status_code
        response.close()
        return Delivery("sent", status, None)
