"""SegwareClient.get_account: parsing, 404, malformed bodies, cache round trip, and FakeApis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from fakeapi import FakeApis, FakeTime, api_client

from netwatch.clients.http import ApiAuthError, ApiUnavailable
from netwatch.clients.segware import Account, Partition, SegwareClient, Zone

BASE = "https://segware.example.invalid"
TOKEN = "segware-tok-s3cret"

ACCOUNT_JSON: dict[str, Any] = {
    "account": "1234",
    "name": "Loja Centro",
    "companyId": 9,
    "companyName": "Acme Seguranca",
    "clientGroup": "Varejo Sul",
    "partitions": [{"code": "01", "name": "Loja"}],
    "zones": [{"code": "003", "name": "Porta dos fundos", "partition": "01"}],
}

ACCOUNT = Account(
    account="1234",
    name="Loja Centro",
    company_id=9,
    company_name="Acme Seguranca",
    client_group="Varejo Sul",
    partitions=(Partition(code="01", name="Loja"),),
    zones=(Zone(code="003", name="Porta dos fundos", partition="01"),),
)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def segware(clock: FakeTime | None = None, token: str | None = TOKEN, base_url: str = BASE) -> SegwareClient:
    return SegwareClient(api_client(base_url, name="segware", token=token, fake_time=clock))


def test_account_is_parsed(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", json=ACCOUNT_JSON)
    assert segware().get_account("1234") == ACCOUNT
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_optional_fields_may_be_null_or_missing(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", json={"account": "1234", "name": "Loja", "companyId": None})
    account = segware().get_account("1234")
    assert account == Account("1234", "Loja", None, "", "", (), ())


def test_unknown_account_is_none(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/9999", status=404, json={"error": "not found"})
    assert segware().get_account("9999") is None


def test_account_code_is_quoted_into_one_path_segment(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/12%2F34", status=404)
    assert segware().get_account("12/34") is None
    assert rsps.calls[0].request.path_url == "/v1/accounts/12%2F34"


@pytest.mark.parametrize(
    "body",
    [
        "<html>proxy error</html>",
        json.dumps([ACCOUNT_JSON]),
        json.dumps({**ACCOUNT_JSON, "name": None}),
        json.dumps({**ACCOUNT_JSON, "companyId": "9"}),
        json.dumps({**ACCOUNT_JSON, "zones": {"code": "003"}}),
        json.dumps({**ACCOUNT_JSON, "partitions": [{"name": "no code"}]}),
        json.dumps({**ACCOUNT_JSON, "account": "5678"}),
    ],
)
def test_malformed_body_is_unavailable(rsps: responses.RequestsMock, body: str) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", body=body)
    with pytest.raises(ApiUnavailable) as err:
        segware().get_account("1234")
    assert "malformed response" in err.value.message
    assert "segware API GET /v1/accounts/1234" in err.value.message
    assert err.value.status == 200


def test_server_errors_are_retried_then_unavailable(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", status=502)
    clock = FakeTime()
    with pytest.raises(ApiUnavailable) as err:
        segware(clock).get_account("1234")
    assert len(rsps.calls) == 4 and len(clock.waits) == 3
    assert err.value.status == 502


def test_auth_failure_raises_without_the_token(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/accounts/1234", status=403)
    with pytest.raises(ApiAuthError) as err:
        segware().get_account("1234")
    assert "NETWATCH_SEGWARE_TOKEN" in err.value.message
    assert TOKEN not in str(err.value)


def test_cache_round_trip_uses_our_own_field_names() -> None:
    data = ACCOUNT.to_cache()
    assert json.loads(json.dumps(data)) == data, "JSON-able as it is"
    assert set(data) == {
        "account",
        "name",
        "company_id",
        "company_name",
        "client_group",
        "partitions",
        "zones",
    }


def test_fake_serves_accounts_and_404s_the_rest() -> None:
    with FakeApis(accounts={"1234": ACCOUNT_JSON}, token="s3cret") as fake:
        client = segware(token="s3cret", base_url=fake.url)
        assert client.get_account("1234") == ACCOUNT
        assert client.get_account("0000") is None
        assert [(r.method, r.path, r.status) for r in fake.requests] == [
            ("GET", "/v1/accounts/1234", 200),
            ("GET", "/v1/accounts/0000", 404),
        ]


def test_fake_accounts_outage_is_unavailable() -> None:
    with FakeApis(accounts={"1234": ACCOUNT_JSON}) as fake:
        fake.accounts_status = 503
        clock = FakeTime()
        with pytest.raises(ApiUnavailable):
            segware(clock, token=None, base_url=fake.url).get_account("1234")
        assert len(fake.requests) == 4
        fake.accounts_status = None
        assert segware(token=None, base_url=fake.url).get_account("1234") == ACCOUNT


def test_fake_rejects_a_wrong_token() -> None:
    with FakeApis(accounts={"1234": ACCOUNT_JSON}, token="s3cret") as fake:
        with pytest.raises(ApiAuthError, match="segware API rejected the token"):
            segware(token="nope", base_url=fake.url).get_account("1234")
