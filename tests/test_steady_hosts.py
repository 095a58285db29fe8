"""A ping-sweep run writes only the host rows that changed: the steady ones get one set-based UPDATE.

On SQLite and MariaDB, in-process with a planned sweep and a hand-set clock. The hosts table after
each run is compared, as the driver returns it (no type processing), with the rows a full upsert of
every host writes, those rows computed from the pure threshold state machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inproc import PlannedSweep, sweep_counting
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from netwatch.config import Config, parse_config
from netwatch.core.hoststate import HostState, Status, advance, moved
from netwatch.db import tables
from netwatch.db.hosts import (
    KINDS,
    HostRow,
    LastAnswer,
    StoredHost,
    is_steady,
    list_hosts,
    load_host_states,
    save_hosts,
)

START = datetime(2026, 11, 22, 10, 0, 0, 250_000, tzinfo=UTC)  # a fraction of a second: stored to the microsecond
THRESHOLDS = {"down_after": 2, "up_after": 2, "min_transition_seconds": 150}


def _hosts(count: int, moved_host: int | None = None, account: str = "1000") -> list[dict[str, str]]:
    return [{"name": f"h{i:03d}", "address": f"127.7.{i // 250}.{i % 250 + (100 if i == moved_host else 1)}",
             "account": account if i == 1 else "1000", "partition": "01", "zone": f"{i % 7:03d}"}
            for i in range(count)]


def _config(db_url: str, tmp_path: Path, hosts: list[dict[str, str]]) -> Config:
    return parse_config({"database": {"url": db_url}, "hosts": hosts, "thresholds": THRESHOLDS}, "test", tmp_path, {})


@dataclass
class Expected:
    """The hosts rows a full upsert of every host writes, from the pure state machine."""

    rows: dict[str, HostRow]

    def run(self, hosts: list[dict[str, str]], down: set[str], now: datetime, run_id: int) -> None:
        kept = {}
        for host in hosts:
            old = self.rows.get(host["name"])
            state = HostState() if old is None else old.state
            if old is not None and old.address != host["address"]:
                state = moved(state)
            up = host["name"] not in down
            state, _ = advance(state, up, now, parse_config({"thresholds": THRESHOLDS}, "t", Path(), {}).thresholds)
            kept[host["name"]] = HostRow(host["name"], host["address"], host["account"], host["partition"],
                                         host["zone"], state, now, "ok" if up else "failed", run_id)
        self.rows = kept


def _raw_hosts(engine: Engine) -> list[tuple[Any, ...]]:
    """The hosts table as the driver returns it, ordered by name."""
    with engine.begin() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT * FROM hosts ORDER BY name"))]


def _as_full_upsert(engine: Engine, rows: Sequence[HostRow]) -> list[tuple[Any, ...]]:
    """The table as the full upsert of `rows` writes it, over the same stored rows: every row takes
    the upsert path (no stored state given), then the table is read raw."""
    with engine.begin() as conn:
        conn.execute(tables.hosts.delete())
        save_hosts(conn, rows)
    return _raw_hosts(engine)


def _last_run_id(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(conn.execute(select(tables.job_runs.c.id).order_by(tables.job_runs.c.id.desc()).limit(1))
                   .scalar_one())


def test_the_table_after_runs_of_steady_and_changed_hosts_is_what_full_upserts_write(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    plan = PlannedSweep()
    expected = Expected({})
    # (inventory, hosts down) per run, a minute apart: confirmed changes, a held change (150 s),
    # a flap that resets a streak, a moved address, a changed account, a removal and an addition.
    steps = [
        (_hosts(12), set()),
        (_hosts(12), set()),
        (_hosts(12), {"h002", "h003"}),
        (_hosts(12), {"h002", "h003"}),
        (_hosts(12, moved_host=4), {"h002"}),
        (_hosts(12, account="2000"), {"h002", "h005"}),
        (_hosts(11), {"h002"}),
        (_hosts(13), {"h002", "h003"}),
        (_hosts(13), set()),
        (_hosts(13), set()),
        (_hosts(13), set()),
    ]
    for minute, (hosts, down) in enumerate(steps):
        now = START + timedelta(minutes=minute)
        plan.down = set(down)
        sweep_counting(_config(db_url, tmp_path, hosts), now, plan)
        expected.run(hosts, down, now, _last_run_id(engine))
        written = _raw_hosts(engine)
        assert written == _as_full_upsert(engine, list(expected.rows.values())), f"run {minute + 1}"
    with engine.connect() as conn:
        statuses = {row.name: (row.state.status, row.state.consecutive_successes) for row in list_hosts(conn)}
    assert statuses["h000"] == (Status.ONLINE, 11), "the streak `netwatch status` shows keeps counting"


@contextmanager
def upserted_host_rows(engine: Engine, found: list[int]) -> Iterator[None]:
    """Appends to `found` the number of rows in each INSERT into `hosts` sent while inside (an executemany's rows)."""

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO HOSTS"):
            found.append(len(parameters) if executemany else 1)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _sweep_watching(config: Config, plan: PlannedSweep, now: datetime) -> tuple[int, list[int]]:
    """One run at `now`: its statements and the rows of its upserts of hosts."""
    rows: list[int] = []
    return sweep_counting(config, now, plan, watch=lambda engine: upserted_host_rows(engine, rows)), rows


def test_a_steady_run_upserts_no_host_row_and_a_change_upserts_only_its_own(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    plan = PlannedSweep()
    plan.set_down("h001")
    config = _config(db_url, tmp_path, _hosts(20))
    for minute in range(4):  # new, then the streaks confirm, then steady
        _sweep_watching(config, plan, START + timedelta(minutes=minute))
    _, steady = _sweep_watching(config, plan, START + timedelta(minutes=4))
    plan.set_up("h001")
    _, one_changed = _sweep_watching(config, plan, START + timedelta(minutes=5))
    assert steady == []
    assert one_changed == [1]


def test_steady_runs_send_the_same_statements_at_20_and_200_hosts(db_url: str, engine: Engine,
                                                                    tmp_path: Path) -> None:
    counts = {}
    for count in (20, 200):
        plan = PlannedSweep()
        plan.set_down(*[f"h{i:03d}" for i in range(0, count, 3)])  # a third steady offline, counting failures
        config = _config(db_url, tmp_path, _hosts(count))
        for minute in range(4):
            _sweep_watching(config, plan, START + timedelta(minutes=minute))
        counts[count] = _sweep_watching(config, plan, START + timedelta(minutes=4))
        with engine.begin() as conn:
            for table in reversed(tables.metadata.sorted_tables):
                if table is not tables.schema_version:
                    conn.execute(table.delete())
    assert counts[20] == counts[200], counts
    assert counts[20][1] == [], "no host row upserted in a steady run"


def test_states_load_with_the_values_the_column_types_give(engine: Engine) -> None:
    times = [datetime(2026, 11, 22, 10, 0, tzinfo=UTC), datetime(2026, 11, 22, 10, 0, 0, 999_999, tzinfo=UTC),
             datetime(2026, 11, 22, 9, 59, 59, 1, tzinfo=UTC)]
    answers = [LastAnswer(), LastAnswer(200, 512), LastAnswer(503, 0, "down | for maintenance"), LastAnswer(None, 7)]
    rows = [HostRow(f"t{i}", "127.0.0.1", None, None, None,
                    HostState(Status.OFFLINE if i % 3 else Status.ONLINE, i % 2, 1 - i % 2,
                              times[i % 3] if i % 4 else None, bool(i % 2), times[(i + 1) % 3] if i % 2 else None),
                    times[(i + 2) % 3] if i % 5 else None, ["ok", "failed", None][i % 3], None,
                    kind=KINDS[i % 3], client="c|1" if i % 3 else None, answer=answers[i % 4]) for i in range(24)]
    with engine.begin() as conn:
        save_hosts(conn, rows)
        loaded = load_host_states(conn, KINDS)
        typed = {row.name: row for row in list_hosts(conn)}
    assert {name: _stored_fields(stored) for name, stored in loaded.items()} == {
        name: _stored_fields(row) for name, row in typed.items()} == {row.name: _stored_fields(row) for row in rows}
    for stored in loaded.values():
        for value in (stored.state.last_transition_at, stored.state.held_since, stored.last_check_at):
            assert value is None or value.tzinfo is UTC
    assert loaded["t0"].state is loaded["t12"].state, "equal stored states load as one object"


def _stored_fields(row: HostRow | StoredHost) -> tuple[Any, ...]:
    return (row.address, row.account, row.partition, row.zone, row.state, row.last_check_at, row.kind, row.client,
            row.last_check_status, row.answer)


def test_a_row_is_steady_only_when_the_update_makes_it_from_the_stored_one() -> None:
    at = START
    stored = StoredHost("127.0.0.1", "1", "01", "001", HostState(Status.ONLINE, 0, 3, at), at, last_check_status="ok")
    row = HostRow("a", "127.0.0.1", "1", "01", "001", HostState(Status.ONLINE, 0, 4, at), at + timedelta(minutes=1),
                  "ok", 7)
    assert is_steady(row, stored)
    assert not is_steady(replace(row, state=HostState(Status.ONLINE, 0, 5, at)), stored), "one longer only"
    assert not is_steady(replace(row, state=HostState(Status.ONLINE, 1, 0, at)), stored), "the streak switched"
    assert not is_steady(replace(row, last_check_status="degraded"), stored)
    assert not is_steady(replace(row, zone="002"), stored)
    assert not is_steady(replace(row, state=HostState(Status.ONLINE, 0, 4, at, held=True, held_since=at)), stored)
    fresh = replace(stored, state=HostState(Status.ONLINE, 0, 0, at))  # moved: both streaks at 0
    assert not is_steady(replace(row, state=HostState(Status.ONLINE, 0, 1, at)), fresh)
