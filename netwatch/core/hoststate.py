"""The per-host threshold state machine of the ping sweep: pure code, no I/O, no clock reads.

Each run loads a host's `HostState`, calls `advance` once with the result of this run's check and
the run's `now`, and stores the returned state. A status change needs `down_after` consecutive
failed checks (to `offline`) or `up_after` consecutive good ones (to `online`).

Rules worth knowing:

- A brand-new host is `unknown`; its first confirmed status is applied at once (there is no
  previous transition to keep a distance from) and is notified only if `notify_initial` is set.
- An `online` <-> `offline` change confirmed less than `min_transition_seconds` after the previous
  transition is *held*: the status stays, `held` is True, the streak keeps counting, and the change
  is applied on the first later call where the interval has passed and the streak still confirms
  it. A contrary check resets the streak, so the held change disappears. `held` is recomputed on
  every call; a stored value is informational only. `held_since` is the `now` of the call where the
  change first became held (kept while it stays held, cleared otherwise); the applied transition
  reports the seconds it waited as `held_s` (0 when it was never held, or the clock went back).
- Elapsed time exactly equal to `min_transition_seconds` is enough (the bound is inclusive).
- Clock going backwards (`now` earlier than `last_transition_at`, e.g. after an NTP step or a
  restore onto a host with a wrong clock): the interval counts as passed. The interval only damps
  flapping, and the streak threshold already demands consecutive confirmations, so trusting the
  step costs at most one early transition per backward step; honouring the stored future timestamp
  could instead hide a real outage for as long as the clock was off (hours or days). The applied
  transition records `now` as `last_transition_at`, so the machine re-anchors on the new clock and
  no negative duration is ever computed or stored.
- A host whose address changed is a new target: `moved` starts its streaks over, so neither a
  failure streak nor a held change of the old address carries over to the new one, while the
  confirmed status stays (a change from it must be confirmed at the new address).
- Naive datetimes are a programming error and raise `ValueError`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from netwatch.core.times import require_aware


class Status(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Thresholds:
    """How many consecutive checks confirm a change, and the minimum time between changes."""

    down_after: int
    up_after: int
    min_transition_seconds: float
    notify_initial: bool = False

    def __post_init__(self) -> None:
        if self.down_after < 1 or self.up_after < 1:
            raise ValueError(f"down_after and up_after must be >= 1, got {self.down_after} and {self.up_after}")
        # `not >= 0` also rejects NaN, which would make every comparison false.
        if not self.min_transition_seconds >= 0:
            raise ValueError(f"min_transition_seconds must be >= 0, got {self.min_transition_seconds}")


@dataclass(frozen=True)
class HostState:
    """What the database stores per host between runs."""

    status: Status = Status.UNKNOWN
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_transition_at: datetime | None = None
    held: bool = False
    held_since: datetime | None = None


# A host with no stored state: one instance for all of a run's new hosts.
NEW_HOST = HostState()


@dataclass(frozen=True)
class Transition:
    """A confirmed status change; `streak` is the consecutive count that confirmed it."""

    previous: Status
    current: Status
    at: datetime
    notify: bool
    streak: int
    held_s: int = 0

    @property
    def initial(self) -> bool:
        """A new host's first confirmed status, not a change from a known one."""
        return self.previous is Status.UNKNOWN


def advance(
    state: HostState, check_ok: bool, now: datetime, thresholds: Thresholds
) -> tuple[HostState, Transition | None]:
    """Apply one check result (`check_ok`: replies came) at `now`; return the new state and any change."""
    require_aware(now, "now")
    if state.last_transition_at is not None:
        require_aware(state.last_transition_at, "state.last_transition_at")
    if state.held_since is not None:
        require_aware(state.held_since, "state.held_since")

    # The database hands back a plain string; normalise so comparisons and the result are Status.
    status = Status(state.status)
    if check_ok:
        successes, failures = state.consecutive_successes + 1, 0
    else:
        successes, failures = 0, state.consecutive_failures + 1
    # The constructor, not dataclasses.replace: a pass advances every host, 10,000 of them.
    counted = HostState(status, failures, successes, state.last_transition_at)

    target, streak = _confirmed_target(status, failures, successes, thresholds)
    if target is None:
        return counted, None

    if status is not Status.UNKNOWN and not _interval_passed(
        state.last_transition_at, now, thresholds.min_transition_seconds
    ):
        held_since = state.held_since if state.held and state.held_since is not None else now
        return replace(counted, held=True, held_since=held_since), None

    notify = thresholds.notify_initial if status is Status.UNKNOWN else True
    transition = Transition(previous=status, current=target, at=now, notify=notify, streak=streak,
                            held_s=_held_seconds(state, now))
    return replace(counted, status=target, last_transition_at=now), transition


class RunAdvance:
    """`advance` for one run's checks, all at one `now` under one set of thresholds, computed once per
    distinct (state, outcome): a run's hosts share a handful of stored states (a steady inventory
    one or two), and `advance` is pure, so a host whose stored state and outcome another host had
    gets the same result (the same objects)."""

    def __init__(self, now: datetime, thresholds: Thresholds) -> None:
        self._now = now
        self._thresholds = thresholds
        self._done: dict[tuple[HostState, bool], tuple[HostState, Transition | None]] = {}

    def __call__(self, state: HostState, check_ok: bool) -> tuple[HostState, Transition | None]:
        key = (state, check_ok)
        result = self._done.get(key)
        if result is None:
            result = self._done[key] = advance(state, check_ok, self._now, self._thresholds)
        return result


def moved(state: HostState) -> HostState:
    """The state of a host whose address changed: the confirmed status stays, the streaks start over."""
    return replace(state, consecutive_failures=0, consecutive_successes=0, held=False, held_since=None)


def _held_seconds(state: HostState, now: datetime) -> int:
    """Whole seconds the change now applied was held (0 when it was not, or the clock went back)."""
    if not state.held or state.held_since is None:
        return 0
    return max(0, int((now - state.held_since).total_seconds()))


def _confirmed_target(
    status: Status, failures: int, successes: int, thresholds: Thresholds
) -> tuple[Status | None, int]:
    """The status the current streak confirms, if it differs from `status`, and the streak length."""
    if status is not Status.OFFLINE and failures >= thresholds.down_after:
        return Status.OFFLINE, failures
    if status is not Status.ONLINE and successes >= thresholds.up_after:
        return Status.ONLINE, successes
    return None, 0


def _interval_passed(last: datetime | None, now: datetime, min_seconds: float) -> bool:
    if last is None:
        return True
    elapsed = (now - last).total_seconds()
    # A backwards clock counts as passed: see the module docstring.
    return elapsed < 0 or elapsed >= min_seconds
