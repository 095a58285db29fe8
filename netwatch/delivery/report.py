"""What one run delivered, summed over Sigma and every channel: the counts of the summary line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netwatch.db import outbox
from netwatch.db.outbox import OutboxItem
from netwatch.errors import ConfigError, NetwatchError
from netwatch.running.runner import JobOutcome


@dataclass(frozen=True)
class DeliveryReport:
    """Outcomes stored by one run; `problem` is what kept part of the outbox from going out (78 or 69).

    `waiting` counts pending messages not yet due (cooldown or backoff): they are neither trouble
    nor forgotten, and the summary line shows them.
    """

    sent: int = 0
    failed: int = 0
    pending: int = 0
    dead: int = 0
    waiting: int = 0
    problem: NetwatchError | None = None

    @property
    def trouble(self) -> bool:
        """True when any delivery attempt of this run did not end as sent."""
        return bool(self.failed or self.pending or self.dead)

    def counts(self) -> dict[str, int]:
        """The summary-line counts of a run's deliveries."""
        return {"sent": self.sent, "delivery_failed": self.failed, "pending": self.pending, "dead": self.dead,
                "waiting": self.waiting}

    @classmethod
    def of(cls, items: Sequence[OutboxItem]) -> DeliveryReport:
        statuses = [item.status for item in items]
        return cls(
            sent=statuses.count(outbox.SENT),
            failed=statuses.count(outbox.FAILED),
            pending=statuses.count(outbox.PENDING),
            dead=statuses.count(outbox.DEAD),
        )

    def outcome(self, counts: Mapping[str, int]) -> JobOutcome:
        """A job's outcome: its own `counts`, then this report's counts, trouble and problem."""
        return JobOutcome(counts={**counts, **self.counts()}, trouble=self.trouble, problem=self.problem)

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.sent + other.sent, self.failed + other.failed, self.pending + other.pending,
                              self.dead + other.dead, self.waiting + other.waiting,
                              _graver(self.problem, other.problem))


def _graver(first: NetwatchError | None, second: NetwatchError | None) -> NetwatchError | None:
    """A refused credential (fix the config) outranks an unavailable service (wait); else the first."""
    if first is None or (isinstance(second, ConfigError) and not isinstance(first, ConfigError)):
        return second
    return first
