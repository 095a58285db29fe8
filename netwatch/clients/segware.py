"""Segware API adapter: every Segware field name lives in this module and only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from netwatch.clients.http import ApiClient, ApiUnavailable


@dataclass(frozen=True)
class Partition:
    code: str
    name: str


@dataclass(frozen=True)
class Zone:
    code: str
    name: str
    partition: str


@dataclass(frozen=True)
class Account:
    """A monitored account with its partitions and zones, as used for enrichment."""

    account: str
    name: str
    company_id: int | None
    company_name: str
    client_group: str
    partitions: tuple[Partition, ...]
    zones: tuple[Zone, ...]

    def to_cache(self) -> dict[str, Any]:
        """Our own JSON-able dict (independent of Segware's field names) for a database cache."""
        return {
            "account": self.account,
            "name": self.name,
            "company_id": self.company_id,
            "company_name": self.company_name,
            "client_group": self.client_group,
            "partitions": [{"code": p.code, "name": p.name} for p in self.partitions],
            "zones": [{"code": z.code, "name": z.name, "partition": z.partition} for z in self.zones],
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> Account:
        """Rebuild an Account from `to_cache` output."""
        return cls(
            account=data["account"],
            name=data["name"],
            company_id=data["company_id"],
            company_name=data["company_name"],
            client_group=data["client_group"],
            partitions=tuple(Partition(code=p["code"], name=p["name"]) for p in data["partitions"]),
            zones=tuple(Zone(code=z["code"], name=z["name"], partition=z["partition"]) for z in data["zones"]),
        )


class _Malformed(ValueError):
    """A response body that does not have the contract's shape."""


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _Malformed(f"field {key!r} is not a non-empty string")
    return value


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _Malformed(f"field {key!r} is not a list of objects")
    return value


def parse_account(data: Any) -> Account:
    """Build an Account from a GET /v1/accounts/{account} body; raises ValueError on a wrong shape."""
    if not isinstance(data, dict):
        raise _Malformed("body is not an object")
    company_id = data.get("companyId")
    if company_id is not None and (isinstance(company_id, bool) or not isinstance(company_id, int)):
        raise _Malformed("field 'companyId' is not an integer")
    return Account(
        account=_text(data, "account"),
        name=_text(data, "name"),
        company_id=company_id,
        company_name=_text(data, "companyName", required=False),
        client_group=_text(data, "clientGroup", required=False),
        partitions=tuple(
            Partition(code=_text(p, "code"), name=_text(p, "name", required=False))
            for p in _objects(data, "partitions")
        ),
        zones=tuple(
            Zone(
                code=_text(z, "code"),
                name=_text(z, "name", required=False),
                partition=_text(z, "partition", required=False),
            )
            for z in _objects(data, "zones")
        ),
    )


class SegwareClient:
    """Reads account details (and, later, events) from the Segware API."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def get_account(self, account: str) -> Account | None:
        """The account's details, or None when Segware does not know the account (404)."""
        path = f"/v1/accounts/{quote(account, safe='')}"
        response = self._api.request("GET", path, accept=(200, 404))
        if response.status_code == 404:
            return None
        try:
            parsed = parse_account(response.json())
            if parsed.account != account:
                raise _Malformed(f"asked for account {account!r}, got {parsed.account!r}")
        except ValueError as exc:
            # requests' JSONDecodeError is a ValueError too; a garbled body is likely a proxy or a bad deploy.
            raise ApiUnavailable(
                f"{self._api.name} API GET {path}: malformed response ({exc})", status=response.status_code
            ) from exc
        return parsed
