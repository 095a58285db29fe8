"""The one interface every notification channel implements."""

from __future__ import annotations

from typing import Protocol

from netwatch.notify.message import Message
from netwatch.outcome import Delivery


class Channel(Protocol):
    """A configured destination; `name` equals the outbox `channel` column."""

    name: str  # "email" | "webhook" | "whatsapp" | "segware_alarm"

    def send(self, message: Message, idempotency_key: str) -> Delivery:
        """Make ONE delivery attempt; raise a ConfigError subclass when credentials are refused."""
        ...
