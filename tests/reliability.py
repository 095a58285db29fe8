"""The reliability matrix: each job, disturbed one way, converges to the state of an undisturbed run.

A cell is one job and one disturbance. It runs the job as a real process (`python -m netwatch run
JOB`) on a MariaDB database of its own, against loopback fakes (tests/fakeapi.py: Segware, Sigma,
the heartbeat and a check target; tests/serviceserver.py for the other HTTP checks), disturbs one
run at a deterministic point, then runs the job again (at most MAX_FOLLOW_UPS times) until the
state equals the reference: the same job undisturbed, on a database of its own. A cell passes when

- the disturbed run ended with the documented exit code (143 for SIGTERM, killed for SIGKILL, 1
  for a delivery fault, 69 for a fault of the window read; 0 or 69 for a database restart, 69
  for a database that is down),
- the runs after it ended with 0 and reached the reference's host / check / alert state, register
  log and outbox (every message sent),
- the receiver (the fake Sigma or Segware alarms API) accepted each event the reference delivered
  exactly once: none lost, none accepted twice under two keys, and no Idempotency-Key reached it
  with two different bodies (a key sent again after a kill is allowed: the receiver answers 409).

Points, each a request the run makes and the fake holds (`FakeApis.hold`), or a row lock, so the
disturbance lands while the run is certainly there; nothing waits on a sleep:
- before commit: ping-sweep's heartbeat `/start` ping (its lease held, nothing swept); http-check's
  request to one check target; event-scan's and alert-clear's window read (GET /v1/events).
- in commit: the run's one transaction has written everything and waits at its last statement, the
  lease fence, because the test holds the lease row (SELECT ... FOR UPDATE); seen in PROCESSLIST.
- after commit: ping-sweep's and http-check's Segware account lookup that locates their events
  (after the state commit, before any delivery request); event-scan's and alert-clear's first
  alarm POST, received and accepted by the fake but not yet answered.
- during delivery: the second delivery POST, once the first one's outcome is stored as sent.

The database cells SIGKILL a private mariadbd (tests/privatedb.py) while the run is at the point:
"db restart" starts it again on the same datadir before the run goes on (the run must cope with a
server that lost its connections and rolled back what was open), "db down" only once the run has
ended (the run meets no database: 69). API faults apply to the disturbed run only: Sigma
(ping-sweep, http-check) or Segware's events read (event-scan, alert-clear) answering 429 with
Retry-After, 503, slower than the timeout, or a closed port (connection refused).

A lease the disturbed run left held (killed, or its database gone when it tried to release it; the
`lease` column) is expired by hand (`jobkit.expire_leases`: what waiting out `run.lease_seconds`
does) before the next run.
"""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fakeapi import FakeApis, Hold
from jobkit import ACCOUNT, TOKEN, Netwatch, expire_leases, wait_until
from privatedb import PrivateMariaDB
from serviceserver import ServiceServer
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import migrate, tables
from netwatch.db.engine import build_engine

MAX_FOLLOW_UPS = 4
BEFORE, IN_COMMIT, AFTER, DURING = "before commit", "in commit", "after commit", "during delivery"
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
FAULTS = ("429 + Retry-After", "503", "slow", "refused")
# The disturbed run of a fault cell: one request's 4 tries (1 s each at most, 3.5 s of backoff) end
# within seconds, with room left for a slow start on a busy machine: a deadline used up before the
# Segware lookup would hold the events back (69) instead of trying Sigma (1).
FAULT_RUN = {"deadline_seconds": 8}
FAULT_TIMEOUT_S = 1
SLOW_S = 2.0
ENV = {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN}


@dataclass(frozen=True)
class Disturbance:
    """`kind` "signal", "db restart", "db down" or "api"; `point` where (not for api), `fault` which."""

    kind: str
    point: str | None = None
    signame: str | None = None
    fault: str | None = None

    @property
    def name(self) -> str:
        if self.kind == "signal":
            return f"{self.signame} {self.point}"
        if self.kind in ("db restart", "db down"):
            return f"{self.kind} {self.point}"
        return f"API {self.fault}"

    @property
    def private_server(self) -> bool:
        """Whether the cell needs a database server of its own (one it kills)."""
        return self.kind in ("db restart", "db down")


DISTURBANCES = (
    [Disturbance("signal", point, signame) for signame in SIGNALS for point in (BEFORE, IN_COMMIT, AFTER, DURING)]
    + [Disturbance(kind, point) for kind in ("db restart", "db down") for point in (BEFORE, IN_COMMIT, DURING)]
    + [Disturbance("api", fault=fault) for fault in FAULTS]
)


