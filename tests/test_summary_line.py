"""ping-sweep's one summary line per run: duration_s, exit_code and commit_ms, in text and JSON logs, both databases."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import InProcess
from jobkit import TOKEN, Netwatch, log_lines

HOSTS = [
    {"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"},
    {"name": "lo-2", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "002"},
]
SUMMARY = "ping-sweep finished"
_TEXT_FIELD = re.compile(r" (\w+)=(\S+)")


def sweep(nw: Netwatch, log_format: str) -> subprocess.CompletedProcess[str]:
    done = nw.run("--log-format", log_format, "run", "ping-sweep")
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stderr
    return done


def summary_fields(stderr: str, log_format: str) -> dict[str, Any]:
    """The fields of the only summary line in `stderr`; in JSON every line must be a JSON object."""
    if log_format == "json":
        entries = [json.loads(line) for line in stderr.splitlines()]
        summaries = [entry for entry in entries if entry["msg"] == SUMMARY]
    else:
        lines = [line for line in log_lines(stderr) if line.startswith(f"info: {SUMMARY} ")]
        summaries = [{key: _number(value) for key, value in _TEXT_FIELD.findall(line)} for line in lines]
    assert len(summaries) == 1, stderr
    return summaries[0]


def _number(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_successful_run_logs_duration_and_exit_code_0(nwi: InProcess, log_format: str) -> None:
    nwi.write_config(HOSTS)

    done = sweep(nwi, log_format)

    assert done.returncode == 0, done.stderr
    fields = summary_fields(done.stderr, log_format)
    assert fields["exit_code"] == 0
    assert isinstance(fields["duration_s"], float | int)
    assert 0 <= fields["duration_s"] < 60
    assert fields["hosts"] == 2
    # commit_ms (README, step 4): the pass's transaction, part of the run, also in the run's counts.
    assert type(fields["commit_ms"]) is int
    assert 0 <= fields["commit_ms"] <= fields["duration_s"] * 1000
    [run] = [row for row in nwi.rows("job_runs") if row["job"] == "ping-sweep"]
    assert json.loads(run["counts"])["commit_ms"] == fields["commit_ms"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_failed_delivery_logs_exit_code_1(nwi: InProcess, fake: FakeApis, log_format: str) -> None:
    nwi.write_config(HOSTS, thresholds={"notify_initial": True},
                    sigma={"base_url": fake.url, "retry_backoff_seconds": 0})
    fake.sigma_status = 503

    done = sweep(nwi, log_format)

    assert done.returncode == 1, done.stderr
    fields = summary_fields(done.stderr, log_format)
    assert fields["exit_code"] == 1
    assert 0 <= fields["duration_s"] < 60
    assert fake.requests_to("POST", "/v1/events"), "the run tried to deliver"
