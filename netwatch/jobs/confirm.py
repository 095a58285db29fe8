"""What a checking job (ping-sweep, http-check) does with one pass's results, inside its transaction.

Each subject's check advances its threshold state (netwatch/core/hoststate.py); the job's rows of
`hosts` are upserted, the rows of its kinds that left the inventory removed, the checks,
transitions and rollups written to history, and every confirmed change queued as a Sigma event
and as notifications. A fixed number of statements, whatever the number of subjects. The two jobs
differ only in what they check and in how they tell about a change (`Voice`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from netwatch.clients import sigma
from netwatch.clients.sigma import SigmaEvent
from netwatch.collector import collector_paused
from netwatch.config import Config
from netwatch.core import rollup
from netwatch.core.checks import CheckResult
from netwatch.core.history import check_entry
from netwatch.core.hoststate import NEW_HOST, HostState, RunAdvance, Status, Transition, moved
from netwatch.db import history, outbox
from netwatch.db.hosts import NO_ANSWER, HostRow, LastAnswer, StoredHost, delete_hosts, load_host_states, save_hosts
from netwatch.db.outbox import OutboxItem
from netwatch.db.rollups import update_rollups
from netwatch.delivery.dispatch import dispatch
from netwatch.delivery.notices import Notice, queue_notices
from netwatch.delivery.sigma import CHANNEL
from netwatch.deps import Deps
from netwatch.running.runner import JobOutcome, RunContext
from netwatch.shard import Shard

log = logging.getLogger(__name__)

_LOGGED_NAMES = 10  # removed subjects named in the log line; the count is always complete


@dataclass(frozen=True)
class Subject:
    """One thing a pass checks, as its inventory gives it; `kind` is host, http or tcp (netwatch.db.hosts)."""

    name: str
    address: str
    account: str | None
    partition: str | None = None
    zone: str | None = None
    kind: str = "host"
    client: str | None = None


@dataclass(frozen=True)
class Voice:
    """How a job tells about its subjects' changes.

    `noun` names a subject in log lines ("host", "check"); `codes` gives the Sigma code of an
    offline and of an online change; `description` the event's text; `change` the notice of a
    confirmed change (with the check that confirmed it); `removal` the notice of a subject removed
    from the inventory while offline (its incident ends without a recovery).
    """

    noun: str
    codes: tuple[str, str]
    description: Callable[[Subject, Transition, CheckResult], str]
    change: Callable[[Subject, Transition, CheckResult, str], Notice]
    removal: Callable[[str, StoredHost, datetime, str], Notice]


@dataclass(frozen=True)
class Committed:
    """What a pass's transaction wrote: confirmed changes, removed subjects, events and notifications queued."""

    transitions: int
    removed: int
    events: list[OutboxItem]
    notifications: int


def commit_pass(conn: Connection, subjects: list[Subject], checks: Mapping[str, CheckResult], kinds: Collection[str],
                shard: Shard, voice: Voice, config: Config, has_sink: bool, run: RunContext,
                answers: Mapping[str, LastAnswer] | None = None) -> Committed:
    """States, removals, history, events and notifications of one pass, on `conn` (the caller commits).

    `answers`: the last answer of each subject that has one (HTTP checks), stored with its state.
    """
    previous = load_host_states(conn, kinds)
    rows, applied = _advance_all(subjects, checks, answers or {}, previous, voice, config, run)
    changes = [(subject, transition) for subject, transition in applied if transition.notify]
    save_hosts(conn, rows, previous)
    departed = _remove_departed(conn, previous, subjects, kinds, shard, voice)
    _write_history(conn, subjects, checks, previous, rows, applied, departed, config, run)
    events = [_event_item(subject, transition, checks[subject.name], voice, has_sink, run)
              for subject, transition in changes]
    outbox.enqueue(conn, events)
    notices = [voice.change(subject, transition, checks[subject.name], event_key(subject.name, transition))
               for subject, transition in changes]
    notices += [voice.removal(name, previous[name], run.now, removal_key(name, run.now)) for name in departed
                if previous[name].state.status is Status.OFFLINE]
    queued = queue_notices(conn, notices, config.notifications, run.now, run.run_id)
    return Committed(len(applied), len(departed), events, queued)


