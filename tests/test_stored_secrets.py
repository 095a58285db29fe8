"""A token an API echoes in an error body is masked before anything is stored, not only in the log.

Each API gets its own token here, and each echoes one of them where netwatch keeps the text: Sigma
refuses an event (400) quoting the Segware token, which becomes `outbox.last_error`; Segware
refuses the event window (422) quoting its own token in `error`, which becomes `job_runs.error`.
Afterwards no row of any table and no log line holds either token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import InProcess, Result
from sqlalchemy import select

from netwatch.db import tables

SEGWARE_TOKEN = "segware-secret-token-5f3a9c"
SIGMA_TOKEN = "sigma-secret-token-81d2e7"
TOKENS = (SEGWARE_TOKEN, SIGMA_TOKEN)


@dataclass
class EchoingApis(FakeApis):
    """Refuses Sigma events (400) and the Segware event window (422), quoting `echo` in the error."""

    echo: str = ""

    def _answer_event(self, headers: dict[str, str], raw_body: bytes) -> tuple[int, Any]:
        return 400, {"error": f"invalid event from a client authenticated as {self.echo}"}

    def _answer_events_page(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        return 422, {"error": f"token {self.echo} may not read these codes"}


@pytest.fixture
def apis() -> Iterator[tuple[EchoingApis, EchoingApis]]:
    """(Segware, Sigma): each wants its own token; Segware echoes its own, Sigma echoes Segware's."""
    with EchoingApis(token=SEGWARE_TOKEN, echo=SEGWARE_TOKEN) as segware, \
            EchoingApis(token=SIGMA_TOKEN, echo=SEGWARE_TOKEN) as sigma:
        yield segware, sigma


@pytest.fixture
def secret_nwi(nwi: InProcess) -> InProcess:
    nwi.env.update({"NETWATCH_SEGWARE_TOKEN": SEGWARE_TOKEN, "NETWATCH_SIGMA_TOKEN": SIGMA_TOKEN})
    return nwi


def _rows_holding_a_token(run: InProcess) -> list[tuple[str, dict[str, Any]]]:
    engine = run.engine()
    try:
        with engine.begin() as conn:
            return [(table.name, dict(row)) for table in tables.metadata.sorted_tables
                    for row in conn.execute(select(table)).mappings()
                    if any(token in str(value) for value in row.values() for token in TOKENS)]
    finally:
        engine.dispose()


def _assert_no_token_shown(done: Result) -> None:
    for token in TOKENS:
        assert token not in done.stderr and token not in done.stdout


def test_a_token_echoed_by_sigma_is_masked_in_the_stored_error(
    secret_nwi: InProcess, apis: tuple[EchoingApis, EchoingApis]
) -> None:
    segware, sigma = apis
    secret_nwi.write_config([{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01",
                              "zone": "001"}], thresholds={"notify_initial": True},
                            segware={"base_url": segware.url}, sigma={"base_url": sigma.url})

    done = secret_nwi.sweep()

    assert done.returncode == 1, done.stderr
    assert len(sigma.requests_to("POST", "/v1/events")) == 1
    [item] = secret_nwi.outbox()
    assert item.status == "failed"
    assert item.last_error is not None and "authenticated as ***" in item.last_error
    assert "authenticated as ***" in done.stderr
    assert _rows_holding_a_token(secret_nwi) == []
    _assert_no_token_shown(done)


def test_a_token_echoed_by_segware_is_masked_in_the_run_row(
    secret_nwi: InProcess, apis: tuple[EchoingApis, EchoingApis]
) -> None:
    segware, _ = apis
    secret_nwi.write_config([], segware={"base_url": segware.url}, event_scan={"codes": {"E130": 5}})

    done = secret_nwi.run("run", "event-scan")

    assert done.returncode == 69, done.stderr
    [run] = secret_nwi.rows("job_runs")
    assert (run["outcome"], run["exit_code"]) == ("failed", 69)
    assert "HTTP 422" in run["error"] and "token ***" in run["error"]
    assert _rows_holding_a_token(secret_nwi) == []
    _assert_no_token_shown(done)
