"""Every job's last step: deliver what is due in the outbox (Sigma events, then notifications)."""

from __future__ import annotations

from datetime import datetime

from netwatch.config import Config
from netwatch.deps import Deps
from netwatch.errors import ConfigError, NetwatchError, ServiceUnavailable
from netwatch.jobs.delivery import DeliveryReport, delivery_turn
from netwatch.jobs.notifications import deliver_notices
from netwatch.jobs.sigma_delivery import deliver_events


def dispatch(deps: Deps, config: Config, now: datetime) -> DeliveryReport:
    """Delivers due items during this process's delivery turn.

    A sink that refuses our credentials, or Sigma events held back because Segware cannot enrich
    them, do not hold back the others; after everything else was attempted the run then ends with
    the first refusal (exit 78), else with the unavailable enrichment (exit 69).
    """
    with delivery_turn(deps.engine, deps.holder, config.run.lease_seconds, deps.clock) as mine:
        if not mine:
            return DeliveryReport()
        report = DeliveryReport()
        refused: ConfigError | None = None
        unavailable: ServiceUnavailable | None = None
        try:
            report += deliver_events(deps.engine, deps, config, now)
        except ConfigError as exc:
            refused = exc
        except ServiceUnavailable as exc:
            unavailable = exc
        try:
            report += deliver_notices(deps.engine, deps.channels, config.notifications, now, deps.stop)
        except ConfigError as exc:
            refused = refused or exc
        first: NetwatchError | None = refused or unavailable
        if first is not None:
            raise first
        return report
