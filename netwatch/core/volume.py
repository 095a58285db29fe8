"""Window decisions of the event-scan and alert-clear jobs: pure code, no I/O, no clock reads.

The event-scan job loads the triggers, reads the events of its window into a `GroupCounter` given
the cleared triggers' `cleared_at`, and calls `decide_scan` with the same clears; it stores each
`Raise` as a new trigger row keyed by (account, CUC, code), which is what makes raising idempotent
across runs, overlapping runs and retries, and applies each `Update`. The alert-clear job makes a
fresh, complete read of the window for the triggers' codes, loads the active triggers and calls
`decide_clear` with the run's `now`.

Rules worth knowing:

- Only codes in `Rules.thresholds` are watched. A code absent from the rules is never raised and
  never updated; `GroupCounter` does not even count it.
- A group raises when its count is at or above its code's threshold (inclusive) and no trigger is
  active for its key. Raises and updates are sorted by key, so runs are deterministic.
- A group whose alert was cleared (for any reason) raises again only when its events received
  *after* the clear reach the threshold; an event at exactly `cleared_at` is not after it. After an
  `expired` clear the window still holds the old events, and counting them would re-raise on a
  trickle of one new event. `GroupCounter`, given the clears, counts the older events apart
  (`GroupCount.since_clear` is `count` for a group never cleared), and `decide_scan` refuses counts
  made against other clears than the ones it is given (`ValueError`): a decision never mixes two
  views of the triggers. A raise still carries the whole window's count, first and last seen: the
  stored count describes the window, as every later `Update` and the clear rules do.
- Every active trigger of a watched code gets exactly one `Update` per scan, also when its group had
  no event in the window: then the count is 0 and peak and last-seen stay as stored, so the stored
  count always describes the latest window. A key is never both raised and updated in one scan.
- Clearing compares the window count with the clear level of the *current* rules (threshold times
  `clear_below_percent` / 100), not the threshold stored at raise time, so an operator who raises a
  threshold lets the alerts below it clear. The count must come from a complete read: a partial read
  would look like a drop and clear a live alert.
- A trigger clears as `unwatched` when its code was removed from the rules (operators expect such
  alerts to go away), else as `below_threshold` when its window count (0 without events) is below
  the clear level, else as `expired` when no event was seen for longer than `expire_minutes`. When
  several hold the first in that order wins: a count below the level is the more informative reason.
- Expiry is strict: exactly `expire_minutes` since the last event is not expired yet.
- Clock going backwards (`now` before `raised_at`): the active duration is reported as 0, never
  negative; a last event "in the future" is simply not expired.
- Naive datetimes are a programming error and raise `ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple, Protocol, TypeVar

from netwatch.core.times import require_aware

V = TypeVar("V")


class ClearReason(StrEnum):
    BELOW_THRESHOLD = "below_threshold"
    EXPIRED = "expired"
    UNWATCHED = "unwatched"


@dataclass(frozen=True, order=True)
class GroupKey:
    """The identity of a group of events and of its trigger row."""

    account: str
    cuc: str
    code: str


@dataclass(frozen=True)
class GroupCount:
    """The events of one group in one window: how many, and the first and last receivedAt.

    `cleared_at` is the clear of the group's last alert that the counter was given (None: never
    cleared); `before_clear` counts the events received at or before it, which a re-raise ignores.
    """

    count: int
    first_seen: datetime
    last_seen: datetime
    # Where the latest event came from: an alarm injected for the group names a partition and zone.
    partition: str = ""
    zone: str = ""
    before_clear: int = 0
    cleared_at: datetime | None = None

    def __post_init__(self) -> None:
        require_aware(self.first_seen, "first_seen")
        require_aware(self.last_seen, "last_seen")
        # A group exists only because an event was read; an empty group would raise nothing and
        # would hide the "no events" case that `decide_scan` handles by absence.
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.first_seen > self.last_seen:
            raise ValueError(
                f"first_seen {self.first_seen.isoformat()} is after last_seen {self.last_seen.isoformat()}"
            )
        if self.cleared_at is not None:
            require_aware(self.cleared_at, "cleared_at")
        elif self.before_clear:
            raise ValueError(f"before_clear must be 0 without a clear, got {self.before_clear}")
        if not 0 <= self.before_clear <= self.count:
            raise ValueError(f"before_clear must be >= 0 and <= count {self.count}, got {self.before_clear}")

    @property
    def since_clear(self) -> int:
        """The events received after `cleared_at`: all of them for a group never cleared."""
        return self.count - self.before_clear


def by_key(groups: Mapping[GroupKey, V]) -> list[tuple[GroupKey, V]]:
    """The items sorted by key, as `sorted(groups.items())` sorts them, without a GroupKey comparison each
    (a dataclass's generated `__lt__` runs in Python: 5,000 groups cost 60,000 of them)."""
    return sorted(groups.items(), key=lambda item: (item[0].account, item[0].cuc, item[0].code))


class CountedEvent(Protocol):
    """What `GroupCounter` reads of an event (netwatch/clients/segware.py's SegwareEvent has it)."""

    @property
    def account(self) -> str: ...
    @property
    def cuc(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def partition(self) -> str: ...
    @property
    def zone(self) -> str: ...


class _Event(NamedTuple):
    account: str
    cuc: str
    code: str
    received_at: datetime
    partition: str
    zone: str


@dataclass(slots=True)
class _Tally:
    count: int
    first_seen: datetime
    last_seen: datetime
    partition: str
    zone: str
    cleared_at: datetime | None
    before_clear: int


class GroupCounter:
    """Counts events per group while a window is read; memory is one entry per group.

    `cleared_at` maps a group to the clear of its last alert: the counter also counts, per group,
    the events received at or before it, so `decide_scan` can tell fresh events from old ones.
    """

    def __init__(self, watched_codes: Collection[str], cleared_at: Mapping[GroupKey, datetime] | None = None) -> None:
        self._watched = frozenset(watched_codes)
        # A copy: the clears every count of one read is made against stay those given here. Keyed
        # by plain tuples, as the tallies are: a tuple hashes and compares in C, a GroupKey does not.
        self._cleared_at: dict[tuple[str, str, str], datetime] = {}
        for key, when in (cleared_at or {}).items():
            require_aware(when, f"cleared_at[{key}]")
            self._cleared_at[key.account, key.cuc, key.code] = when
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self.events = 0

    def add(self, account: str, cuc: str, code: str, received_at: datetime, partition: str = "",
            zone: str = "") -> None:
        """Count one event; events of unwatched codes are ignored."""
        self.add_all((_Event(account, cuc, code, received_at, partition, zone),))

    def add_all(self, events: Iterable[CountedEvent]) -> None:
        """Count each event in turn as `add` does: a page of events in one call.

        A page's events share their timestamps (the client parses each distinct one once): an event
        whose timestamp is the very object the event before had is not checked for a zone again.
        """
        watched, tallies, cleared = self._watched, self._tallies, self._cleared_at
        checked = None
        counted = 0
        # An event refused mid-page leaves the ones before it in the tallies: count them in events too.
        try:
            for event in events:
                received_at = event.received_at
                if received_at is not checked:
                    if received_at.utcoffset() is None:
                        require_aware(received_at, "received_at")
                    checked = received_at
                code = event.code
                if code not in watched:
                    continue
                counted += 1
                key = (event.account, event.cuc, code)
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = _Tally(0, received_at, received_at, event.partition, event.zone,
                                                  cleared.get(key), 0)
                tally.count += 1
                if tally.cleared_at is not None and received_at <= tally.cleared_at:
                    tally.before_clear += 1
                # Events do not arrive in time order (pages, retries, late deliveries).
                if received_at < tally.first_seen:
                    tally.first_seen = received_at
                if received_at >= tally.last_seen:
                    tally.last_seen = received_at
                    tally.partition, tally.zone = event.partition, event.zone
        finally:
            self.events += counted

    def groups(self) -> dict[GroupKey, GroupCount]:
        """A snapshot of every group counted so far."""
        return {GroupKey(*key): GroupCount(t.count, t.first_seen, t.last_seen, t.partition, t.zone, t.before_clear,
                                           t.cleared_at)
                for key, t in self._tallies.items()}


@dataclass(frozen=True)
class Rules:
    """The event-scan settings, with `thresholds` already resolved from `default_threshold`."""

    # Left out of the hash: a mapping is not hashable, and the rules stay usable as a dict key.
    thresholds: Mapping[str, int] = field(hash=False)
    clear_below_percent: float
    expire_minutes: float

    def __post_init__(self) -> None:
        for code, threshold in self.thresholds.items():
            if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
                raise ValueError(f"threshold of code {code!r} must be an integer >= 1, got {threshold!r}")
        # `not 0 < x` also rejects NaN, which would make every comparison false.
        if not 0 < self.clear_below_percent <= 100:
            raise ValueError(f"clear_below_percent must be > 0 and <= 100, got {self.clear_below_percent}")
        if not self.expire_minutes > 0:
            raise ValueError(f"expire_minutes must be > 0, got {self.expire_minutes}")
        # A read-only copy: a caller mutating its dict later must not change decisions.
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))

    def threshold(self, code: str) -> int:
        """The count at which `code` raises; `KeyError` for an unwatched code."""
        return self.thresholds[code]

    def clear_level(self, code: str) -> float:
        """An active trigger of `code` clears when its window count is below this."""
        return self.threshold(code) * self.clear_below_percent / 100


