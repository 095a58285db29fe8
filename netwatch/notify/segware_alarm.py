"""The `segware_alarm` channel: a notification becomes an alarm injected into Segware."""

from __future__ import annotations

from netwatch.clients.segware import Alarm, SegwareClient
from netwatch.notify.message import Message
from netwatch.outcome import Delivery

_UNKNOWN = "unknown"


class SegwareAlarmChannel:
    """Injects each message as one Segware alarm: the configured code, or the restore code for a recovery."""

    name = "segware_alarm"

    def __init__(self, segware: SegwareClient, code: str, recovery_code: str | None = None) -> None:
        if not code:
            raise ValueError("the segware_alarm code must not be empty")
        self._segware = segware
        self._code = code
        self._recovery_code = recovery_code

    def send(self, message: Message, idempotency_key: str) -> Delivery:
        """One POST /v1/alarms attempt; a repeated key (409) counts as sent, 401/403 raise ApiAuthError."""
        alarm = Alarm(
            account=message.account or _UNKNOWN,
            partition=message.partition or _UNKNOWN,
            zone=message.zone or _UNKNOWN,
            code=self._recovery_code if message.recovery and self._recovery_code else self._code,
            description=message.title,
            occurred_at=message.occurred_at,
        )
        return self._segware.post_alarm(alarm, idempotency_key)
