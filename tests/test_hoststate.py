"""The host threshold state machine, case by case, with plain values and an explicit `now`."""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from netwatch.core.hoststate import NEW_HOST, HostState, RunAdvance, Status, Thresholds, Transition, advance

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
OK, FAIL = True, False


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(
    state: HostState, checks: list[bool], thresholds: Thresholds, start: datetime = T0, step: timedelta = STEP
) -> tuple[HostState, list[Transition]]:
    """Feed `checks` one per `step` from `start`; return the final state and every transition."""
    transitions = []
    for i, check in enumerate(checks):
        state, transition = advance(state, check, start + i * step, thresholds)
        if transition is not None:
            transitions.append(transition)
    return state, transitions


def online_since(when: datetime, successes: int = 5) -> HostState:
    return HostState(status=Status.ONLINE, consecutive_successes=successes, last_transition_at=when)


def offline_since(when: datetime, failures: int = 5) -> HostState:
    return HostState(status=Status.OFFLINE, consecutive_failures=failures, last_transition_at=when)


# --- a brand-new host ---------------------------------------------------------------------------


@pytest.mark.parametrize("notify_initial", [False, True])
@pytest.mark.parametrize(("check", "after", "expected"), [(OK, 2, Status.ONLINE), (FAIL, 3, Status.OFFLINE)])
def test_first_confirmed_status_of_new_host_is_recorded_and_notified_only_if_asked(
    check: bool, after: int, expected: Status, notify_initial: bool
) -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=3600, notify_initial=notify_initial)
    state, transitions = run(HostState(), [check] * after, thresholds)

    assert transitions == [
        Transition(
            previous=Status.UNKNOWN,
            current=expected,
            at=T0 + (after - 1) * STEP,
            notify=notify_initial,
            streak=after,
        )
    ]
    assert state.status is expected
    assert state.last_transition_at == T0 + (after - 1) * STEP
    assert state.held is False


def test_new_host_stays_unknown_until_a_streak_confirms() -> None:
    thresholds = Thresholds(down_after=3, up_after=3, min_transition_seconds=0)
    state, transitions = run(HostState(), [OK, OK, FAIL, FAIL, OK, OK], thresholds)

    assert transitions == []
    assert state == HostState(status=Status.UNKNOWN, consecutive_successes=2)


def test_first_status_ignores_min_transition_even_with_a_recent_timestamp() -> None:
    # Nothing to keep a distance from: an unknown host has never been notified about.
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=3600)
    state = HostState(last_transition_at=T0)

    new, transition = advance(state, FAIL, T0 + timedelta(seconds=1), thresholds)

    assert transition is not None and transition.current is Status.OFFLINE
    assert new.status is Status.OFFLINE and not new.held


def test_default_thresholds_do_not_notify_initial() -> None:
    assert Thresholds(down_after=1, up_after=1, min_transition_seconds=0).notify_initial is False


# --- confirming changes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "checks", "expected"),
    [
        (Status.UNKNOWN, [OK], Status.ONLINE),
        (Status.UNKNOWN, [FAIL], Status.OFFLINE),
        (Status.ONLINE, [FAIL], Status.OFFLINE),
        (Status.OFFLINE, [OK], Status.ONLINE),
        (Status.ONLINE, [OK], Status.ONLINE),
        (Status.OFFLINE, [FAIL], Status.OFFLINE),
    ],
)
def test_thresholds_of_one_confirm_every_change_at_once(start: Status, checks: list[bool], expected: Status) -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0)
    state = HostState(status=start, last_transition_at=None if start is Status.UNKNOWN else at(-60))

    new, transitions = run(state, checks, thresholds)

    assert new.status is expected
    assert len(transitions) == (0 if start is expected else 1)


def test_thresholds_of_one_follow_every_alternation_without_min_interval() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0)
    state, transitions = run(online_since(at(-60)), [FAIL, OK] * 5, thresholds)

    assert [t.current for t in transitions] == [Status.OFFLINE, Status.ONLINE] * 5
    assert all(t.notify and t.streak == 1 for t in transitions)
    assert state.status is Status.ONLINE