@dataclass(frozen=True)
class ActiveTrigger:
    """A stored active trigger; `last_seen` is the latest event time seen for the group."""

    key: GroupKey
    count: int
    peak: int
    threshold: int
    raised_at: datetime
    last_seen: datetime

    def __post_init__(self) -> None:
        require_aware(self.raised_at, "raised_at")
        require_aware(self.last_seen, "last_seen")


@dataclass(frozen=True)
class Raise:
    """A new alert: store a trigger row for `key` (count and peak = `count`) and notify once."""

    key: GroupKey
    count: int
    threshold: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Update:
    """New values for an active trigger's row; nothing is sent."""

    key: GroupKey
    count: int
    peak: int
    last_seen: datetime


@dataclass(frozen=True)
class Clear:
    """An active trigger to clear and log; `active_seconds` is never negative."""

    key: GroupKey
    reason: ClearReason
    last_count: int
    active_seconds: float


def decide_scan(
    counts: Mapping[GroupKey, GroupCount],
    active: Mapping[GroupKey, ActiveTrigger],
    rules: Rules,
    cleared_at: Mapping[GroupKey, datetime] | None = None,
) -> tuple[list[Raise], list[Update]]:
    """What one scan raises and which active triggers it updates; see the module docstring.

    `cleared_at` holds when each group's last alert was cleared, as the caller sees the triggers
    now; `counts` must come from a `GroupCounter` given the same clears, else `ValueError`. A
    cleared group raises again only on `since_clear` events, so an alert cleared as expired (or
    unwatched) is not raised again by the old events still inside the window.
    """
    _check_active(active)
    cleared_at = cleared_at or {}
    for key, when in cleared_at.items():
        require_aware(when, f"cleared_at[{key}]")
    raises = []
    for key, group in by_key(counts):
        if key.code not in rules.thresholds or key in active:
            continue
        if group.cleared_at != cleared_at.get(key):
            raise ValueError(f"the group {key} was counted since the clear {_iso(group.cleared_at)}, "
                             f"but its clear is {_iso(cleared_at.get(key))}")
        if group.since_clear >= rules.threshold(key.code):
            raises.append(Raise(key, group.count, rules.threshold(key.code), group.first_seen, group.last_seen))
    updates = []
    for key, trigger in by_key(active):
        if key.code not in rules.thresholds:
            continue
        group = counts.get(key)
        if group is None:
            updates.append(Update(key, 0, trigger.peak, trigger.last_seen))
        else:
            updates.append(
                Update(key, group.count, max(trigger.peak, group.count), max(trigger.last_seen, group.last_seen))
            )
    return raises, updates


