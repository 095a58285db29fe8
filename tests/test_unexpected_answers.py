"""An answer the API's contract does not list (Sigma answering 200) fails the message for good, and says so
honestly: "unexpected answer", never "refused"; a 4xx is still a refusal.
"""

from __future__ import annotations

from fakeapi import FakeApis, api_client
from inproc import InProcess
from jobkit import TOKEN, log_lines

from netwatch.clients.sigma import SigmaClient
from netwatch.db import outbox
from netwatch.outcome import Delivery

HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}]
UNEXPECTED = "sigma API POST /v1/events: unexpected answer HTTP 200 (the contract accepts 201, 202, 409)"


def test_sigma_answering_200_is_an_unexpected_answer(fake: FakeApis) -> None:
    fake.sigma_status = 200
    delivery = SigmaClient(api_client(fake.url, token=TOKEN)).send({"type": "HOST_OFFLINE"}, "k-1")
    assert delivery == Delivery("failed", 200, UNEXPECTED)
    assert len(fake.requests_to("POST", "/v1/events")) == 1, "no other try: it would get the same"


def test_an_unexpected_answer_fails_the_event_and_its_log_line_does_not_call_it_refused(
    nwi: InProcess, fake: FakeApis
) -> None:
    fake.sigma_status = 200
    nwi.write_config(HOSTS, thresholds={"notify_initial": True}, sigma={"base_url": fake.url})

    done = nwi.sweep()

    assert done.returncode == 1, done.stderr
    [item] = nwi.outbox()
    assert (item.status, item.attempts, item.http_status, item.last_error) == (outbox.FAILED, 1, 200, UNEXPECTED)
    [line] = [line for line in log_lines(done.stderr) if UNEXPECTED in line]
    assert line.startswith(f"warning: HOST_ONLINE failed for good at sigma: {UNEXPECTED} ")
    assert "refused" not in line


def test_a_4xx_is_still_a_refusal(nwi: InProcess, fake: FakeApis) -> None:
    fake.sigma_status = 422
    nwi.write_config(HOSTS, thresholds={"notify_initial": True}, sigma={"base_url": fake.url})

    done = nwi.sweep()

    assert done.returncode == 1, done.stderr
    [item] = nwi.outbox()
    assert (item.status, item.http_status) == (outbox.FAILED, 422)
    assert any(line.startswith("warning: HOST_ONLINE refused by sigma: sigma API POST /v1/events: HTTP 422")
               for line in log_lines(done.stderr))
