"""The outcome of one attempt to deliver a message to any sink (Sigma, a notification channel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Delivery:
    """Sent (incl. an already-received duplicate), failed for good, or pending for a later run."""

    status: Literal["sent", "failed", "pending"]
    http_status: int | None
    error: str | None
    retry_after_s: float | None = None
