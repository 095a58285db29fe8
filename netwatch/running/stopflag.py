"""SIGTERM and SIGINT: noted while netwatch starts, then ending the process at once, then a flag for the run.

The handlers are installed before anything else is imported (netwatch/entry.py), so a signal in
the first moments of a process still ends it with 143 (SIGTERM) or 130 (SIGINT), not with the raw
signal. Three phases:

1. Until the CLI is ready (`stop_at_once`), a signal is only noted: raised in the middle of an
   import it would end the process with a traceback and exit 1. The CLI raises it once ready.
2. From then until a job's run is under way (`arm`), a signal raises StopNow at once, a
   BaseException that no `except Exception` on the way can swallow: a job has written nothing yet,
   and a slow start (reading the config, a database connect) must not delay the stop. A command
   that is no job (`db upgrade`, `status`) is never armed: `begin` names it for the message, and
   its open transaction rolls back as StopNow passes.
3. Once armed, a signal only sets the flag and the job raises `Stopped` at its next safe point, so
   the open transaction rolls back and the run row says why.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from netwatch.errors import ExitCode, StopNow, Stopped

_CODES = {signal.SIGTERM: ExitCode.STOPPED, signal.SIGINT: ExitCode.INTERRUPTED}
_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}
_EARLY = "before any work began"


class StopFlag:
    """Set by a signal; `check()` raises Stopped once set, `sleep()` wakes up early when set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._signal = signal.SIGTERM
        self.at_once = False
        self.armed = False
        self._under_way: str | None = None

    def stop_at_once(self) -> None:
        """From now until `arm`, a signal raises StopNow at once; so does one noted before."""
        self.at_once = True
        if self.is_set():
            raise self.stop_now()

    def begin(self, what: str) -> None:
        """A command that is no job has begun its work: an early stop now interrupts `what`."""
        self._under_way = what

    def arm(self) -> None:
        """From now on a signal only sets the flag; the run stops at its next safe point."""
        self.armed = True

    def set(self, signum: int = signal.SIGTERM) -> None:
        self._signal = signal.Signals(signum)
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def stop_now(self) -> StopNow:
        """What a signal before `arm` raises: before any work, or during the command `begin` named."""
        where = _EARLY if self._under_way is None else f"during {self._under_way}"
        return StopNow(f"stopped by {_NAMES[self._signal]} {where}", _CODES[self._signal])

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
    """SIGTERM and SIGINT set `flag`, and raise StopNow at once between `stop_at_once` and `arm`.

    Python as PID 1 in a container would otherwise ignore SIGTERM, and SIGINT would be a
    KeyboardInterrupt that leaves the run row `running`. StopNow is raised once: a second signal
    while it is being handled only sets the flag.
    """

    def _handler(signum: int, _frame: FrameType | None) -> None:
        flag.set(signum)
        if flag.at_once and not flag.armed:
            flag.at_once = False
            raise flag.stop_now()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
