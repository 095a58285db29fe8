"""Every report command (status, alerts, alerts log) offers --json and --csv, and refuses both at once (64)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from inproc import InProcess
from jobkit import log_lines

HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}]
BOTH = "error: --json and --csv print different formats: give one of them"


def test_status_prints_csv(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    assert nwi.sweep().returncode == 0

    done = nwi.run("status", "--csv")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("name,kind,client,address,status,since,held,last_check,last_check_at,failures,"
                                  "successes,streak,loss_pct,rtt_avg_ms,reason,held_until,status_code,size_bytes,"
                                  "excerpt\r\n")
    [row] = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
    assert (row["name"], row["address"], row["last_check"]) == ("lo-1", "127.0.0.1", "ok")
    assert json.loads(nwi.run("status", "--json").stdout)[0]["name"] == "lo-1"


@pytest.mark.parametrize("args", [
    ["status", "--json", "--csv"],
    ["alerts", "--csv", "--json"],
    ["alerts", "--active", "--json", "--csv"],
    ["alerts", "log", "--json", "--csv"],
    ["alerts", "--json", "log", "--csv"],
])
def test_json_and_csv_together_are_a_usage_error(nwi: InProcess, args: list[str]) -> None:
    nwi.write_config(HOSTS)

    done = nwi.run(*args)

    assert done.returncode == 64, done.stderr
    assert log_lines(done.stderr) == [BOTH]
    assert done.stdout == ""


def test_the_same_format_before_and_after_log_is_one_choice(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    done = nwi.run("alerts", "--json", "log", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
