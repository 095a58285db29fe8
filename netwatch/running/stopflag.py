"""SIGTERM handling: the signal only sets a flag; the job raises `Stopped` at its next safe point."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from netwatch.errors import Stopped


class StopFlag:
    """Set by SIGTERM; `check()` raises Stopped once set, `sleep()` wakes up early when set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Stopped("stopped by SIGTERM at a safe point: uncommitted work rolled back, lease released")

    def sleep(self, seconds: float) -> None:
        """Waits `seconds` unless stopped first (then raises Stopped)."""
        self._event.wait(max(0.0, seconds))
        self.check()


def install_sigterm_handler(flag: StopFlag) -> None:
    """Makes SIGTERM set `flag` (Python as PID 1 in a container would otherwise ignore it)."""

    def _handler(_signum: int, _frame: FrameType | None) -> None:
        flag.set()

    signal.signal(signal.SIGTERM, _handler)