@pytest.mark.parametrize(("failures", "expected"), [(1, Status.ONLINE), (2, Status.ONLINE), (3, Status.OFFLINE)])
def test_down_after_three_needs_exactly_three_failures(failures: int, expected: Status) -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=0)
    state, transitions = run(online_since(at(-60)), [FAIL] * failures, thresholds)

    assert state.status is expected
    assert state.consecutive_failures == failures
    assert state.consecutive_successes == 0
    assert [t.streak for t in transitions] == ([3] if expected is Status.OFFLINE else [])


@pytest.mark.parametrize(("successes", "expected"), [(1, Status.OFFLINE), (2, Status.ONLINE)])
def test_up_after_two_needs_exactly_two_successes(successes: int, expected: Status) -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=0)
    state, transitions = run(offline_since(at(-60)), [OK] * successes, thresholds)

    assert state.status is expected
    assert [(t.previous, t.current, t.notify) for t in transitions] == (
        [(Status.OFFLINE, Status.ONLINE, True)] if expected is Status.ONLINE else []
    )


@pytest.mark.parametrize(
    ("checks", "failures", "successes"),
    [
        ([FAIL, FAIL, OK], 0, 1),
        ([FAIL, FAIL, OK, FAIL, FAIL], 2, 0),
        ([OK, FAIL], 1, 0),
        ([FAIL, OK, OK, FAIL], 1, 0),
    ],
)
def test_a_contrary_check_resets_the_streak(checks: list[bool], failures: int, successes: int) -> None:
    thresholds = Thresholds(down_after=3, up_after=3, min_transition_seconds=0)
    state, transitions = run(online_since(at(-60), successes=0), checks, thresholds)

    assert transitions == []
    assert state.status is Status.ONLINE
    assert (state.consecutive_failures, state.consecutive_successes) == (failures, successes)


def test_transition_records_now_and_streak() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=0)
    now = datetime(2024, 3, 1, 13, 0, 0, 123456, tzinfo=UTC)
    state = replace(online_since(at(-60)), consecutive_successes=0, consecutive_failures=1)

    new, transition = advance(state, FAIL, now, thresholds)

    assert transition == Transition(previous=Status.ONLINE, current=Status.OFFLINE, at=now, notify=True, streak=2)
    assert new.last_transition_at == now


def test_a_non_utc_aware_now_is_accepted_and_compared_as_an_instant() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=600)
    plus_two = timezone(timedelta(hours=2))
    # 14:05 at +02:00 is 12:05 UTC: only 5 minutes after the 12:00 UTC transition.
    new, transition = advance(online_since(T0), FAIL, datetime(2024, 3, 1, 14, 5, tzinfo=plus_two), thresholds)

    assert transition is None
    assert new.held is True


# --- flapping and long outages ------------------------------------------------------------------


@pytest.mark.parametrize(("down_after", "up_after"), [(2, 2), (2, 3), (3, 2), (5, 5)])
@pytest.mark.parametrize("start", [Status.ONLINE, Status.OFFLINE, Status.UNKNOWN])
def test_alternating_checks_never_confirm_with_thresholds_of_two_or_more(
    down_after: int, up_after: int, start: Status
) -> None:
    thresholds = Thresholds(down_after=down_after, up_after=up_after, min_transition_seconds=0)
    state = HostState(status=start, last_transition_at=None if start is Status.UNKNOWN else at(-60))

    final, transitions = run(state, [OK, FAIL] * 50, thresholds)

    assert transitions == []
    assert final.status is start
    assert final.held is False


def test_flapping_with_thresholds_of_one_is_bounded_by_min_transition_seconds() -> None:
    # One check a minute, a 5-minute minimum: the host flips exactly once per 5 minutes, because the
    # check arriving at each 5-minute mark (odd minutes ok, even ones failed) confirms the flip.
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=300)
    _, transitions = run(online_since(at(-60)), [FAIL, OK] * 30, thresholds)

    assert [t.at for t in transitions] == [at(m) for m in range(0, 60, 5)]
    assert [t.current for t in transitions] == [Status.OFFLINE, Status.ONLINE] * 6
    assert all(b.at - a.at >= timedelta(seconds=300) for a, b in itertools.pairwise(transitions))


