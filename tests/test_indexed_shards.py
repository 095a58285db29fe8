"""Shards from a Kubernetes Indexed Job: JOB_COMPLETION_INDEX of NETWATCH_SHARDS, in-process runs on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from inproc import InProcess
from sqlalchemy import bindparam, insert, text

from netwatch.db import migrate, tables
from netwatch.db.engine import build_engine
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
def test_a_shards_rollup_reads_its_checks_without_locking_another_shards(mysql_url: str) -> None:
    """Shards commit at the same time: each one's INSERT ... SELECT from `checks` must not lock the rows
    and gaps of the other shard's uncommitted checks of the same second (on MariaDB, REPEATABLE READ
    took shared next-key locks there, and four shards at 10,000 hosts deadlocked, exit 69)."""
    engine = build_engine(mysql_url)
    at = datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)

    def checks_of(target_ids: list[int]) -> list[dict[str, object]]:
        return [{"checked_at": at, "target_id": target, "status": 0, "prior": 2, "state": 2, "gap_s": 60,
                 "sent": 3, "received": 3, "attempts": 1} for target in target_ids]

    rollup = text("INSERT INTO rollups_hourly (hour, target_id, ok) SELECT :hour, target_id, 1 FROM checks "
                  "WHERE checked_at = :at AND target_id IN :targets").bindparams(bindparam("targets", expanding=True))
    seconds = int(at.timestamp())
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, at)
        with engine.connect() as one, engine.connect() as other:
            one.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
            one.commit()
            first, second = one.begin(), other.begin()
            one.execute(insert(tables.checks), checks_of([1, 3, 5]))
            other.execute(insert(tables.checks), checks_of([2, 4, 6]))
            # Under REPEATABLE READ this waited for the other shard's rows: a lock wait timeout after 2 s.
            one.execute(rollup, {"hour": seconds - seconds % 3600, "at": seconds, "targets": [1, 3, 5]})
            other.execute(rollup, {"hour": seconds - seconds % 3600, "at": seconds, "targets": [2, 4, 6]})
            first.commit()
            second.commit()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM rollups_hourly")).scalar() == 6
    finally:
        engine.dispose()
