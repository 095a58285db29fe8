"""Whether this machine's clock can be trusted for a run: pure comparison of three instants.

A run reads its window, stamps transitions and schedules retries by this machine's clock. A
clock far from the database server's, or behind the start of the last committed run of the same
job, would make it act on the wrong time (an hour behind, alert-clear reads an old window and
clears live alerts), so the run refuses to act instead. A clock behind the previous run by less
than the tolerance (NTP slewing, a second node a little behind) is fine. The previous run is that
of any job changing the same state (event-scan and alert-clear compare with each other).
"""

from __future__ import annotations

from datetime import datetime

from netwatch.core.times import require_aware


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def clock_problem(local: datetime, server: datetime, last_start: datetime | None, tolerance_s: float,
                  job: str) -> str | None:
    """Why the local clock must not be used now, or None when it may."""
    require_aware(local, "local")
    require_aware(server, "server")
    offset = (local - server).total_seconds()
    if abs(offset) > tolerance_s:
        side = "ahead of" if offset > 0 else "behind"
        return (f"this machine's clock ({_iso(local)}) is {abs(offset):.0f} s {side} the database server's"
                f" ({_iso(server)}), more than run.clock_tolerance_seconds ({tolerance_s:g}): fix its time sync")
    if last_start is not None:
        require_aware(last_start, "last_start")
        behind = (last_start - local).total_seconds()
        if behind > tolerance_s:
            return (f"this machine's clock ({_iso(local)}) is {behind:.0f} s behind the start of the last committed"
                    f" {job} run ({_iso(last_start)}), more than run.clock_tolerance_seconds ({tolerance_s:g}):"
                    " fix its time sync (if this clock is right, that run's clock was ahead: see README, Clocks)")
    return None
