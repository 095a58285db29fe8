"""One exception base carrying the process exit code; the CLI catches it in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every netwatch command (documented in README)."""

    OK = 0
    DELIVERY_FAILED = 1
    USAGE = 64
    NOT_RETRYABLE = 65
    UNAVAILABLE = 69
    SOFTWARE = 70
    CLOCK = 71
    LEASE_HELD = 75
    NO_PERMISSION = 77
    CONFIG = 78
    INTERRUPTED = 130
    STOPPED = 143


class NetwatchError(Exception):
    """An expected failure: one line for the operator and an exit code, never a traceback."""

    exit_code: ExitCode = ExitCode.CONFIG

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(NetwatchError):
    """Bad configuration: the message names the file and the key path or line."""

    exit_code = ExitCode.CONFIG


class UsageError(NetwatchError):
    exit_code = ExitCode.USAGE


class NotRetryable(NetwatchError):
    """`outbox retry` was given an id that is missing or not dead: nothing was changed."""

    exit_code = ExitCode.NOT_RETRYABLE


class ServiceUnavailable(NetwatchError):
    """A service the run needs (database, external API) could not be reached."""

    exit_code = ExitCode.UNAVAILABLE


class LeaseHeld(NetwatchError):
    exit_code = ExitCode.LEASE_HELD


class NoPermission(NetwatchError):
    exit_code = ExitCode.NO_PERMISSION


class ClockUntrusted(NetwatchError):
    """This machine's clock is too far from the database server's or behind the job's last run."""

    exit_code = ExitCode.CLOCK


class Stopped(NetwatchError):
    """SIGTERM (143) or SIGINT (130) arrived; raised at a safe point so the open transaction rolls back."""

    exit_code = ExitCode.STOPPED

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.STOPPED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StopNow(BaseException):
    """A signal that ends a command at once, before a job's run is armed (netwatch/running/stopflag.py).

    Raised by the signal handler wherever the main thread is, so a BaseException: an `except
    Exception` on the way (logging's emit, a library's) must not swallow it. run_cli turns it into
    its exit code and one line.
    """

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class StoppedDuringRequest(Stopped):
    """A stop that ended a request after it went out: the delivery attempt it was counts (pending).

    `request` names it (`sigma API POST /v1/events`); the delivery loop stores the attempt, then
    lets the stop end the run.
    """

    def __init__(self, stopped: Stopped, request: str) -> None:
        super().__init__(stopped.message, stopped.exit_code)
        self.request = request
