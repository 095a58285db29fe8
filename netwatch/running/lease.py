"""A lease row held by one process: acquired once, renewed in the background, checked inside commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import leases
from netwatch.errors import LeaseHeld

log = logging.getLogger(__name__)


class Lease:
    """A job's lease row: acquired once, renewed in the background, checked inside the commit."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl_seconds: float,
                 clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        self._expires_at: datetime | None = None

    def try_acquire(self) -> bool:
        """Claims the lease if it is free, expired or ours; False when another run holds it.

        Each step is a transaction of its own (see leases.claim_lease); the row is created the
        first time a lease of this name is claimed.
        """
        if self._claim():
            return True
        with self.engine.begin() as conn:
            leases.ensure_lease_row(conn, self.name)
        return self._claim()

    def _claim(self) -> bool:
        now = self.clock()
        with self.engine.begin() as conn:
            if not leases.claim_lease(conn, self.name, self.holder, now, self.ttl_seconds):
                return False
        self._expires_at = now + timedelta(seconds=self.ttl_seconds)
        return True

    def valid(self) -> bool:
        """Whether this process may still act as the holder: not taken, and not near its expiry.

        A run whose renewals keep failing (database trouble) stops trusting the lease a third of the
        TTL before it expires (one renewal period: room for a late renewal and for clock skew),
        before another run can take it.
        """
        if self.lost or self._expires_at is None:
            return False
        return self.clock() < self._expires_at - timedelta(seconds=self.ttl_seconds / 3)

    def acquire(self) -> None:
        """Claims the lease or raises LeaseHeld naming the current holder."""
        if self.try_acquire():
            return
        with self.engine.begin() as conn:
            current = leases.read_lease(conn, self.name)
        until = current.expires_at.isoformat() if current.expires_at else "unknown"
        raise LeaseHeld(f"another run holds the {self.name} lease ({current.holder}, until {until}); exiting")

    def keep_renewed(self) -> None:
        """Renews every third of the TTL until `release`, on its own connection."""
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_seconds / 3):
            try:
                now = self.clock()
                with self.engine.begin() as conn:
                    if not leases.renew_lease(conn, self.name, self.holder, now, self.ttl_seconds):
                        self.lost = True
                        log.warning("lease %s was taken by another run", self.name)
                        return
                self._expires_at = now + timedelta(seconds=self.ttl_seconds)
            except SQLAlchemyError as exc:
                log.warning("could not renew lease %s: %s", self.name, type(exc).__name__)

    def fence(self, conn: Connection) -> None:
        """Inside the job's transaction: renews the lease or raises so the commit never happens."""
        now = self.clock()
        if self.lost or not leases.renew_lease(conn, self.name, self.holder, now, self.ttl_seconds):
            raise LeaseHeld(f"lost the {self.name} lease to another run; nothing committed")
        self._expires_at = now + timedelta(seconds=self.ttl_seconds)

    def release(self) -> None:
        """Frees the lease; best effort: if the database is gone, it expires on its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                leases.release_lease(conn, self.name, self.holder)
        except SQLAlchemyError as exc:
            log.warning("could not release lease %s (it expires by itself): %s", self.name, type(exc).__name__)
