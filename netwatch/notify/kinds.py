"""The kinds of notification message: the one list, with each kind's template fields and role.

- host_offline, host_online: a confirmed change of a monitored host.
- host_first_status: a new host's first confirmed status (sent only with thresholds.notify_initial).
- host_removed: a host left the inventory while offline; it is no longer checked, and this
  message closes its incident (no recovery will ever be seen for it).
- service_down, service_up, service_first_status, service_removed: the same four for an HTTP or
  TCP check of http-check (`reason` says why its last check failed or was degraded, "-" if none).
- alert_raised, alert_cleared: an alarm-volume alert of event-scan / alert-clear.

A closing kind (host or service back, a removal that ends an offline period, an alert cleared) goes
only to channels with `send_recovery`; a Segware alarm channel injects its restore code for it.
A first status `online` reports no problem and closes none: an alarm channel gets nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Kind(StrEnum):
    HOST_OFFLINE = "host_offline"
    HOST_ONLINE = "host_online"
    HOST_FIRST_STATUS = "host_first_status"
    HOST_REMOVED = "host_removed"
    SERVICE_DOWN = "service_down"
    SERVICE_UP = "service_up"
    SERVICE_FIRST_STATUS = "service_first_status"
    SERVICE_REMOVED = "service_removed"
    ALERT_RAISED = "alert_raised"
    ALERT_CLEARED = "alert_cleared"


CLOSING: frozenset[Kind] = frozenset({Kind.HOST_ONLINE, Kind.HOST_REMOVED, Kind.SERVICE_UP, Kind.SERVICE_REMOVED,
                                      Kind.ALERT_CLEARED})
# Channels that turn every message into an alarm (or, for a closing kind, its restore).
ALARM_CHANNELS = frozenset({"segware_alarm"})

_HOST = frozenset({"host", "address", "account", "partition", "zone", "occurred_at"})
_SERVICE = frozenset({"check", "kind", "target", "client", "account", "occurred_at"})
_ALERT = frozenset({"account", "account_name", "company", "client_group", "cuc", "code", "count", "threshold",
                    "window_minutes", "occurred_at"})

# The template fields of each kind, all strings (see netwatch/notify/templates.py).
FIELDS: Mapping[Kind, frozenset[str]] = MappingProxyType({
    Kind.HOST_OFFLINE: _HOST | {"streak"},
    Kind.HOST_ONLINE: _HOST | {"streak"},
    Kind.HOST_FIRST_STATUS: _HOST | {"streak", "status"},
    Kind.HOST_REMOVED: _HOST | {"status"},
    Kind.SERVICE_DOWN: _SERVICE | {"streak", "reason"},
    Kind.SERVICE_UP: _SERVICE | {"streak", "reason"},
    Kind.SERVICE_FIRST_STATUS: _SERVICE | {"streak", "status", "reason"},
    Kind.SERVICE_REMOVED: _SERVICE | {"status"},
    Kind.ALERT_RAISED: _ALERT,
    Kind.ALERT_CLEARED: _ALERT | {"reason", "last_count", "duration"},
})


def is_alarm_free(kind: str, fields: Mapping[str, str]) -> bool:
    """Whether a message neither reports a problem nor ends one: a new host's or check's first status `online`."""
    return kind in (Kind.HOST_FIRST_STATUS, Kind.SERVICE_FIRST_STATUS) and fields.get("status") == "online"
