"""The `whatsapp` channel: WhatsApp Cloud API style text messages, one POST per recipient.

The ApiClient's base URL is the configured messages URL and it carries the bearer token.
Each recipient's POST has its own `Idempotency-Key: <key>-<n>` (n = the recipient's 1-based
position in the configured list). When some recipients accept and another is pending, the whole
message stays pending and a later run sends it to every recipient again, including those that
already accepted; that repeat is acceptable only because each recipient's request carries the
same per-recipient key, so a provider that honours idempotency keys drops the duplicates.
Changing the order of `notifications.whatsapp.to` while messages are pending changes those keys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from netwatch.clients.http import ApiClient
from netwatch.notify.message import Message
from netwatch.outcome import Delivery

log = logging.getLogger(__name__)

ACCEPTED = (200, 201, 202)


class WhatsappChannel:
    """Send each message as a text to every configured recipient; one Delivery for the whole message."""

    name = "whatsapp"

    def __init__(self, api: ApiClient, recipients: Sequence[str]) -> None:
        self._api = api
        self._recipients = tuple(recipients)

    def send(self, message: Message, idempotency_key: str) -> Delivery:
        """Sent only if every recipient accepted; any pending -> pending; none sent at all -> unsent; else failed.

        ApiAuthError (401/403) propagates at once: the token is wrong for every recipient.
        """
        text = f"{message.title}\n{message.body}"
        results = [
            self._send_one(n, recipient, text, f"{idempotency_key}-{n}")
            for n, recipient in enumerate(self._recipients, start=1)
        ]
        if all(d.status == "unsent" for d in results):
            return results[0]
        # A recipient not reached because the deadline ran out waits like one that was unavailable.
        pending = [d for d in results if d.status in ("pending", "unsent")]
        failed = [d for d in results if d.status == "failed"]
        if not pending and not failed:
            return Delivery("sent", results[-1].http_status, None)
        errors = "; ".join(d.error for d in pending + failed if d.error)
        summary = f"{len(results) - len(pending) - len(failed)}/{len(results)} recipients accepted: {errors}"
        if pending:
            waits = [d.retry_after_s for d in pending if d.retry_after_s is not None]
            return Delivery("pending", pending[0].http_status, summary, max(waits) if waits else None)
        return Delivery("failed", failed[0].http_status, summary)

    def _send_one(self, n: int, recipient: str, text: str, key: str) -> Delivery:
        body = {"messaging_product": "whatsapp", "to": recipient, "type": "text", "text": {"body": text}}
        delivery = self._api.deliver("POST", "", body, key, ACCEPTED)
        if delivery.status != "sent":
            log.warning("whatsapp to recipient %s: %s: %s", n, delivery.status, delivery.error)
        return delivery