def test_flapping_with_thresholds_of_one_holds_then_applies() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=300)
    state = online_since(at(-60))

    state, first = advance(state, FAIL, at(0), thresholds)
    assert first is not None and first.current is Status.OFFLINE

    state, held = advance(state, OK, at(1), thresholds)
    assert held is None
    assert state.status is Status.OFFLINE and state.held is True

    state, still_held = advance(state, OK, at(4), thresholds)
    assert still_held is None and state.held is True and state.consecutive_successes == 2

    state, applied = advance(state, OK, at(5), thresholds)
    assert applied == Transition(previous=Status.OFFLINE, current=Status.ONLINE, at=at(5), notify=True, streak=3,
                                 held_s=240)
    assert state.status is Status.ONLINE and state.held is False


def test_long_outage_gives_exactly_one_transition() -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=600)
    state, transitions = run(online_since(at(-60)), [FAIL] * 100, thresholds)

    assert len(transitions) == 1
    assert transitions[0].at == at(2) and transitions[0].streak == 3
    assert state.status is Status.OFFLINE
    assert state.consecutive_failures == 100
    assert state.held is False
    assert state.last_transition_at == at(2)


def test_recovery_after_long_outage_is_one_more_transition() -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=600)
    state, transitions = run(online_since(at(-60)), [FAIL] * 100 + [OK] * 5, thresholds)

    assert [(t.current, t.at) for t in transitions] == [(Status.OFFLINE, at(2)), (Status.ONLINE, at(101))]
    assert state.consecutive_successes == 5 and state.consecutive_failures == 0


# --- held changes -------------------------------------------------------------------------------


def test_change_within_min_interval_is_held_not_dropped() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    state, transitions = run(online_since(at(0)), [FAIL, FAIL, FAIL], thresholds, start=at(1))

    assert transitions == []
    assert state.status is Status.ONLINE
    assert state.held is True
    assert state.consecutive_failures == 3
    assert state.last_transition_at == at(0)


def test_held_change_is_applied_on_first_call_after_the_interval_if_still_true() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    # Checks at minutes 1..12; the interval from minute 0 passes at minute 10.
    state, transitions = run(online_since(at(0)), [FAIL] * 12, thresholds, start=at(1))

    assert transitions == [
        Transition(previous=Status.ONLINE, current=Status.OFFLINE, at=at(10), notify=True, streak=10,
                   held_s=480)
    ]
    assert state.status is Status.OFFLINE and state.held is False


def test_held_change_applies_on_a_late_run_after_a_gap() -> None:
    # The cron job did not run for hours: the next run applies the held change at once.
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    state, _ = run(online_since(at(0)), [FAIL, FAIL], thresholds, start=at(1))
    assert state.held is True

    state, transition = advance(state, FAIL, at(300), thresholds)

    assert transition is not None and transition.at == at(300) and transition.streak == 3
    assert state.status is Status.OFFLINE


def test_held_change_is_dropped_if_it_stops_being_true() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    state, _ = run(online_since(at(0)), [FAIL, FAIL], thresholds, start=at(1))
    assert state.held is True

    state, transitions = run(state, [OK, FAIL], thresholds, start=at(3))
    assert transitions == []
    assert state.held is False
    assert state.status is Status.ONLINE

    # Well after the interval a single failure is no longer enough: the held change is gone.
    state, transition = advance(state, OK, at(30), thresholds)
    assert transition is None and state.status is Status.ONLINE


def test_held_flag_is_recomputed_not_trusted_from_storage() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    stale = replace(online_since(at(0)), held=True)

    state, transition = advance(stale, OK, at(1), thresholds)

    assert transition is None and state.held is False