@dataclass
class Setting:
    """One cell's world: its netwatch set-up (config, database) and its loopback servers."""

    nw: Netwatch
    fake: FakeApis
    web: ServiceServer
    closed_port: int


@dataclass(frozen=True)
class Snapshot:
    """What a run leaves that an undisturbed run must leave too (no times, no ids, no keys)."""

    state: tuple[Any, ...]
    outbox: tuple[Any, ...]
    accepted: tuple[Any, ...]


class Scenario(ABC):
    """A job's cell script: its config, what runs before the disturbed run, its hooks and its snapshot."""

    job = ""
    lease = ""
    channel = ""  # the outbox channel the receiver gets
    delivery_path = ""
    fault_exit = 0

    @abstractmethod
    def write_config(self, s: Setting, fault: str | None) -> None:
        """The cell's config file; with `fault`, the disturbed run's (short timeouts, a closed port)."""

    @abstractmethod
    def prepare(self, s: Setting) -> None:
        """Undisturbed runs and data before the disturbed run (the same for the reference)."""

    @abstractmethod
    def hold(self, s: Setting, point: str) -> Hold:
        """Holds the request the run makes at `point`."""

    def stops_while_held(self, point: str) -> bool:
        """Whether a stopped run gives up the request held at `point` by itself (the API clients and
        the checks do), so a SIGTERM is sure to land inside it: the hold is released only once the run
        ended. The heartbeat's ping is not given up, and a safe point follows it before any work."""
        return True

    @abstractmethod
    def apply_fault(self, s: Setting, fault: str) -> None:
        """Makes the fakes answer with `fault` (a closed port is the config's)."""

    @abstractmethod
    def clear_fault(self, s: Setting) -> None:
        """The fakes answer normally again."""

    @abstractmethod
    def state(self, nw: Netwatch) -> tuple[Any, ...]:
        """The job's state in the database, without times and ids."""

    @abstractmethod
    def semantic(self, body: Any) -> tuple[Any, ...]:
        """What a delivered body says, without its time: one event's identity for the receiver."""

    def delivery_hold(self, s: Setting, nth: int) -> Hold:
        return s.fake.hold("POST", self.delivery_path, from_request=nth)


def _apis(s: Setting, fault: str | None, api: str) -> dict[str, Any]:
    """segware and sigma sections; the faulty `api` at a closed port or with short timeouts in a fault run."""
    # Long timeouts outside a fault run: a held request waits for its release however busy the machine.
    sections: dict[str, dict[str, Any]] = {"segware": {"base_url": s.fake.url, "timeout_seconds": 20},
                                           "sigma": {"base_url": s.fake.url, "retry_backoff_seconds": 0,
                                                     "timeout_seconds": 20}}
    if fault is not None:
        sections[api]["timeout_seconds"] = FAULT_TIMEOUT_S
        if fault == "refused":
            sections[api]["base_url"] = f"http://127.0.0.1:{s.closed_port}"
    return sections


def _run_section(fault: str | None) -> dict[str, Any]:
    return {"deadline_seconds": 30, **(FAULT_RUN if fault is not None else {})}


class _HostJob(Scenario):
    """ping-sweep and http-check: first-status events to Sigma, some located through Segware after the commit."""

    channel = "sigma"
    delivery_path = "/v1/events"
    fault_exit = 1

    def prepare(self, s: Setting) -> None:
        """Nothing: the disturbed run's first statuses are the events."""

    def apply_fault(self, s: Setting, fault: str) -> None:
        if fault == "429 + Retry-After":
            s.fake.sigma_status, s.fake.sigma_retry_after = 429, "1"
        elif fault == "503":
            s.fake.sigma_status = 503
        elif fault == "slow":
            s.fake.sigma_delay_s = SLOW_S

    def clear_fault(self, s: Setting) -> None:
        s.fake.sigma_status, s.fake.sigma_retry_after, s.fake.sigma_delay_s = None, None, 0.0

    def state(self, nw: Netwatch) -> tuple[Any, ...]:
        names = {t["id"]: t["name"] for t in nw.rows("targets")}
        hosts = sorted((h["name"], h["kind"], h["status"], h["account"], h["partition_code"], h["zone_code"])
                       for h in nw.rows("hosts"))
        transitions = sorted((names[t["target_id"]], t["from_state"], t["to_state"]) for t in nw.rows("transitions"))
        return tuple(hosts), tuple(transitions)

    def semantic(self, body: Any) -> tuple[Any, ...]:
        return (body["type"], body["code"], body["host"]["name"], body["host"]["address"], body["account"],
                body["partition"], body["zone"], body["description"])


