"""Hosts removed from the inventory leave the `hosts` table on the next ping-sweep of their shard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakeapi import FakeApis
from inproc import Clock, InProcess, sweep_counting
from jobkit import Netwatch
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from netwatch.config import parse_config
from netwatch.core.hoststate import HostState
from netwatch.db import tables
from netwatch.db.engine import count_statements
from netwatch.db.hosts import HostRow, delete_hosts, save_hosts
from netwatch.jobs.confirm import departed_names as departed_hosts
from netwatch.shard import Shard

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _loopback(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": name, "address": f"127.4.0.{i + 1}"} for i, name in enumerate(names)]


def _status(nw: Netwatch) -> list[dict[str, Any]]:
    done = nw.run("status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _last_counts(nw: Netwatch) -> dict[str, int]:
    latest = max(nw.rows("job_runs"), key=lambda r: r["id"])
    return json.loads(latest["counts"])


def _names_of_shard(shard: Shard, count: int) -> list[str]:
    """The first `count` names of the form hN that `shard` owns."""
    return [name for name in (f"h{i}" for i in range(1000)) if shard.owns(name)][:count]


def test_departed_hosts_are_this_shards_stored_names_missing_from_the_inventory() -> None:
    ours, theirs = Shard(0, 2), Shard(1, 2)
    mine = _names_of_shard(ours, 3)
    other = _names_of_shard(theirs, 2)
    stored = [*mine, *other]

    assert departed_hosts(stored, set(mine), ours) == []
    assert departed_hosts(stored, {mine[0]}, ours) == sorted(mine[1:])
    assert departed_hosts(stored, set(), ours) == sorted(mine)
    assert departed_hosts(stored, set(), theirs) == sorted(other)
    assert departed_hosts(stored, set(), Shard()) == sorted(stored)
    assert departed_hosts([], set(), Shard()) == []


def test_removed_host_leaves_status_and_keeps_its_history(nwi: InProcess) -> None:
    nwi.clock = Clock()  # one check per host per second: the next run is a minute later
    nwi.write_config(_loopback(["lo-1", "lo-2", "lo-3"]))
    first = nwi.sweep()
    assert first.returncode == 0, first.stderr
    assert [h["name"] for h in _status(nwi)] == ["lo-1", "lo-2", "lo-3"]
    assert _last_counts(nwi)["removed"] == 0

    nwi.write_config(_loopback(["lo-1", "lo-2"]))
    nwi.clock.advance(60)
    second = nwi.sweep()

    assert second.returncode == 0, second.stderr
    assert "removed 1 hosts no longer in the inventory: lo-3" in second.stderr
    assert "removed=1" in second.stderr
    assert [h["name"] for h in _status(nwi)] == ["lo-1", "lo-2"]
    assert _last_counts(nwi)["removed"] == 1
    history = sorted(str(r["host_name"]) for r in nwi.checks())
    assert history == ["lo-1", "lo-1", "lo-2", "lo-2", "lo-3"]


def test_re_added_host_starts_from_a_fresh_state(nwi: InProcess) -> None:
    kept = {"name": "lo-1", "address": "127.4.0.1"}
    flaky = {"name": "gone", "address": "gone.invalid"}
    nwi.write_config([kept, flaky], thresholds={"down_after": 5})
    for _ in range(2):
        assert nwi.sweep().returncode == 0
    assert {h["name"]: h["failures"] for h in _status(nwi)} == {"gone": 2, "lo-1": 0}

    nwi.write_config([kept], thresholds={"down_after": 5})
    assert nwi.sweep().returncode == 0
    nwi.write_config([kept, flaky], thresholds={"down_after": 5})
    assert nwi.sweep().returncode == 0

    assert {h["name"]: (h["failures"], h["status"]) for h in _status(nwi)} == {
        "gone": (1, "unknown"), "lo-1": (0, "online")}


def test_a_shard_never_removes_another_shards_hosts(nwi: InProcess) -> None:
    zero, one = Shard(0, 2), Shard(1, 2)
    names = sorted([*_names_of_shard(zero, 2), *_names_of_shard(one, 2)])
    everything = _loopback(names)
    nwi.write_config(everything)
    for shard in (zero, one):
        done = nwi.run("run", "ping-sweep", "--shard", str(shard))
        assert done.returncode == 0, done.stderr
    assert [h["name"] for h in _status(nwi)] == names
    dropped_zero, dropped_one = _names_of_shard(zero, 1)[0], _names_of_shard(one, 1)[0]

    nwi.write_config([h for h in everything if h["name"] not in (dropped_zero, dropped_one)])
    by_zero = nwi.run("run", "ping-sweep", "--shard", "0/2")

    assert by_zero.returncode == 0, by_zero.stderr
    assert _last_counts(nwi)["removed"] == 1
    assert [h["name"] for h in _status(nwi)] == sorted(set(names) - {dropped_zero})

    by_one = nwi.run("run", "ping-sweep", "--shard", "1/2")
    assert by_one.returncode == 0, by_one.stderr
    assert [h["name"] for h in _status(nwi)] == sorted(set(names) - {dropped_zero, dropped_one})


def test_event_of_a_removed_host_is_still_delivered(nwi: InProcess, fake: FakeApis) -> None:
    apis = {"sigma": {"base_url": fake.url, "retry_backoff_seconds": 0}, "segware": {"base_url": fake.url}}
    host = {"name": "lo-1", "address": "127.4.0.1", "account": "1234", "partition": "01", "zone": "1"}
    nwi.write_config([host], thresholds={"notify_initial": True}, **apis)
    fake.sigma_status = 503
    assert nwi.sweep().returncode == 1
    assert [i.status for i in nwi.outbox()] == ["pending"]

    fake.sigma_status = None
    nwi.write_config([], **apis)
    done = nwi.sweep()

    assert done.returncode == 0, done.stderr
    assert nwi.rows("hosts") == []
    assert [(e["host"]["name"], e["type"]) for e in fake.sigma_events()] == [("lo-1", "HOST_ONLINE")]
    assert [i.status for i in nwi.outbox()] == ["sent"]


def _sweep_counting_statements(db_url: str, tmp_path: Path, names: list[str], minute: int) -> int:
    """One run at T0 + `minute` (runs a second apart would share their checks' second)."""
    config = parse_config(
        {"database": {"url": db_url}, "hosts": [{"name": n, "address": f"127.5.{i // 250}.{i % 250 + 1}"}
                                                for i, n in enumerate(names)],
         "ping": {"count": 1, "timeout_seconds": 0.5, "interval_ms": 0, "rate_limit_pps": 10000, "retries": 0}},
        "test", tmp_path, {})
    return sweep_counting(config, T0 + timedelta(minutes=minute))


def _stored_names(engine: Engine) -> list[str]:
    with engine.begin() as conn:
        return list(conn.execute(select(tables.hosts.c.name).order_by(tables.hosts.c.name)).scalars())


def test_statements_per_run_do_not_grow_with_removed_hosts(db_url: str, engine: Engine, tmp_path: Path) -> None:
    names = [f"h{i:03d}" for i in range(310)]
    _sweep_counting_statements(db_url, tmp_path, names, 0)  # warm-up: creates the lease rows and the hosts

    one_removed = _sweep_counting_statements(db_url, tmp_path, names[:-1], 1)
    many_removed = _sweep_counting_statements(db_url, tmp_path, names[:9], 2)

    assert one_removed == many_removed
    assert _stored_names(engine) == names[:9]


def test_delete_hosts_is_one_statement_and_spares_unlisted_rows(engine: Engine) -> None:
    rows = [HostRow(f"n{i:04d}", "127.0.0.1", None, None, None, HostState(), T0, "ok", 1) for i in range(1202)]
    with engine.begin() as conn:
        save_hosts(conn, rows)

    with count_statements(engine) as one, engine.begin() as conn:
        assert delete_hosts(conn, [rows[1].name], ["host"]) == 1
    with count_statements(engine) as many, engine.begin() as conn:
        assert delete_hosts(conn, [row.name for row in rows[2:]], ["host"]) == 1200

    assert many.value == one.value, "one executemany, never a statement per name"
    assert _stored_names(engine) == ["n0000"]
    with engine.begin() as conn:
        assert delete_hosts(conn, [], ["host"]) == 0
        assert conn.execute(select(func.count()).select_from(tables.hosts)).scalar_one() == 1