def finish_pass(deps: Deps, config: Config, run: RunContext, shard: Shard, subjects: list[Subject],
                checks: Mapping[str, CheckResult], kinds: Collection[str], voice: Voice, counts: Mapping[str, int],
                answers: Mapping[str, LastAnswer] | None = None) -> JobOutcome:
    """Commits a pass (commit_pass, fenced by the lease), then delivers what is due; the run's outcome
    with `counts` (what the job checked), the pass's own counts and `commit_ms`: the transaction's
    milliseconds, from its first statement to its COMMIT done."""
    began = time.perf_counter()
    # The transaction's rows, check entries and tallies (about 100,000 objects at 10,000 hosts) live
    # until it ends: a collection inside would free next to nothing, yet walk them all, 25-50 ms a time
    # with SQLite's write lock held.
    with collector_paused(), deps.engine.begin() as conn:
        committed = commit_pass(conn, subjects, checks, kinds, shard, voice, config, deps.sigma is not None, run,
                                answers)
        deps.stop.check()
        run.lease.fence(conn)
    commit_ms = round((time.perf_counter() - began) * 1000)
    log_undelivered(committed.events, voice.noun)
    statuses = Counter(check.status for check in checks.values())
    return dispatch(deps, config, run.now).outcome({
        **counts,
        "ok": statuses["ok"],
        "degraded": statuses["degraded"],
        "failed": statuses["failed"],
        "transitions": committed.transitions,
        "removed": committed.removed,
        "events": len(committed.events),
        "notifications": committed.notifications,
        "commit_ms": commit_ms,
    })


def log_undelivered(events: Iterable[OutboxItem], noun: str) -> None:
    """A warning per event that no sink will ever receive (no Sigma API configured)."""
    for event in events:
        if event.status == outbox.UNDELIVERED:
            log.warning("undelivered: no sink configured", extra={"fields": {noun: event.subject, "type": event.kind}})


def departed_names(stored: Iterable[str], inventory: Collection[str], shard: Shard) -> list[str]:
    """Stored subjects of this shard that the inventory no longer lists, sorted.

    Another shard's subjects are never returned: that shard alone decides about them.
    """
    return sorted(name for name in stored if shard.owns(name) and name not in inventory)


def event_key(name: str, transition: Transition) -> str:
    """Stable across retries and runs: the subject, the change and when it was confirmed."""
    kind = sigma.HOST_OFFLINE if transition.current is Status.OFFLINE else sigma.HOST_ONLINE
    return "nw-" + hashlib.sha256(f"{name}|{kind}|{transition.at.isoformat()}".encode()).hexdigest()[:40]


def removal_key(name: str, now: datetime) -> str:
    return "nw-" + hashlib.sha256(f"{name}|removed|{now.isoformat()}".encode()).hexdigest()[:40]


def _remove_departed(conn: Connection, previous: Mapping[str, StoredHost], subjects: list[Subject],
                     kinds: Collection[str], shard: Shard, voice: Voice) -> list[str]:
    """Deletes the state of subjects gone from the inventory (returned); their history and events stay."""
    departed = departed_names(previous, {subject.name for subject in subjects}, shard)
    if not departed:
        return []
    removed = delete_hosts(conn, departed, kinds)
    shown = ", ".join(departed[:_LOGGED_NAMES]) + (", ..." if len(departed) > _LOGGED_NAMES else "")
    log.info("removed %d %ss no longer in the inventory: %s", removed, voice.noun, shown)
    return departed


def _advance_all(
    subjects: list[Subject], checks: Mapping[str, CheckResult], answers: Mapping[str, LastAnswer],
    previous: Mapping[str, StoredHost], voice: Voice, config: Config, run: RunContext,
) -> tuple[list[HostRow], list[tuple[Subject, Transition]]]:
    """Every subject's new row (in the order of `subjects`), and every confirmed change with its subject."""
    rows: list[HostRow] = []
    changes: list[tuple[Subject, Transition]] = []
    step = RunAdvance(run.now, config.thresholds)
    for subject in subjects:
        check = checks[subject.name]
        state, transition = step(_start_state(subject, previous.get(subject.name), voice), check.check_ok)
        # The status as it is (a StrEnum is its text): no str() per host.
        rows.append(HostRow(name=subject.name, address=subject.address, account=subject.account,
                            partition=subject.partition, zone=subject.zone, state=state, last_check_at=run.now,
                            last_check_status=check.status, last_run_id=run.run_id, kind=subject.kind,
                            client=subject.client, answer=answers.get(subject.name, NO_ANSWER)))
        if transition is not None:
            level = logging.DEBUG if transition.initial else logging.INFO
            log.log(level, "%s %s is %s (was %s)", voice.noun, subject.name, transition.current, transition.previous)
            changes.append((subject, transition))
    return rows, changes


