"""SIGTERM and SIGINT: until a run is armed they end the process at once; then they only set a flag.

The handlers are installed before anything else is imported (netwatch/entry.py), so a signal in
the first moments of a process still ends it with 143 (SIGTERM) or 130 (SIGINT), not with the raw
signal. Once a job's run is under way (`arm`), a signal only sets the flag and the job raises
`Stopped` at its next safe point, so the open transaction rolls back and the run row says why.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from netwatch.errors import ExitCode, Stopped

_CODES = {signal.SIGTERM: ExitCode.STOPPED, signal.SIGINT: ExitCode.INTERRUPTED}
_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class StopFlag:
    """Set by a signal; `check()` raises Stopped once set, `sleep()` wakes up early when set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._signal = signal.SIGTERM
        self.armed = False

    def arm(self) -> None:
        """From now on a signal only sets the flag; the run stops at its next safe point."""
        self.armed = True

    def set(self, signum: int = signal.SIGTERM) -> None:
        self._signal = signal.Signals(signum)
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def stopped(self, where: str) -> Stopped:
        """The Stopped error for the signal received, naming `where` it took effect."""
        return Stopped(f"stopped by {_NAMES[self._signal]} {where}", _CODES[self._signal])

    def check(self) -> None:
        if self._event.is_set():
            raise self.stopped("at a safe point: uncommitted work rolled back, lease released")

    def sleep(self, seconds: float) -> None:
        """Waits `seconds` unless stopped first (then raises Stopped)."""
        self._event.wait(max(0.0, seconds))
        self.check()


def install_signal_handlers(flag: StopFlag) -> None:
    """SIGTERM and SIGINT set `flag`, and raise Stopped at once while no run is armed.

    Python as PID 1 in a container would otherwise ignore SIGTERM, and SIGINT would be a
    KeyboardInterrupt that leaves the run row `running`.
    """

    def _handler(signum: int, _frame: FrameType | None) -> None:
        flag.set(signum)
        if not flag.armed:
            raise flag.stopped("before any work began")

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