def decide_clear(
    counts: Mapping[GroupKey, GroupCount], active: Mapping[GroupKey, ActiveTrigger], rules: Rules, now: datetime
) -> list[Clear]:
    """Which active triggers clear at `now`, given a complete read of the window; sorted by key."""
    require_aware(now, "now")
    _check_active(active)
    expire_seconds = rules.expire_minutes * 60
    clears = []
    for key, trigger in by_key(active):
        group = counts.get(key)
        count = 0 if group is None else group.count
        last_seen = trigger.last_seen if group is None else max(trigger.last_seen, group.last_seen)
        if key.code not in rules.thresholds:
            reason = ClearReason.UNWATCHED
        elif count < rules.clear_level(key.code):
            reason = ClearReason.BELOW_THRESHOLD
        elif (now - last_seen).total_seconds() > expire_seconds:
            reason = ClearReason.EXPIRED
        else:
            continue
        active_seconds = max(0.0, (now - trigger.raised_at).total_seconds())
        clears.append(Clear(key, reason, count, active_seconds))
    return clears


def format_duration(seconds: float) -> str:
    """A short duration for messages: "45s", "12m", "1h 5m", "2d 3h" (the two largest units, floored).

    Seconds appear only below a minute; a zero second unit is left out ("1h", "2d"); negative
    durations show as "0s".
    """
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"seconds must be finite, got {seconds}")
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _check_active(active: Mapping[GroupKey, ActiveTrigger]) -> None:
    for key, trigger in active.items():
        if trigger.key != key:
            raise ValueError(f"active trigger stored under {key} has key {trigger.key}")


def _iso(value: datetime | None) -> str:
    return "none" if value is None else value.isoformat()
