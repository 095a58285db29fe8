"""A loopback HTTP server whose answer is scripted byte by byte: dripping, stalling or endless.

    with ScriptedServer(dripping(b"", b"HTTP/1.1 200 ", b"O")) as server:
        ...                          # point a client at server.url
        server.wait_for_request()    # a request head arrived
        server.sent, server.hung_up  # bytes written so far; answers the client cut short

An answer is a generator of byte pieces, written as it yields them; it paces itself on the
server's `closing` event, so every answer is bounded in time and ends when the server closes.
The server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

Answer = Callable[[threading.Event], Iterator[bytes]]

_HEAD_MAX = 65536
# A server write that the client does not take within this long ends the answer.
_SEND_TIMEOUT_S = 5.0


def dripping(at_once: bytes, then: bytes, filler: bytes, *, interval_s: float = 0.1,
             total_s: float = 10.0) -> Answer:
    """Writes `at_once`, then `then` followed by `filler` forever, one byte every `interval_s`, for `total_s`."""

    def answer(closing: threading.Event) -> Iterator[bytes]:
        if at_once:
            yield at_once
        ends = time.monotonic() + total_s
        for byte in itertools.chain(then, itertools.cycle(filler)):
            if closing.wait(interval_s) or time.monotonic() >= ends:
                return
            yield bytes([byte])

    return answer


def streaming(head: bytes, size: int, *, total_s: float = 20.0, chunk: int = 64 * 1024) -> Answer:
    """Writes `head`, then up to `size` body bytes (made as they are sent) as fast as the client takes them."""

    def answer(closing: threading.Event) -> Iterator[bytes]:
        yield head
        piece = b" " * chunk
        ends = time.monotonic() + total_s
        for _ in range(size // chunk):
            if closing.is_set() or time.monotonic() >= ends:
                return
            yield piece

    return answer


def stalling(at_once: bytes, *, total_s: float = 10.0) -> Answer:
    """Writes `at_once`, then holds the connection open without writing, for `total_s`."""

    def answer(closing: threading.Event) -> Iterator[bytes]:
        yield at_once
        closing.wait(total_s)

    return answer


class ScriptedServer:
    """Answers every request on 127.0.0.1 with `answer`; use as a context manager."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.heads: list[bytes] = []
        self.sent = 0
        self.hung_up = 0
        self._seen = threading.Condition(self.lock)
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "use ScriptedServer as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ScriptedServer:
        self._server = _TCPServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for_request(self, count: int = 1, timeout: float = 30.0) -> None:
        """Waits (bounded) until `count` request heads have arrived."""
        with self._seen:
            if not self._seen.wait_for(lambda: len(self.heads) >= count, timeout):
                raise AssertionError(f"{count} requests expected within {timeout} s, {len(self.heads)} came")

    def wait_for_hang_up(self, timeout: float = 10.0) -> None:
        """Waits (bounded) until some answer ended because the client closed its connection."""
        with self._seen:
            if not self._seen.wait_for(lambda: self.hung_up > 0, timeout):
                raise AssertionError(f"the client did not hang up within {timeout} s")

    def _note_head(self, head: bytes) -> None:
        with self._seen:
            self.heads.append(head)
            self._seen.notify_all()

    def _note_sent(self, size: int) -> None:
        with self.lock:
            self.sent += size

    def _note_hang_up(self) -> None:
        with self._seen:
            self.hung_up += 1
            self._seen.notify_all()


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, scripted: ScriptedServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripted = scripted


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        scripted = self.server.scripted
        conn: socket.socket = self.request
        conn.settimeout(_SEND_TIMEOUT_S)
        try:
            head = _read_request(conn)
            scripted._note_head(head)
            for piece in scripted.answer(scripted.closing):
                conn.sendall(piece)
                scripted._note_sent(len(piece))
        except (BrokenPipeError, ConnectionResetError):
            scripted._note_hang_up()
        except TimeoutError:
            return  # the client stopped reading but kept the connection: the answer ends here


def _read_request(conn: socket.socket) -> bytes:
    """The request head, after reading (and dropping) a body announced by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > _HEAD_MAX:
            raise ConnectionResetError("no complete request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head
