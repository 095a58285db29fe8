"""The notification message every channel delivers, and its JSON form for the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from netwatch.core.times import require_aware
from netwatch.notify.kinds import FIELDS


@dataclass(frozen=True)
class Message:
    """One rendered notification; `data` holds the template fields (JSON-able) for webhook bodies."""

    kind: str  # a Kind (netwatch/notify/kinds.py)
    subject: str  # host name, or "account/cuc/code" for an alert
    title: str
    body: str
    occurred_at: datetime  # aware UTC
    recovery: bool  # a closing kind (netwatch/notify/kinds.py)
    account: str | None
    partition: str | None
    zone: str | None
    code: str | None  # alarm code (alerts) or None
    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.kind not in FIELDS:
            raise ValueError(f"unknown message kind {self.kind!r}; expected one of {', '.join(FIELDS)}")
        require_aware(self.occurred_at, "occurred_at")

    def to_payload(self) -> dict[str, Any]:
        """A JSON-able dict for the outbox; occurred_at as an ISO 8601 UTC string."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "title": self.title,
            "body": self.body,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
            "recovery": self.recovery,
            "account": self.account,
            "partition": self.partition,
            "zone": self.zone,
            "code": self.code,
            "data": dict(self.data),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Message:
        """Rebuild a Message from `to_payload()` output; raises ValueError/KeyError on a malformed payload."""
        occurred_at = datetime.fromisoformat(payload["occurred_at"])
        if occurred_at.tzinfo is None:
            raise ValueError(f"occurred_at {payload['occurred_at']!r} has no time zone")
        return cls(
            kind=payload["kind"],
            subject=payload["subject"],
            title=payload["title"],
            body=payload["body"],
            occurred_at=occurred_at.astimezone(UTC),
            recovery=bool(payload["recovery"]),
            account=payload.get("account"),
            partition=payload.get("partition"),
            zone=payload.get("zone"),
            code=payload.get("code"),
            data=dict(payload.get("data") or {}),
        )
