"""One word each: the HTTP client's tries within one request, the outbox's delivery attempts across runs."""

from __future__ import annotations

import re

from fakeapi import FakeApis
from inproc import InProcess
from jobkit import log_lines

HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}]


def test_four_tries_of_one_request_are_one_delivery_attempt(nwi: InProcess, fake: FakeApis) -> None:
    fake.sigma_status = 503
    nwi.write_config(HOSTS, thresholds={"notify_initial": True}, sigma={"base_url": fake.url})

    done = nwi.sweep()

    assert done.returncode == 1, done.stderr
    assert len(fake.requests_to("POST", "/v1/events")) == 4
    [item] = nwi.outbox()
    assert (item.status, item.attempts) == ("pending", 1)
    assert item.last_error == "sigma API POST /v1/events: HTTP 503 after 4 tries"
    lines = log_lines(done.stderr)
    retries = [line for line in lines if line.startswith("warning: sigma API POST /v1/events: HTTP 503; ")]
    assert [re.sub(r" in [\d.]+s$", "", line) for line in retries] == [
        f"warning: sigma API POST /v1/events: HTTP 503; try {n}/4" for n in (2, 3, 4)]
    assert not any("attempts" in line.split(" attempts=")[0] for line in lines), "no message calls a try an attempt"
