"""The outcome of one attempt to deliver a message to any sink (Sigma, a notification channel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Delivery:
    """Sent (incl. an already-received duplicate), failed for good, pending for a later run, or unsent.

    `unsent`: the request never left (the run's deadline was used up first); it spends no attempt.
    """

    status: Literal["sent", "failed", "pending", "unsent"]
    http_status: int | None
    error: str | None
    retry_after_s: float | None = None
