"""Shards from a Kubernetes Indexed Job: JOB_COMPLETION_INDEX of NETWATCH_SHARDS, in-process runs on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from inproc import InProcess
from sqlalchemy import text

from netwatch.core import rollup
from netwatch.core.history import CheckEntry
from netwatch.db import migrate
from netwatch.db.engine import build_engine
from netwatch.db.history import insert_checks, target_ids
from netwatch.db.rollups import update_rollups
from netwatch.errors import ExitCode
from netwatch.shard import Shard

HOSTS = [{"name": f"site-{n:03d}", "address": f"127.0.{n // 250}.{n % 250 + 1}"} for n in range(60)]


def sweep_as_index(nwi: InProcess, index: int, count: int, *args: str) -> int:
    nwi.env.update({"JOB_COMPLETION_INDEX": str(index), "NETWATCH_SHARDS": str(count)})
    return nwi.run("run", "ping-sweep", *args).returncode


def test_the_indexes_of_an_indexed_job_check_every_host_exactly_once(nwi: InProcess) -> None:
    nwi.write_config(HOSTS, ping={"rate_limit_pps": 1000})
    assert [sweep_as_index(nwi, index, 3) for index in range(3)] == [0, 0, 0]
    swept = [target.key for call in nwi.sweep_plan.calls for target in call]
    assert sorted(swept) == sorted(h["name"] for h in HOSTS)  # each once
    assert all(call for call in nwi.sweep_plan.calls)  # every index had hosts
    # Together the three keep to the limit: each sweeps at a third of it.
    assert [s.rate_pps for s in nwi.sweep_plan.settings] == [333, 333, 333]
    # Each index has its own run row (and lease); reports see every shard's hosts.
    assert sorted(row["shard"] for row in nwi.rows("job_runs")) == ["0/3", "1/3", "2/3"]
    status = json.loads(nwi.run("status", "--json").stdout)
    assert len(status) == len(HOSTS) and {row["status"] for row in status} == {"online"}


def test_shard_option_wins_over_the_environment(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    assert sweep_as_index(nwi, 2, 3, "--shard", "0/1") == 0
    assert [row["shard"] for row in nwi.rows("job_runs")] == ["0/1"]
    assert len(nwi.sweep_plan.calls[0]) == len(HOSTS)


@pytest.mark.parametrize(("env", "message"), [
    ({"JOB_COMPLETION_INDEX": "1"}, "JOB_COMPLETION_INDEX is set but NETWATCH_SHARDS is not"),
    ({"NETWATCH_SHARDS": "4"}, "NETWATCH_SHARDS is set but JOB_COMPLETION_INDEX is not"),
    ({"JOB_COMPLETION_INDEX": "4", "NETWATCH_SHARDS": "4"},
     "JOB_COMPLETION_INDEX (4) must be below NETWATCH_SHARDS (4)"),
    ({"JOB_COMPLETION_INDEX": "0", "NETWATCH_SHARDS": "four"}, "must be whole numbers"),
])
def test_a_half_or_wrong_shard_environment_is_a_config_error(nwi: InProcess, env: dict[str, str],
                                                             message: str) -> None:
    nwi.write_config(HOSTS)
    nwi.env.update(env)
    done = nwi.sweep()
    assert done.returncode == ExitCode.CONFIG
    assert message in done.stderr
    assert nwi.sweep_plan.calls == []


def test_adding_hosts_moves_no_other_host_between_shards() -> None:
    names = [f"host-{n}" for n in range(2000)]
    shards = [Shard(index, 4) for index in range(4)]

    def owners(inventory: list[str]) -> dict[str, int]:
        return {name: next(s.index for s in shards if s.owns(name)) for name in inventory}

    before = owners(names)
    after = owners([*names, *(f"new-{n}" for n in range(500))])
    assert {name: after[name] for name in names} == before
    assert sorted(set(before.values())) == [0, 1, 2, 3]


@pytest.mark.mysql
def test_a_shards_rollups_read_its_checks_without_locking_another_shards(mysql_url: str) -> None:
    """Shards commit at the same time: each one's rollups, computed by the server from `checks`, must not
    lock the other shard's uncommitted checks of the same second. On MariaDB, REPEATABLE READ took shared
    next-key locks there (four shards at 10,000 hosts deadlocked, exit 69), and so does a multi-table
    UPDATE joined with that SELECT even under READ COMMITTED: the second shard waited for the first."""
    engine = build_engine(mysql_url)
    first_run, steady_run = 1_764_583_205, 1_764_583_265  # 2025-12-01 10:00:05 and 10:01:05 UTC, one hour

    def entries(target_ids: list[int], at: int, previous: int | None) -> list[CheckEntry]:
        return [CheckEntry(target_id=target, checked_at=at, status=0, prior=2, state=2,
                           gap_s=0 if previous is None else at - previous, sent=3, received=3, attempts=1,
                           rtt_min_us=100, rtt_avg_us=100, rtt_max_us=100, rtt_bucket=rollup.rtt_bucket(0.1),
                           error=None) for target in target_ids]

    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, datetime.fromtimestamp(first_run, UTC))
            ids = list(target_ids(conn, [f"site-{n}" for n in range(6)], datetime.now(UTC)).values())
            insert_checks(conn, entries(ids, first_run, None), {})
            update_rollups(conn, entries(ids, first_run, None), dict.fromkeys(ids))  # the steady run adds to these
        one_ids, other_ids = ids[0::2], ids[1::2]
        with engine.connect() as one, engine.connect() as other:
            for conn in (one, other):
                conn.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
                conn.commit()
            first, second = one.begin(), other.begin()
            insert_checks(one, entries(one_ids, steady_run, first_run), {})
            insert_checks(other, entries(other_ids, steady_run, first_run), {})
            # Each shard's rollups while the other's checks are uncommitted: a lock wait timeout after 2 s.
            update_rollups(one, entries(one_ids, steady_run, first_run), dict.fromkeys(one_ids, first_run))
            update_rollups(other, entries(other_ids, steady_run, first_run), dict.fromkeys(other_ids, first_run))
            first.commit()
            second.commit()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT SUM(ok) FROM rollups_hourly")).scalar() == 12
            assert conn.execute(text("SELECT SUM(mtd_ok) FROM rollups_daily")).scalar() == 12
    finally:
        engine.dispose()