# lo-1 is located in the inventory, lo-2 through Segware after the commit, lo-3 has no account.
HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"},
         {"name": "lo-2", "address": "127.0.0.2", "account": "1234"},
         {"name": "lo-3", "address": "127.0.0.3"}]


class PingSweep(_HostJob):
    job = "ping-sweep"
    lease = "ping-sweep:0/1"

    def stops_while_held(self, point: str) -> bool:
        return point != BEFORE

    def write_config(self, s: Setting, fault: str | None) -> None:
        s.nw.write_config(HOSTS, thresholds={"notify_initial": True}, run=_run_section(fault),
                          heartbeat={"url": s.fake.url + "/up/heartbeat/{job}", "timeout_seconds": 30},
                          **_apis(s, fault, "sigma"))

    def hold(self, s: Setting, point: str) -> Hold:
        if point == BEFORE:
            return s.fake.hold("GET", "/up/heartbeat/ping-sweep/start")  # before the sweep
        if point == AFTER:
            return s.fake.hold("GET", "/v1/accounts/")
        return self.delivery_hold(s, 2)


class HttpCheck(_HostJob):
    job = "http-check"
    lease = "http-check:0/1"

    def write_config(self, s: Setting, fault: str | None) -> None:
        checks = [{"name": "shop", "url": s.web.url + "/switch/shop", "client": "Acme", "timeout_seconds": 3},
                  {"name": "api", "url": s.web.url + "/ok", "client": "Acme", "account": "1234"},
                  {"name": "web", "url": s.fake.url + "/up/web", "account": "1234", "timeout_seconds": 30}]
        s.web.switch["shop"] = 503  # first confirmed status: down
        path = s.nw.write_config([], thresholds={"notify_initial": True}, run=_run_section(fault),
                                 **_apis(s, fault, "sigma"))
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump({**config, "http_checks": checks}), encoding="utf-8")

    def hold(self, s: Setting, point: str) -> Hold:
        if point == BEFORE:
            return s.fake.hold("GET", "/up/web")
        if point == AFTER:
            return s.fake.hold("GET", "/v1/accounts/")
        return self.delivery_hold(s, 2)