@pytest.mark.parametrize(
    ("elapsed", "applied"),
    [
        (timedelta(seconds=299), False),
        (timedelta(seconds=299, microseconds=999999), False),
        (timedelta(seconds=300), True),
        (timedelta(seconds=300, microseconds=1), True),
    ],
)
def test_exact_interval_boundary_is_allowed(elapsed: timedelta, applied: bool) -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=300)

    state, transition = advance(online_since(T0), FAIL, T0 + elapsed, thresholds)

    assert (transition is not None) is applied
    assert state.status is (Status.OFFLINE if applied else Status.ONLINE)
    assert state.held is not applied


def test_fractional_min_transition_seconds() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0.5)

    held, none = advance(online_since(T0), FAIL, T0 + timedelta(milliseconds=499), thresholds)
    applied, transition = advance(held, FAIL, T0 + timedelta(milliseconds=500), thresholds)

    assert none is None and held.held
    assert transition is not None and applied.status is Status.OFFLINE


def test_known_status_without_a_transition_time_changes_at_once() -> None:
    # e.g. a row written before the timestamp was tracked: nothing to keep a distance from.
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=3600)
    state, transition = advance(HostState(status=Status.ONLINE), FAIL, T0, thresholds)

    assert transition is not None and transition.notify is True
    assert state.status is Status.OFFLINE and state.last_transition_at == T0


# --- restarts: the state round-trips through storage --------------------------------------------


def _store_and_load(state: HostState) -> HostState:
    """What a database does: plain columns out, a fresh object back (status as a plain string)."""
    row = asdict(state)
    row["status"] = str(row["status"])
    return HostState(**row)


@pytest.mark.parametrize("seed", range(5))
def test_restart_between_every_run_continues_identically(seed: int) -> None:
    rng = random.Random(seed)
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=240)
    checks = [rng.random() < 0.6 for _ in range(200)]

    in_memory, expected = run(HostState(), checks, thresholds)

    stored = HostState()
    restarted = []
    for i, check in enumerate(checks):
        stored, transition = advance(_store_and_load(stored), check, T0 + i * STEP, thresholds)
        if transition is not None:
            restarted.append(transition)

    assert restarted == expected
    assert stored == in_memory


def test_plain_string_status_from_database_is_accepted() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0)
    state = replace(online_since(at(-60)), status="online")  # type: ignore[arg-type]

    new, transition = advance(state, FAIL, T0, thresholds)

    assert transition is not None and transition.previous is Status.ONLINE
    assert new.status is Status.OFFLINE


def test_replace_of_a_stored_state_keeps_counting() -> None:
    thresholds = Thresholds(down_after=3, up_after=2, min_transition_seconds=0)
    state, _ = run(online_since(at(-60)), [FAIL, FAIL], thresholds)

    reloaded = replace(state)
    final, transition = advance(reloaded, FAIL, at(2), thresholds)

    assert transition is not None and transition.streak == 3
    assert final.status is Status.OFFLINE


# --- clock going backwards ----------------------------------------------------------------------


def test_backwards_clock_does_not_suppress_a_real_outage() -> None:
    # The last transition was stored by a clock running 6 hours fast; the clock is now correct.
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    state = online_since(at(360))

    state, first = advance(state, FAIL, at(0), thresholds)
    assert first is None and state.held is False
    state, second = advance(state, FAIL, at(1), thresholds)

    assert state.status is Status.OFFLINE
    assert second == Transition(previous=Status.ONLINE, current=Status.OFFLINE, at=at(1), notify=True, streak=2)
    assert state.last_transition_at == at(1)
    assert state.held is False


def test_backwards_clock_releases_a_held_change() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=600)
    state, _ = advance(online_since(at(0)), FAIL, at(1), thresholds)
    assert state.held is True

    state, transition = advance(state, FAIL, at(-30), thresholds)

    assert transition is not None and transition.at == at(-30)
    assert state.status is Status.OFFLINE and state.last_transition_at == at(-30)


def test_after_a_backwards_step_the_interval_counts_from_the_new_clock() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=600)
    state, stepped = advance(online_since(at(360)), FAIL, at(0), thresholds)
    assert stepped is not None

    state, held = advance(state, OK, at(5), thresholds)
    assert held is None and state.held is True

    state, applied = advance(state, OK, at(10), thresholds)
    assert applied is not None and applied.at - stepped.at == timedelta(minutes=10)


