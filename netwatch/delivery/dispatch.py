"""Every job's last step: deliver what is due in the outbox (Sigma events, then notifications)."""

from __future__ import annotations

from datetime import datetime

from netwatch.config import Config
from netwatch.delivery.loop import DeliveryReport, delivery_turn
from netwatch.delivery.notices import deliver_notices
from netwatch.delivery.sigma import deliver_events
from netwatch.deps import Deps


def dispatch(deps: Deps, config: Config, now: datetime) -> DeliveryReport:
    """Delivers due items during this process's delivery turn.

    A sink that refuses our credentials, or Sigma events held back because Segware cannot enrich
    them, do not hold back the others: the report's `problem` says it, and the run ends with it.
    """
    with delivery_turn(deps.engine, deps.holder, config.run.lease_seconds, deps.clock) as turn:
        if turn is None:
            return DeliveryReport()
        return (deliver_events(deps.engine, deps, config, now, turn)
                + deliver_notices(deps.engine, deps.channels, config.notifications, now, deps.stop, turn))