def window_events(cuc: str, zone: str, count: int) -> list[dict[str, Any]]:
    """`count` E130 events of one group over the last 30 minutes."""
    now = datetime.now(UTC)
    return [{"id": f"{cuc}-{n}", "account": "1234", "cuc": cuc, "code": "E130", "partition": "01", "zone": zone,
             "receivedAt": (now - timedelta(minutes=30) + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
            for n in range(count)]


class _AlertJob(Scenario):
    """event-scan and alert-clear: two alert groups, each raised (then cleared) as a Segware alarm."""

    lease = "alert-volume:0/1"
    channel = "segware_alarm"
    delivery_path = "/v1/alarms"
    fault_exit = 69

    def write_config(self, s: Setting, fault: str | None) -> None:
        s.nw.write_config([], event_scan={"codes": {"E130": 10}, "page_size": 100}, run=_run_section(fault),
                          notifications={"retry_backoff_seconds": 0,
                                         "segware_alarm": {"enabled": True, "code": "E900", "recovery_code": "R900",
                                                           "send_recovery": True, "cooldown_seconds": 0}},
                          **_apis(s, fault, "segware"))

    def raise_alerts(self, s: Setting) -> None:
        s.fake.events = window_events("CUC-1", "001", 12) + window_events("CUC-2", "002", 12)

    def hold(self, s: Setting, point: str) -> Hold:
        if point == BEFORE:
            return s.fake.hold("GET", "/v1/events")
        return self.delivery_hold(s, 1 if point == AFTER else 2)

    def apply_fault(self, s: Setting, fault: str) -> None:
        if fault == "429 + Retry-After":
            s.fake.events_status, s.fake.events_retry_after = 429, "1"
        elif fault == "503":
            s.fake.events_status = 503
        elif fault == "slow":
            s.fake.events_delay_s = SLOW_S

    def clear_fault(self, s: Setting) -> None:
        s.fake.events_status, s.fake.events_retry_after, s.fake.events_delay_s = None, None, 0.0

    def state(self, nw: Netwatch) -> tuple[Any, ...]:
        triggers = sorted((t["account"], t["cuc"], t["code"], t["status"], t["generation"], t["count"],
                           t["clear_reason"], t["account_name"], t["partition_code"], t["zone_code"])
                          for t in nw.rows("triggers"))
        log = sorted((e["action"], e["cuc"], e["generation"], e["count"], e["reason"]) for e in nw.rows("register_log"))
        return tuple(triggers), tuple(log)

    def semantic(self, body: Any) -> tuple[Any, ...]:
        return body["code"], body["account"], body["partition"], body["zone"], body["description"]


class EventScan(_AlertJob):
    job = "event-scan"

    def prepare(self, s: Setting) -> None:
        self.raise_alerts(s)


class AlertClear(_AlertJob):
    job = "alert-clear"

    def prepare(self, s: Setting) -> None:
        self.raise_alerts(s)
        done = s.nw.run("run", "event-scan")
        assert done.returncode == 0, done.stderr
        s.fake.events = []  # both groups fall below their threshold: alert-clear clears them


SCENARIOS: dict[str, Scenario] = {s.job: s for s in (PingSweep(), HttpCheck(), EventScan(), AlertClear())}


@dataclass
class CellResult:
    """One cell's line: the disturbed run's exit code and lease, runs until converged, delivery counts."""

    job: str
    disturbance: str
    disturbed_exit: int | None = None
    lease_left: bool = False
    runs_to_converge: int | None = None
    expected: int = 0
    delivered: int = 0
    resent_keys: int = 0
    two_body_keys: int = 0
    duplicate_events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        runs = "-" if self.runs_to_converge is None else str(self.runs_to_converge)
        verdict = "ok" if self.ok else "FAIL: " + "; ".join(self.problems)
        return (f"{self.job:<12} {self.disturbance:<26} {self.disturbed_exit!s:>5} "
                f"{'left' if self.lease_left else 'freed':<6} {runs:>5} "
                f"{self.expected:>4}/{self.delivered:<4} {self.resent_keys:>6} {self.two_body_keys:>10} "
                f"{self.duplicate_events:>10}  {verdict}")


HEADER = (f"{'job':<12} {'disturbance':<26} {'exit':>5} {'lease':<6} {'runs':>5} {'exp/dlv':<9} {'resent':>6} "
          f"{'two-bodies':>10} {'duplicates':>10}  verdict")


def matrix_table(results: list[CellResult]) -> str:
    """The printed matrix: a header, one line per cell, and the totals."""
    failed = sum(1 for r in results if not r.ok)
    return "\n".join([HEADER, *(r.line() for r in results),
                      f"{len(results)} cells, {len(results) - failed} converged, {failed} failed"])


def expected_exits(scenario: Scenario, disturbance: Disturbance) -> set[int]:
    if disturbance.kind == "signal":
        return {143} if disturbance.signame == "SIGTERM" else {-signal.SIGKILL}
    if disturbance.kind == "db restart":
        return {0, 69}
    if disturbance.kind == "db down":
        return {69}
    return {scenario.fault_exit}


_names = itertools.count()


@dataclass
class Databases:
    """Where cells get their databases: `shared(name)` on the shared server, `private` for restarts."""

    shared: Callable[[str], str]
    prefix: str
    private: PrivateMariaDB | None = None  # needed by the cells that kill the database server

    def server(self) -> PrivateMariaDB:
        assert self.private is not None, "a database server cell needs a private MariaDB server"
        return self.private

    def new(self, on_private: bool) -> str:
        name = f"{self.prefix}_{next(_names)}"
        if on_private:
            url = self.server().create_database(name)
        else:
            url = self.shared(name)
        engine = build_engine(url)
        try:
            with engine.begin() as conn:
                migrate.upgrade(conn, datetime.now(UTC))
        finally:
            engine.dispose()
        return url


@contextmanager
def _setting(scenario: Scenario, tmp_path: Path, db_url: str) -> Iterator[Setting]:
    with ExitStack() as stack:
        fake = stack.enter_context(FakeApis(accounts={"1234": ACCOUNT}, token=TOKEN))
        web = stack.enter_context(ServiceServer())
        tmp_path.mkdir(parents=True, exist_ok=True)
        s = Setting(Netwatch(tmp_path, db_url, dict(ENV)), fake, web, _closed_port())
        scenario.write_config(s, None)
        yield s


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _neutral(value: Any, s: Setting) -> Any:
    """`value` with the cell's own server addresses (ports the system picked) named instead."""
    if isinstance(value, tuple):
        return tuple(_neutral(v, s) for v in value)
    if isinstance(value, str):
        return value.replace(s.fake.url, "<fake>").replace(s.web.url, "<web>")
    return value


def snapshot(scenario: Scenario, s: Setting) -> Snapshot:
    outbox = sorted((i.channel, str(i.kind), i.subject, i.status) for i in s.nw.outbox())
    accepted = sorted(scenario.semantic(r.body) for r in s.fake.requests_to("POST", scenario.delivery_path)
                      if r.status == 201)
    return Snapshot(_neutral(scenario.state(s.nw), s), _neutral(tuple(outbox), s), _neutral(tuple(accepted), s))


def reference(scenario: Scenario, tmp_path: Path, db_url: str) -> Snapshot:
    """The undisturbed run's snapshot (a second run must change nothing)."""
    with _setting(scenario, tmp_path, db_url) as s:
        scenario.prepare(s)
        first = s.nw.run("run", scenario.job)
        assert first.returncode == 0, first.stderr
        after_one = snapshot(scenario, s)
        again = s.nw.run("run", scenario.job)
        assert again.returncode == 0, again.stderr
        assert snapshot(scenario, s) == after_one, "an undisturbed second run changed the state"
        return after_one


def _wait_for_due(nw: Netwatch) -> None:
    """Waits (bounded) until no pending message waits for a later attempt (a Retry-After)."""
    def due() -> bool:
        now = datetime.now(UTC)
        return all(i.next_attempt_at is None or i.next_attempt_at <= now for i in nw.outbox() if i.status == "pending")
    wait_until(due, "the pending messages due again", timeout=30)


def _sent(scenario: Scenario, s: Setting) -> int:
    return sum(1 for i in s.nw.outbox() if i.channel == scenario.channel and i.status == "sent")


def _reap(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


class _RowLock:
    """A transaction holding the lease row (SELECT ... FOR UPDATE) until `release`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._done = False

    def release(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._conn.rollback()
        except SQLAlchemyError:
            pass  # the server was restarted under it: the lock went with it


@contextmanager
def _lease_row_locked(db_url: str, lease: str) -> Iterator[_RowLock]:
    """Holds `lease`'s row, so a run's transaction waits at its fence (the lease renewal inside it, its
    last statement before COMMIT) with all its writes made: "in commit"."""
    engine = build_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.begin()
            conn.execute(select(tables.leases).where(tables.leases.c.name == lease).with_for_update())
            lock = _RowLock(conn)
            try:
                yield lock
            finally:
                lock.release()
    finally:
        engine.dispose()


def _fence_waiting(db_url: str) -> bool:
    """Whether a statement renewing a lease waits in this database: with the row held, only for us.

    PROCESSLIST, not INNODB_TRX: it needs no PROCESS privilege for the user's own connections. The
    lease's own renewal thread runs every `run.lease_seconds` / 3 (40 s), far from a cell's run.
    """
    engine = build_engine(db_url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND INFO LIKE 'UPDATE leases%'")).scalar_one())
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _disturbed_run(scenario: Scenario, disturbance: Disturbance, s: Setting, databases: Databases) -> tuple[int, str]:
    """Runs the job once under `disturbance`; returns its exit code (negative: the signal that killed it) and stderr."""
    if disturbance.kind == "api":
        assert disturbance.fault is not None
        scenario.write_config(s, disturbance.fault)
        scenario.apply_fault(s, disturbance.fault)
        try:
            done = s.nw.run("run", scenario.job)
        finally:
            scenario.clear_fault(s)
            scenario.write_config(s, None)
        return done.returncode, done.stderr
    assert disturbance.point is not None
    sent_before = _sent(scenario, s)
    held = scenario.hold(s, BEFORE if disturbance.point == IN_COMMIT else disturbance.point)
    running = s.nw.start("run", scenario.job)
    stderr: str | None = None
    with ExitStack() as cleanup:
        cleanup.callback(held.release)
        cleanup.callback(_reap, running)
        if disturbance.kind == "db down":
            cleanup.callback(databases.server().start)
        held.wait_arrived()
        lock = None
        if disturbance.point == IN_COMMIT:
            lock = cleanup.enter_context(_lease_row_locked(s.nw.db_url, scenario.lease))
            held.release()
            wait_until(lambda: _fence_waiting(s.nw.db_url), "the run's transaction waiting to fence its lease")
        if disturbance.point == DURING:
            wait_until(lambda: _sent(scenario, s) > sent_before, "the run's first delivery outcome stored as sent")
        if disturbance.kind == "signal":
            assert disturbance.signame is not None
            running.send_signal(SIGNALS[disturbance.signame])
            if lock is None and scenario.stops_while_held(disturbance.point):
                _, stderr = running.communicate(timeout=60)
        elif disturbance.kind == "db restart":
            databases.server().restart()
        else:
            databases.server().kill()
        if lock is not None:
            lock.release()
        held.release()
        if stderr is None:
            _, stderr = running.communicate(timeout=60)
    return running.returncode, stderr or ""


def _expire_left_leases(nw: Netwatch) -> bool:
    """Expires the leases a finished run left held (killed, or its database gone when it ended);
    what waiting out `run.lease_seconds` does. Whether there were any."""
    if not any(row["holder"] for row in nw.rows("leases")):
        return False
    engine = nw.engine()
    try:
        expire_leases(engine)
    finally:
        engine.dispose()
    return True


def run_cell(scenario: Scenario, disturbance: Disturbance, tmp_path: Path, databases: Databases,
             ref: Snapshot) -> CellResult:
    """One cell: the disturbed run, then runs until the snapshot equals `ref` (at most MAX_FOLLOW_UPS)."""
    result = CellResult(scenario.job, disturbance.name, expected=len(ref.accepted))
    db_url = databases.new(on_private=disturbance.private_server)
    with _setting(scenario, tmp_path, db_url) as s:
        scenario.prepare(s)
        result.disturbed_exit, stderr = _disturbed_run(scenario, disturbance, s, databases)
        result.lease_left = _expire_left_leases(s.nw)
        if "Traceback" in stderr:
            result.problems.append(f"the disturbed run logged a traceback: {stderr[-300:]!r}")
        if result.disturbed_exit not in expected_exits(scenario, disturbance):
            result.problems.append(f"disturbed run exited {result.disturbed_exit}, expected "
                                   f"{sorted(expected_exits(scenario, disturbance))}")
        now = snapshot(scenario, s)
        for runs in range(MAX_FOLLOW_UPS + 1):
            if now == ref:
                result.runs_to_converge = runs
                break
            if runs == MAX_FOLLOW_UPS:
                break
            _wait_for_due(s.nw)
            done = s.nw.run("run", scenario.job)
            if done.returncode != 0:
                result.problems.append(f"follow-up run {runs + 1} exited {done.returncode}: "
                                       f"{done.stderr.strip().splitlines()[-1:]}")
            now = snapshot(scenario, s)
        _judge(scenario, s, ref, now, result)
    return result


def _judge(scenario: Scenario, s: Setting, ref: Snapshot, now: Snapshot, result: CellResult) -> None:
    posts = s.fake.requests_to("POST", scenario.delivery_path)
    accepted = [r for r in posts if r.status == 201]
    result.delivered = len(accepted)
    per_key = s.fake.posts_per_key(scenario.delivery_path)
    result.resent_keys = sum(1 for count in per_key.values() if count > 1)
    result.two_body_keys = sum(1 for key in per_key
                               if len(set(s.fake.raw_bodies_of(key, scenario.delivery_path))) > 1)
    by_event = Counter(_neutral(scenario.semantic(r.body), s) for r in accepted)
    result.duplicate_events = sum(count - 1 for count in by_event.values() if count > 1)
    if result.runs_to_converge is None:
        for part in ("state", "outbox", "accepted"):
            if getattr(now, part) != getattr(ref, part):
                result.problems.append(f"{part} differs from the undisturbed run's after {MAX_FOLLOW_UPS} runs: "
                                       f"{getattr(now, part)} != {getattr(ref, part)}")
    lost = Counter(ref.accepted) - by_event
    if lost:
        result.problems.append(f"events lost: {sorted(lost)}")
    if result.two_body_keys:
        result.problems.append(f"{result.two_body_keys} idempotency key(s) sent with two different bodies")
    if result.duplicate_events:
        result.problems.append(f"{result.duplicate_events} event(s) accepted twice under different keys")


def all_cells() -> list[tuple[str, Disturbance]]:
    return [(job, d) for job in SCENARIOS for d in DISTURBANCES]
