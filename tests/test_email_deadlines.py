"""E-mail like an HTTP try: the whole SMTP session is bounded by its timeout and the run's deadline,
a stop ends it, and a session the deadline leaves no time for is not started.

A raw loopback server that drips its greeting one byte every 0.1 s stands for a slow SMTP server
(each byte resets a socket timeout, so only a bound on the whole session ends it). Elapsed times
are only bounded from above, with generous slack.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from inproc import InProcess
from jobkit import Netwatch

from netwatch.errors import ExitCode, Stopped, StoppedDuringRequest
from netwatch.notify.email import EmailChannel
from netwatch.notify.message import Message
from netwatch.running.stopflag import StopFlag

MESSAGE = Message(kind="host_offline", subject="cam-01", title="OFFLINE: cam-01", body="down",
                  occurred_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC), recovery=False, account="1234",
                  partition="1", zone="7", code=None, data={})
HOSTS = [{"name": "lo-1", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "001"}]


class DrippingGreeting:
    """Accepts on 127.0.0.1 and greets `220 ` then one byte every 0.1 s, never ending the line (for `total_s`)."""

    def __init__(self, total_s: float = 20.0) -> None:
        self._total_s = total_s
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.closing = threading.Event()
        self._seen = threading.Condition()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> DrippingGreeting:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closing.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def wait_for_connection(self, timeout: float = 30.0) -> None:
        with self._seen:
            if not self._seen.wait_for(lambda: self.connections > 0, timeout):
                raise AssertionError(f"no SMTP connection within {timeout} s")

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._seen:
                self.connections += 1
                self._seen.notify_all()
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        ends = time.monotonic() + self._total_s
        with conn:
            try:
                conn.sendall(b"220 ")
                while not self.closing.wait(0.1) and time.monotonic() < ends:
                    conn.sendall(b"a")
            except OSError:
                return  # the client hung up


@contextmanager
def silent_listener() -> Iterator[socket.socket]:
    """A listening socket nobody accepts on: a connection attempt would wait in its backlog."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        yield listener


def no_connection_came(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def channel(port: int, *, timeout_s: float, deadline: Callable[[], float],
            check_stop: Callable[[], None] = lambda: None) -> EmailChannel:
    return EmailChannel("127.0.0.1", port, starttls=False, tls=False, username=None, password=None,
                        sender="nw@example.invalid", recipients=["ops@example.invalid"], timeout_s=timeout_s,
                        deadline=deadline, check_stop=check_stop)


def run_deadline(seconds: float) -> Callable[[], float]:
    ends = time.monotonic() + seconds
    return lambda: ends - time.monotonic()


def test_a_dripping_greeting_ends_at_the_timeout_as_pending() -> None:
    with DrippingGreeting() as server:
        started = time.monotonic()
        delivery = channel(server.port, timeout_s=0.5, deadline=run_deadline(60)).send(MESSAGE, "k")
        assert time.monotonic() - started < 3
    assert delivery.status == "pending"
    assert delivery.error == f"SMTP 127.0.0.1:{server.port}: Timeout (no complete SMTP session within 0.5s)"


def test_the_run_deadline_bounds_a_session_with_a_longer_timeout() -> None:
    with DrippingGreeting() as server:
        started = time.monotonic()
        delivery = channel(server.port, timeout_s=30, deadline=run_deadline(1.5)).send(MESSAGE, "k")
        assert time.monotonic() - started < 4
    assert delivery.status == "pending"
    assert delivery.error is not None and "Timeout (no complete SMTP session within 1." in delivery.error


@pytest.mark.parametrize(("left_s", "reason"), [
    (0.0, "the run's deadline was used up"),
    (0.4, "0.40s left before the run's deadline (a request needs 1s)"),
])
def test_no_session_starts_without_enough_time_left(left_s: float, reason: str) -> None:
    with silent_listener() as listener:
        port = listener.getsockname()[1]
        delivery = channel(port, timeout_s=10, deadline=lambda: left_s).send(MESSAGE, "k")
        assert no_connection_came(listener)
    assert (delivery.status, delivery.error) == ("unsent", f"SMTP 127.0.0.1:{port}: not sent, {reason}")


def test_a_stop_ends_a_session_in_progress_as_stopped_during_the_request() -> None:
    stop = StopFlag()
    with DrippingGreeting() as server:

        def stop_once_connected() -> None:
            server.wait_for_connection()
            stop.set(signal.SIGTERM)

        stopper = threading.Thread(target=stop_once_connected, daemon=True)
        stopper.start()
        started = time.monotonic()
        with pytest.raises(StoppedDuringRequest) as err:
            channel(server.port, timeout_s=30, deadline=run_deadline(60), check_stop=stop.check).send(MESSAGE, "k")
        assert time.monotonic() - started < 10
        stopper.join(timeout=5)
    assert err.value.exit_code == ExitCode.STOPPED
    assert err.value.request == f"SMTP 127.0.0.1:{server.port}"


def test_no_session_starts_once_stopped() -> None:
    stop = StopFlag()
    stop.set(signal.SIGINT)
    with silent_listener() as listener:
        email = channel(listener.getsockname()[1], timeout_s=10, deadline=run_deadline(60), check_stop=stop.check)
        with pytest.raises(Stopped) as err:
            email.send(MESSAGE, "k")
        assert no_connection_came(listener)
    assert not isinstance(err.value, StoppedDuringRequest), "nothing went out"
    assert err.value.exit_code == ExitCode.INTERRUPTED


def email_section(port: int, timeout_s: float) -> dict[str, object]:
    return {"email": {"host": "127.0.0.1", "port": port, "starttls": False, "from": "nw@example.invalid",
                      "to": "ops@example.invalid", "timeout_seconds": timeout_s}}


def test_a_dripping_smtp_server_cannot_hold_a_run_past_its_deadline(nwi: InProcess) -> None:
    with DrippingGreeting(total_s=30) as server:
        # 3 s: the session starts with well over the 1 s a request needs, even on a loaded machine.
        nwi.write_config(HOSTS, thresholds={"notify_initial": True}, run={"deadline_seconds": 3},
                         notifications=email_section(server.port, 30))
        started = time.monotonic()
        done = nwi.sweep()
        assert time.monotonic() - started < 12, "the 3 s deadline bounds the SMTP session"
    assert done.returncode == 1, done.stderr  # the mail is pending after an error
    [item] = [i for i in nwi.outbox() if i.channel == "email"]
    assert (item.status, item.attempts) == ("pending", 1)
    assert item.last_error is not None and "Timeout (no complete SMTP session within" in item.last_error


def test_sigterm_during_a_dripping_smtp_session_exits_143_and_counts_the_attempt(nw: Netwatch) -> None:
    with DrippingGreeting(total_s=30) as server:
        nw.write_config(HOSTS, thresholds={"notify_initial": True}, notifications=email_section(server.port, 30))
        running = nw.start("run", "ping-sweep")
        try:
            server.wait_for_connection()
            running.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            _, err = running.communicate(timeout=20)
        finally:
            if running.poll() is None:
                running.kill()
                running.communicate()
        assert running.returncode == 143, err
        assert time.monotonic() - signalled < 5
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    [item] = [i for i in nw.outbox() if i.channel == "email"]
    assert (item.status, item.attempts) == ("pending", 1)
    assert item.last_error == f"SMTP 127.0.0.1:{server.port}: stopped during the request"
