"""Shared by event-scan and alert-clear: their lease group, the rules from config, a complete read of the window."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from netwatch.clients.segware import SegwareClient
from netwatch.config import Config
from netwatch.core.volume import GroupCount, GroupCounter, GroupKey, Rules
from netwatch.errors import ConfigError
from netwatch.running.runner import LeaseGroup
from netwatch.running.stopflag import StopFlag

# event-scan and alert-clear both change `triggers`: one lease for both, so they never interleave,
# and a run whose clock is behind the other job's last run refuses to act (it would undo it).
ALERT_VOLUME = LeaseGroup("alert-volume", ("event-scan", "alert-clear"))
_NO_SEGWARE = "segware.base_url: {job} reads events from the Segware API; set it"


def volume_rules(config: Config) -> Rules:
    """The thresholds and clear rules of `event_scan`."""
    scan = config.event_scan
    return Rules(thresholds=scan.codes, clear_below_percent=scan.clear_below_percent,
                 expire_minutes=scan.expire_minutes)


def segware_problems(config: Config, job: str) -> list[str]:
    """The config problem (key path and what to do) when `job` has no Segware API to read events from."""
    return [] if config.segware.api.base_url else [_NO_SEGWARE.format(job=job)]


def require_segware(segware: SegwareClient | None, job: str) -> SegwareClient:
    """The Segware client, or a config error naming the key that is missing."""
    if segware is None:
        raise ConfigError(_NO_SEGWARE.format(job=job))
    return segware


def read_window(
    segware: SegwareClient, codes: Collection[str], end: datetime, config: Config, stop: StopFlag,
    cleared_at: Mapping[GroupKey, datetime] | None = None,
) -> dict[GroupKey, GroupCount]:
    """Counts per group of every event of [end - window, end) with a watched code.

    With `cleared_at` (group -> clear of its last alert), each count also tells the events received
    after that clear from the older ones (see `GroupCounter`).

    Raises ApiUnavailable (exit 69) when the window cannot be read completely; the caller has not
    written anything yet, so a partial count never raises or clears an alert.
    """
    scan = config.event_scan
    counter = GroupCounter(codes, cleared_at)
    if not codes:
        return {}
    pages = segware.iter_event_pages(end - timedelta(minutes=scan.window_minutes), end, codes=sorted(codes),
                                     page_size=scan.page_size, min_slice=timedelta(seconds=scan.min_slice_seconds))
    for events in pages:  # a page at a time: memory is a page and one tally per group, whatever the window holds
        stop.check()
        counter.add_all(events)
    return counter.groups()
