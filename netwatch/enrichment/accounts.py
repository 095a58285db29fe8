"""Account details for events, from the shared cache or the Segware API (cache misses only)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.clients.http import ApiAuthError, ApiRejected, ApiUnavailable
from netwatch.clients.segware import SegwareClient
from netwatch.db.accounts import CachedAccount, load_cached_accounts, store_accounts
from netwatch.errors import Stopped
from netwatch.running.stopflag import StopFlag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountLookup:
    """Account dicts by account (None: unknown to Segware) and the accounts that could not be read.

    `error` says why accounts are unavailable; `refused` is set when Segware rejected our token.
    """

    found: Mapping[str, Mapping[str, Any] | None]
    unavailable: frozenset[str]
    error: str | None = None
    refused: ApiAuthError | None = None


def look_up_accounts(
    engine: Engine,
    segware: SegwareClient | None,
    accounts: Collection[str],
    now: datetime,
    ttl_seconds: float,
    stop: StopFlag,
) -> AccountLookup:
    """Cached entries younger than the TTL, else one API call per missing account, cached for later.

    A rejected token is returned in `refused`, not raised, after storing the accounts read before it:
    a caller may go on with what was read (Sigma delivery sends the events that need no Segware
    data) and end the run with the auth error afterwards.
    """
    if not accounts:
        return AccountLookup({}, frozenset())
    with engine.begin() as conn:
        cached = load_cached_accounts(conn, accounts, now, ttl_seconds)
    found: dict[str, Mapping[str, Any] | None] = {a: c.payload if c.found else None for a, c in cached.items()}
    missing = sorted(set(accounts) - set(cached))
    if segware is None:
        return AccountLookup({**found, **dict.fromkeys(missing)}, frozenset())
    fetched: list[CachedAccount] = []
    try:
        lookup = _fetch(segware, missing, found, fetched, now, stop)
    except Stopped:
        # What was read need not be asked again next run; the stop is what this run reports.
        _store_quietly(engine, fetched)
        raise
    with engine.begin() as conn:
        store_accounts(conn, fetched)
    return lookup


def _store_quietly(engine: Engine, fetched: list[CachedAccount]) -> None:
    try:
        with engine.begin() as conn:
            store_accounts(conn, fetched)
    except SQLAlchemyError as exc:
        log.warning("could not cache %d account(s) read before the stop: %s", len(fetched), type(exc).__name__)


def _fetch(
    segware: SegwareClient,
    missing: list[str],
    found: dict[str, Mapping[str, Any] | None],
    fetched: list[CachedAccount],
    now: datetime,
    stop: StopFlag,
) -> AccountLookup:
    """Asks Segware for each missing account, adding to `found` and `fetched` (the entries to cache)."""
    for position, account in enumerate(missing):
        stop.check()
        try:
            details = segware.get_account(account)
        except ApiAuthError as exc:
            # Every further call would be refused too: the rest stays unread for this run.
            return AccountLookup(found, frozenset(missing[position:]), exc.message, exc)
        except ApiUnavailable as exc:
            log.warning("account enrichment unavailable: %s", exc.message)
            return AccountLookup(found, frozenset(missing[position:]), exc.message)
        except ApiRejected as exc:
            # Permanent for this request only (contract): unknown this time, asked again next run.
            log.warning("account %s not enriched: %s", account, exc.message)
            found[account] = None
            continue
        payload = details.to_cache() if details else None
        fetched.append(CachedAccount(account, details is not None, payload, now))
        found[account] = payload
    return AccountLookup(found, frozenset())
