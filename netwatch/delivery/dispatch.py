"""Every job's last step: deliver what is due in the outbox (Sigma events, then notifications)."""

from __future__ import annotations

from datetime import datetime

from netwatch.config import Config
from netwatch.db import outbox
from netwatch.delivery.loop import delivery_turn
from netwatch.delivery.notices import deliver_notices
from netwatch.delivery.report import DeliveryReport
from netwatch.delivery.sigma import deliver_events
from netwatch.deps import Deps


def dispatch(deps: Deps, config: Config, now: datetime) -> DeliveryReport:
    """Delivers due items during this process's delivery turn.

    A sink that refuses our credentials, or Sigma events held back because Segware cannot enrich
    them, do not hold back the others: the report's `problem` says it, and the run ends with it.
    The report also counts the messages still waiting for their cooldown or backoff.
    """
    with delivery_turn(deps.engine, deps.holder, config.run.lease_seconds, deps.server_clock) as turn:
        report = DeliveryReport()
        if turn is not None:
            report = (deliver_events(deps, config, now, turn)
                      + deliver_notices(deps.engine, deps.channels, config.notifications, now, deps.stop,
                                        deps.redactor.mask, turn, deps.store_every_s))
    with deps.engine.begin() as conn:
        return report + DeliveryReport(waiting=outbox.count_waiting(conn, now))
