"""ping-sweep's `commit_ms` (README, step 4): the pass's transaction time, in the summary line and the run's counts.

A whole `netwatch run ping-sweep` process on each database, in text and JSON logs.
"""

from __future__ import annotations

import json

import pytest
from jobkit import Netwatch
from test_summary_line import summary_fields, sweep

HOSTS = [
    {"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"},
    {"name": "lo-2", "address": "127.0.0.2", "account": "1234", "partition": "01", "zone": "002"},
]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_summary_line_and_run_counts_carry_commit_ms(nw: Netwatch, log_format: str) -> None:
    nw.write_config(HOSTS)

    done = sweep(nw, log_format)

    assert done.returncode == 0, done.stderr
    fields = summary_fields(done.stderr, log_format)
    assert type(fields["commit_ms"]) is int
    # The transaction is part of the job: it cannot take longer than the whole run.
    assert 0 <= fields["commit_ms"] <= fields["duration_s"] * 1000
    [run] = [row for row in nw.rows("job_runs") if row["job"] == "ping-sweep"]
    assert json.loads(run["counts"])["commit_ms"] == fields["commit_ms"]
