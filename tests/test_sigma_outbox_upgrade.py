"""Schema version 4: Sigma events queued by an older netwatch survive the upgrade and go out as they should.

Up to version 3 a queued Sigma event held netwatch's own flat payload (`host_name`, `occurred_at`,
`streak`, ...). The Sigma adapter reads only the wire body, so after an upgrade those rows were
marked `failed` without a request. `netwatch db upgrade` now rewrites every one that is not final.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import TOKEN, log_lines
from sqlalchemy import select
from sqlalchemy.engine import Engine

from netwatch.db import migrate, outbox, tables
from netwatch.db.engine import build_engine, count_statements

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HOSTS = [{"name": "lo", "address": "127.0.0.1"}]
DESCRIPTION = "cam-{n} unreachable: 3 consecutive failed checks"


def flat_payload(n: int, partition: str | None, zone: str | None, account: str | None = "1234") -> dict[str, Any]:
    """What netwatch up to schema version 3 queued for a host that went offline (see git show acaa2c1)."""
    return {"type": "HOST_OFFLINE", "code": "E356", "host_name": f"cam-{n}", "host_address": f"10.0.0.{n}",
            "account": account, "partition": partition, "zone": zone,
            "occurred_at": datetime(2026, 11, 22, 8, 58, 7, 250_000, tzinfo=UTC).isoformat(),
            "description": DESCRIPTION.format(n=n), "streak": 3}


def row(n: int, payload: Mapping[str, Any], status: str = outbox.PENDING) -> dict[str, Any]:
    return {"channel": "sigma", "idempotency_key": f"nw-old-{n}", "kind": "HOST_OFFLINE", "subject": f"cam-{n}",
            "payload": json.dumps(payload), "status": status, "attempts": 0, "http_status": None, "last_error": None,
            "next_attempt_at": None, "created_at": T0, "updated_at": T0, "delivered_at": None, "run_id": 1}


def make_version_3(url: str, rows: list[dict[str, Any]]) -> None:
    """A database as netwatch at schema version 3 left it, holding `rows` in its outbox."""
    engine = build_engine(url)
    try:
        with engine.begin() as conn:
            tables.schema_version.create(conn)
            for number in (1, 2, 3):
                migrate.MIGRATIONS[number](conn)
                conn.execute(tables.schema_version.insert().values(version=number, applied_at=T0))
            conn.execute(tables.outbox.insert(), rows)
    finally:
        engine.dispose()


def wire_body(n: int, partition: str, zone: str) -> dict[str, Any]:
    return {"account": "1234", "partition": partition, "zone": zone, "code": "E356", "type": "HOST_OFFLINE",
            "host": {"name": f"cam-{n}", "address": f"10.0.0.{n}"}, "occurredAt": "2026-11-22T08:58:07Z",
            "description": DESCRIPTION.format(n=n)}


def stored_payloads(engine: Engine) -> dict[str, Any]:
    with engine.begin() as conn:
        return {key: json.loads(payload) for key, payload in
                conn.execute(select(tables.outbox.c.idempotency_key, tables.outbox.c.payload))}


def test_events_queued_before_the_upgrade_are_sent_with_their_body_after_db_upgrade(
    db_url: str, tmp_path: Path, fake: FakeApis
) -> None:
    sent_before = flat_payload(4, "01", "004")
    make_version_3(db_url, [
        row(1, flat_payload(1, "01", "002")),            # located from the host row
        row(2, flat_payload(2, None, None)),             # to be located from Segware's account 1234
        row(3, flat_payload(3, "", "")),                 # empty, as a CSV inventory leaves them
        row(4, sent_before, status=outbox.SENT),         # final: left as it was
        row(5, flat_payload(5, None, None), status=outbox.UNDELIVERED),  # no sink back then
    ])
    nw = InProcess(tmp_path, db_url, {"NETWATCH_SIGMA_TOKEN": TOKEN, "NETWATCH_SEGWARE_TOKEN": TOKEN})
    nw.write_config(HOSTS, segware={"base_url": fake.url}, sigma={"base_url": fake.url})

    refused = nw.sweep()
    upgraded = nw.run("db", "upgrade")
    swept = nw.sweep()

    # An existing database is never upgraded behind the operator's back, SQLite included.
    assert refused.returncode == 78
    assert log_lines(refused.stderr)[-1] == (f"error: database {db_url} has schema version 3, this netwatch needs "
                                             f"{migrate.LATEST}: run `netwatch db upgrade`")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "applied versions [4, 5, 6, 7, 8]\n"
    assert swept.returncode == 0, swept.stderr
    sent = {r.headers["idempotency-key"]: r.body for r in fake.requests_to("POST", "/v1/events")}
    assert sent == {"nw-old-1": wire_body(1, "01", "002"), "nw-old-2": wire_body(2, "01", "003"),
                    "nw-old-3": wire_body(3, "01", "003")}
    status = {item.idempotency_key: item.status for item in nw.outbox()}
    assert status == {"nw-old-1": "sent", "nw-old-2": "sent", "nw-old-3": "sent", "nw-old-4": "sent",
                      "nw-old-5": "undelivered"}
    engine = build_engine(db_url)
    try:
        stored = stored_payloads(engine)
    finally:
        engine.dispose()
    assert stored["nw-old-4"] == sent_before
    assert stored["nw-old-5"] == {**wire_body(5, "01", "003"), "partition": None, "zone": None}


def test_the_rewrite_runs_in_batches_not_a_statement_per_row(db_url: str) -> None:
    def upgrade_counting(count: int) -> tuple[int, list[Any]]:
        make_version_3(db_url, [row(n, flat_payload(n, "01", f"{n:03}")) for n in range(count)])
        engine = build_engine(db_url)
        try:
            with count_statements(engine) as statements, engine.begin() as conn:
                assert migrate.upgrade(conn, T0) == [4, 5, 6, 7, 8]
            payloads = list(stored_payloads(engine).values())
            with engine.begin() as conn:
                tables.metadata.drop_all(conn)
        finally:
            engine.dispose()
        return statements.value, payloads

    few, few_payloads = upgrade_counting(3)
    many = 2 * migrate.REWRITE_BATCH + 50
    more, more_payloads = upgrade_counting(many)

    assert all("host" in payload and "host_name" not in payload for payload in few_payloads + more_payloads)
    assert len(more_payloads) == many
    # A read and a write per batch of REWRITE_BATCH rows, whatever the number of rows.
    assert more - few == 2 * (math.ceil(many / migrate.REWRITE_BATCH) - 1)


@pytest.mark.parametrize("payload", [{"host_name": "only part of it"}, {"text": "a notification"}, "not json"])
def test_a_row_of_any_other_shape_is_left_as_it_is(db_url: str, payload: Any) -> None:
    stored = payload if isinstance(payload, str) else json.dumps(payload)
    make_version_3(db_url, [{**row(1, {}), "payload": stored}])
    engine = build_engine(db_url)
    try:
        with engine.begin() as conn:
            assert migrate.upgrade(conn, T0) == [4, 5, 6, 7, 8]
            assert conn.execute(select(tables.outbox.c.payload)).scalar_one() == stored
    finally:
        engine.dispose()


def test_a_database_newer_than_this_netwatch_is_refused_naming_it(engine: Engine, nwi: InProcess) -> None:
    with engine.begin() as conn:
        conn.execute(tables.schema_version.insert().values(version=migrate.LATEST + 1, applied_at=T0))
    nwi.write_config(HOSTS)

    for done in (nwi.sweep(), nwi.run("db", "upgrade"), nwi.run("status")):
        assert done.returncode == 78
        assert log_lines(done.stderr)[-1] == (
            f"error: database {nwi.db_url} has schema version {migrate.LATEST + 1}, newer than this netwatch "
            f"({migrate.LATEST}): upgrade netwatch")
