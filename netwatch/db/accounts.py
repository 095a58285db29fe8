"""`account_cache`: Segware account details with a fetch time, shared by every job that enriches."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from netwatch.db.tables import account_cache
from netwatch.db.upsert import upsert_rows

_IN_LIST_CHUNK = 5000


@dataclass(frozen=True)
class CachedAccount:
    account: str
    found: bool
    payload: Mapping[str, Any] | None
    fetched_at: datetime


def load_cached_accounts(
    conn: Connection, accounts: Collection[str], now: datetime, ttl_seconds: float
) -> dict[str, CachedAccount]:
    """Cached entries younger than the TTL for `accounts` (one query per 5,000 accounts)."""
    wanted = sorted(set(accounts))
    oldest = now - timedelta(seconds=ttl_seconds)
    found: dict[str, CachedAccount] = {}
    for start in range(0, len(wanted), _IN_LIST_CHUNK):
        chunk = wanted[start : start + _IN_LIST_CHUNK]
        rows = conn.execute(
            select(account_cache).where(
                and_(account_cache.c.account.in_(chunk), account_cache.c.fetched_at >= oldest)
            )
        ).mappings()
        for row in rows:
            found[row["account"]] = CachedAccount(
                account=row["account"],
                found=bool(row["found"]),
                payload=json.loads(row["payload"]) if row["payload"] else None,
                fetched_at=row["fetched_at"],
            )
    return found


def store_accounts(conn: Connection, entries: Sequence[CachedAccount]) -> None:
    """Upserts fetched entries (a 404 is cached too, as found=False) in one statement."""
    upsert_rows(
        conn,
        account_cache,
        [
            {
                "account": entry.account,
                "found": entry.found,
                "payload": json.dumps(entry.payload, sort_keys=True) if entry.payload is not None else None,
                "fetched_at": entry.fetched_at,
            }
            for entry in entries
        ],
        key=["account"],
        update=["found", "payload", "fetched_at"],
    )


def account_names(conn: Connection, accounts: Collection[str]) -> dict[str, str]:
    """The cached Segware name of each of `accounts` that has one, however old (for reports)."""
    wanted = sorted(set(accounts))
    names: dict[str, str] = {}
    for start in range(0, len(wanted), _IN_LIST_CHUNK):
        rows = conn.execute(select(account_cache.c.account, account_cache.c.payload)
                            .where(account_cache.c.account.in_(wanted[start : start + _IN_LIST_CHUNK])))
        for account, payload in rows:
            name = json.loads(payload).get("name") if payload else None
            if isinstance(name, str):
                names[account] = name
    return names
