"""`held_since` and `held_s`: when a held change first became held, and how long it waited (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from netwatch.core.hoststate import HostState, Status, Thresholds, advance, moved

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HOLD = Thresholds(down_after=1, up_after=1, min_transition_seconds=600)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def online_at(seconds: float) -> HostState:
    return HostState(status=Status.ONLINE, consecutive_successes=3, last_transition_at=at(seconds))


def test_held_since_is_set_when_the_change_first_becomes_held_and_kept_while_it_stays() -> None:
    state, _ = advance(online_at(0), False, at(60), HOLD)
    assert (state.held, state.held_since) == (True, at(60))
    state, _ = advance(state, False, at(120), HOLD)
    assert (state.held, state.held_since) == (True, at(60))


def test_the_applied_change_reports_how_long_it_was_held() -> None:
    state, _ = advance(online_at(0), False, at(60), HOLD)
    state, transition = advance(state, False, at(600), HOLD)
    assert transition is not None and transition.held_s == 540
    assert (state.held, state.held_since) == (False, None)


def test_a_change_never_held_reports_zero() -> None:
    _, transition = advance(online_at(-3600), False, at(0), HOLD)
    assert transition is not None and transition.held_s == 0


def test_a_contrary_check_clears_held_since_and_a_later_hold_starts_anew() -> None:
    state, _ = advance(online_at(0), False, at(60), HOLD)
    state, _ = advance(state, True, at(120), HOLD)
    assert (state.held, state.held_since) == (False, None)
    state, _ = advance(state, False, at(300), HOLD)
    assert state.held_since == at(300)
    _, transition = advance(state, False, at(660), HOLD)
    assert transition is not None and transition.held_s == 360


def test_a_moved_host_loses_its_held_change() -> None:
    state, _ = advance(online_at(0), False, at(60), HOLD)
    assert moved(state).held_since is None


def test_a_clock_gone_back_reports_zero_not_a_negative_hold() -> None:
    held = replace(online_at(-3600), consecutive_successes=0, consecutive_failures=1, held=True,
                   held_since=at(600), last_transition_at=at(-3600))
    _, transition = advance(held, False, at(0), HOLD)
    assert transition is not None and transition.held_s == 0


def test_a_held_state_stored_without_held_since_starts_its_hold_now() -> None:
    legacy = replace(online_at(0), consecutive_successes=0, consecutive_failures=1, held=True)
    state, _ = advance(legacy, False, at(60), HOLD)
    assert state.held_since == at(60)


def test_a_new_host_is_never_held() -> None:
    state, transition = advance(HostState(), False, at(0), HOLD)
    assert transition is not None and transition.held_s == 0 and state.held_since is None
