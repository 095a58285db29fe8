"""A loopback HTTP(S) server for the service checks: one behaviour per path, every request recorded.

    with ServiceServer(tls=cert) as server:      # cert: a trustme.LeafCert, or None for plain HTTP
        url = server.url + "/status/500"
        server.seen                              # Seen(method, path, headers, body) per request
        server.max_in_flight                     # the most requests answered at once

Paths: /ok, /status/CODE (a text body), /slow/MS (answers after MS ms), /hang (never answers),
/redirect/PATH (302 to /PATH), /see-other (303 to /echo), /loop (302 to itself), /chain/N (302 to
/chain/N+1), /away?to=URL (302 to URL), /auth (Basic-Auth USER / PASSWORD, 401 otherwise), /echo
(200 with the request headers as its body), /huge (HUGE_BYTES announced and streamed as fast as
the client reads; `server.sent_bytes` counts them), /tail/N (N bytes, then "needle"), /big-error
(500 with a long multi-line body), /switch/NAME (the status `server.switch[NAME]`, 200 until set).
Waits pace themselves on the server's `closing` event, so every answer ends when the server closes.
The server listens on 127.0.0.1 only, on a port the system picks.
"""

from __future__ import annotations

import base64
import http.server
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

USER = "monitor"
PASSWORD = "s3cret-Pass-7781"
HUGE_BYTES = 1024 * 1024 * 1024
OK_BODY = b"all systems go"
BIG_ERROR_LINE = b"Traceback line with\tcontrol\x07 characters and detail\r\n"
_CHUNK = b"x" * 65536
_HANG_S = 30.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    names: list[str]  # every header name as sent, in order: shows a header sent twice


class ServiceServer:
    """Use as a context manager; `url` is `http(s)://127.0.0.1:PORT`."""

    def __init__(self, tls: trustme.LeafCert | None = None) -> None:
        self.tls: ssl.SSLContext | None = None
        if tls is not None:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.configure_cert(self.tls)
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent_bytes = 0
        self.switch: dict[str, int] = {}
        self._arrived = threading.Condition(self.lock)
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def __enter__(self) -> ServiceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        """Waits (bounded) until `count` requests have arrived."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.seen) >= count, timeout):
                raise AssertionError(f"{count} requests expected within {timeout} s, {len(self.seen)} came")

    def paths(self) -> list[str]:
        with self.lock:
            return [seen.path for seen in self.seen]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ServiceServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens in the request's own thread, so a slow client holds up no other.
        if self.owner.tls is not None:
            request.settimeout(10)
            request = self.owner.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that reject our certificate or hang up early are what the tests are about."""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    _counted = False  # this request is counted in its server's in_flight

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with owner.lock:
            owner.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body, self.headers.keys()))
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
            owner._arrived.notify_all()
        self._counted = True
        try:
            self._route(owner, urlsplit(self.path))
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client gave up on the answer
        finally:
            self._leave_flight()

    def _leave_flight(self) -> None:
        """The request is no longer in flight: before its answer goes, so a client's next request, sent
        once it has the answer, never overlaps this one in `max_in_flight`."""
        if self._counted:
            self._counted = False
            with self.server.owner.lock:
                self.server.owner.in_flight -= 1

    def _route(self, owner: ServiceServer, url: Any) -> None:
        parts = url.path.strip("/").split("/")
        head, rest = parts[0], parts[1:]
        if head == "ok":
            self._send(200, OK_BODY)
        elif head == "status":
            self._send(int(rest[0]), f"status {rest[0]} from the server\nsecond line".encode())
        elif head == "slow":
            owner.closing.wait(int(rest[0]) / 1000)
            self._send(200, b"slow but fine")
        elif head == "hang":
            owner.closing.wait(_HANG_S)
        elif head == "redirect":
            self._redirect(302, "/" + "/".join(rest))
        elif head == "see-other":
            self._redirect(303, "/echo")
        elif head == "loop":
            self._redirect(302, "/loop")
        elif head == "chain":
            self._redirect(302, f"/chain/{int(rest[0]) + 1}")
        elif head == "away":
            self._redirect(302, parse_qs(url.query)["to"][0])
        elif head == "auth":
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") == expected:
                self._send(200, b"welcome")
            else:
                self._send(401, b"who are you? you sent " + (self.headers.get("Authorization") or "").encode())
        elif head == "echo":
            self._send(200, str(self.headers).encode())
        elif head == "huge":
            self._huge(owner)
        elif head == "tail":
            self._send(200, b"x" * int(rest[0]) + b"needle")
        elif head == "switch":
            with owner.lock:
                status = owner.switch.get(rest[0], 200)
            self._send(status, f"switch {rest[0]}: {status}".encode())
        elif head == "big-error":
            self._send(500, BIG_ERROR_LINE * 400)
        else:
            self._send(404, b"no such path")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._leave_flight()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self._send(status, b"moved", {"Location": location})

    def _huge(self, owner: ServiceServer) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        for _ in range(HUGE_BYTES // len(_CHUNK)):
            if owner.closing.is_set():
                return
            self.wfile.write(_CHUNK)
            with owner.lock:
                owner.sent_bytes += len(_CHUNK)