def _start_state(subject: Subject, stored: StoredHost | None, voice: Voice) -> HostState:
    """The stored state, with its streaks started over when the subject's address changed."""
    if stored is None:
        return NEW_HOST
    if stored.address != subject.address:
        log.info("%s %s moved from %s to %s: its check streaks start over", voice.noun, subject.name, stored.address,
                 subject.address)
        return moved(stored.state)
    return stored.state


def _write_history(conn: Connection, subjects: list[Subject], checks: Mapping[str, CheckResult],
                   previous: Mapping[str, StoredHost], rows: list[HostRow],
                   applied: list[tuple[Subject, Transition]], departed: list[str], config: Config,
                   run: RunContext) -> None:
    """The pass's raw checks, confirmed changes (removals among them) and rollups.

    A subject that already has a check at this second (the clock stepped back onto an earlier run)
    keeps that one: its new check updates its state but not its history.
    """
    now_s = _epoch(run.now)
    known = {name: stored.target_id for name, stored in previous.items() if stored.target_id is not None}
    ids = history.target_ids(conn, [subject.name for subject in subjects] + departed, run.now, known)
    taken = history.checked_targets(conn, now_s)
    last_checks = {ids[s.name]: _epoch(previous[s.name].last_check_at) if s.name in previous else None
                   for s in subjects}
    entries = []
    for subject, row in zip(subjects, rows, strict=True):
        stored = previous.get(subject.name)
        if ids[subject.name] in taken:
            continue
        entries.append(check_entry(ids[subject.name], now_s, last_checks[ids[subject.name]],
                                   stored.state.status if stored else Status.UNKNOWN, row.state.status,
                                   checks[subject.name], config.history.gap_limit_seconds))
    errors = history.error_ids(conn, {entry.error for entry in entries if entry.error is not None})
    history.insert_checks(conn, entries, errors)
    state = rollup.STATE_CODES
    changes = [history.TransitionRow(ids[s.name], t.at, state[str(t.previous)], state[str(t.current)], t.streak,
                                     t.held_s, run.run_id, event_key(s.name, t) if t.notify else None)
               for s, t in applied]
    changes += [history.TransitionRow(ids[name], run.now, state[str(previous[name].state.status)], state["unknown"],
                                      0, 0, run.run_id, None)
                for name in departed if previous[name].state.status is not Status.UNKNOWN]
    history.insert_transitions(conn, changes)
    update_rollups(conn, entries, last_checks)


def _epoch(at: datetime) -> int:
    """Whole epoch seconds, as the history tables store times (floor)."""
    return math.floor(at.timestamp())


def _event_item(subject: Subject, transition: Transition, check: CheckResult, voice: Voice, has_sink: bool,
                run: RunContext) -> OutboxItem:
    offline = transition.current is Status.OFFLINE
    event = SigmaEvent(
        account=subject.account,
        partition=subject.partition,
        zone=subject.zone,
        code=voice.codes[0] if offline else voice.codes[1],
        type=sigma.HOST_OFFLINE if offline else sigma.HOST_ONLINE,
        host_name=subject.name,
        host_address=subject.address,
        occurred_at=transition.at,
        description=voice.description(subject, transition, check),
    )
    return OutboxItem(
        id=None,
        channel=CHANNEL,
        idempotency_key=event_key(subject.name, transition),
        kind=event.type,
        subject=subject.name,
        payload=event.body(),
        status=outbox.PENDING if has_sink else outbox.UNDELIVERED,
        attempts=0,
        http_status=None,
        last_error=None if has_sink else "no sink configured",
        next_attempt_at=None,
        created_at=run.now,
        updated_at=run.now,
        delivered_at=None,
        run_id=run.run_id,
    )