def test_backwards_clock_without_a_change_keeps_the_stored_timestamp() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=600)
    state, transition = advance(online_since(at(360)), OK, at(0), thresholds)

    assert transition is None
    assert state.last_transition_at == at(360)


# --- bad input ----------------------------------------------------------------------------------


def test_naive_now_is_rejected() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        advance(HostState(), OK, datetime(2024, 3, 1, 12, 0), thresholds)


def test_naive_stored_transition_time_is_rejected() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0)
    state = online_since(datetime(2024, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="last_transition_at"):
        advance(state, OK, T0, thresholds)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"down_after": 0, "up_after": 1, "min_transition_seconds": 0},
        {"down_after": 1, "up_after": 0, "min_transition_seconds": 0},
        {"down_after": 1, "up_after": 1, "min_transition_seconds": -1},
        {"down_after": 1, "up_after": 1, "min_transition_seconds": float("nan")},
    ],
)
def test_invalid_thresholds_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=">= "):
        Thresholds(**kwargs)  # type: ignore[arg-type]


def test_unknown_status_string_is_rejected() -> None:
    thresholds = Thresholds(down_after=1, up_after=1, min_transition_seconds=0)
    with pytest.raises(ValueError, match="sideways"):
        advance(HostState(status="sideways"), OK, T0, thresholds)  # type: ignore[arg-type]


# --- invariants over long random sequences ------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_invariants_hold_over_random_check_sequences(seed: int) -> None:
    rng = random.Random(seed)
    thresholds = Thresholds(
        down_after=rng.randint(1, 4),
        up_after=rng.randint(1, 4),
        min_transition_seconds=rng.choice([0, 30, 60, 300, 900]),
        notify_initial=rng.random() < 0.5,
    )
    bias = rng.random()
    state = HostState()
    now = T0
    last_at: datetime | None = None
    for _ in range(500):
        now += timedelta(seconds=rng.choice([1, 15, 60, 60, 60, 120, 3600]))
        check = rng.random() < bias
        new, transition = advance(state, check, now, thresholds)

        assert new.consecutive_failures >= 0 and new.consecutive_successes >= 0
        assert (new.consecutive_failures == 0) == check
        assert (new.consecutive_successes == 0) != check
        if transition is None:
            assert new.status is state.status
            assert new.last_transition_at == state.last_transition_at
        else:
            assert transition.previous is state.status
            assert transition.current is new.status is not state.status
            assert transition.at == now == new.last_transition_at
            assert transition.notify is (thresholds.notify_initial if last_at is None else True)
            assert transition.streak == max(new.consecutive_failures, new.consecutive_successes)
            if last_at is not None:
                assert now - last_at >= timedelta(seconds=thresholds.min_transition_seconds)
            last_at = now
        assert new.status is not Status.UNKNOWN or last_at is None
        assert not (new.held and transition is not None)
        if new.held:
            streak_says = Status.OFFLINE if not check else Status.ONLINE
            assert streak_says is not new.status
        state = new


def test_run_advance_gives_what_advance_gives_once_per_distinct_state_and_outcome() -> None:
    thresholds = Thresholds(down_after=2, up_after=2, min_transition_seconds=300)
    now = at(10)
    states = [NEW_HOST, HostState(), online_since(T0), online_since(T0), HostState(Status.ONLINE, 1, 0, T0),
              offline_since(at(9)), HostState(Status.OFFLINE, 0, 1, at(9))]
    step = RunAdvance(now, thresholds)
    for state, check in itertools.product(states, (OK, FAIL)):
        assert step(state, check) == advance(state, check, now, thresholds)
    assert step(online_since(T0), FAIL) is step(online_since(T0), FAIL), "equal inputs: one result"
    assert step(HostState(), OK) is step(NEW_HOST, OK)
    assert step(online_since(T0), FAIL) is not step(online_since(T0), OK)
