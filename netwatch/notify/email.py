"""The `email` channel: one SMTP session per message, all recipients in one mail.

Outcomes: accepted -> sent; 4xx replies, refused connections, timeouts and disconnects -> pending;
5xx replies -> failed; a refused login (5xx to AUTH) raises SmtpAuthError so the job stops; less
than bounded.MIN_REQUEST_S left before the run's deadline -> unsent (no session is started).
The whole session runs through BoundedCalls (netwatch/bounded.py), like an HTTP try: it ends within
min(timeout, the time left before the deadline) however slowly the server talks, and a stop ends
it within a slice (StoppedDuringRequest: the attempt counts).
The password never appears in a log line, a Delivery error or an exception message.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from email.message import EmailMessage
from email.utils import format_datetime

from netwatch.bounded import BoundedCalls, never_stopped, too_late
from netwatch.errors import ConfigError, Stopped, StoppedDuringRequest
from netwatch.notify.message import Message
from netwatch.outcome import Delivery

log = logging.getLogger(__name__)

_REPLY_MAX_CHARS = 160


class SmtpAuthError(ConfigError):
    """The SMTP server refused our login, or offers no way to log in: fix the configuration."""


class _GivenUp(Exception):
    """The session was abandoned (time up or stopped): it goes no further."""


def message_id(idempotency_key: str, sender: str) -> str:
    """A Message-ID that is the same for every attempt with one key, so receivers can de-duplicate."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "netwatch.invalid"
    return f"<netwatch.{digest}@{domain}>"


class EmailChannel:
    """Send notifications by SMTP to a fixed list of recipients."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool,
        tls: bool,
        username: str | None,
        password: str | None,
        sender: str,
        recipients: Sequence[str],
        timeout_s: float,
        deadline: Callable[[], float],
        check_stop: Callable[[], None] = never_stopped,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`deadline` returns the seconds left before the run's deadline; `check_stop` raises Stopped once stopped."""
        self._host = host
        self._port = port
        self._starttls = starttls
        self._tls = tls
        self._username = username or None
        self._password = password
        self._sender = sender
        self._recipients = tuple(recipients)
        self._timeout_s = timeout_s
        self._deadline = deadline
        self._check_stop = check_stop
        # smtplib's own default context verifies nothing; ours checks the certificate and host name.
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._sessions: BoundedCalls[dict[str, tuple[int, bytes]]] = BoundedCalls("netwatch-smtp")

    def __repr__(self) -> str:
        return f"EmailChannel(host={self._host!r}, port={self._port}, recipients={len(self._recipients)})"

    def compose(self, message: Message, idempotency_key: str) -> EmailMessage:
        """The mail for `message`: Subject = title, plain-text body, all recipients in To."""
        mail = EmailMessage()
        # A header cannot hold line breaks; an operator's title template might.
        mail["Subject"] = " ".join(message.title.split())
        mail["From"] = self._sender
        mail["To"] = ", ".join(self._recipients)
        mail["Date"] = format_datetime(message.occurred_at)
        mail["Message-ID"] = message_id(idempotency_key, self._sender)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body)
        return mail

    def send(self, message: Message, idempotency_key: str) -> Delivery:
        """One SMTP session delivering `message`; see the module docstring for the outcome mapping."""
        mail = self.compose(message, idempotency_key)
        where = f"SMTP {self._host}:{self._port}"
        left = self._deadline()
        late = too_late(left, self._timeout_s)
        if late is not None:
            return Delivery("unsent", None, f"{where}: not sent, {late}")
        self._check_stop()
        timeout = min(self._timeout_s, left)
        try:
            refused = self._sessions.run(functools.partial(self._deliver, mail, timeout), timeout, self._check_stop)
        except Stopped as exc:
            raise StoppedDuringRequest(exc, where) from None
        except smtplib.SMTPAuthenticationError as exc:
            if exc.smtp_code >= 500:
                raise SmtpAuthError(
                    f"email: {where} refused the login ({exc.smtp_code} {self._reply(exc.smtp_error)}): "
                    "check notifications.email.username and the variable named by notifications.email.password_env"
                ) from None
            return self._response_delivery(where, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPRecipientsRefused as exc:
            return self._refused_delivery(where, exc.recipients.items())
        except smtplib.SMTPResponseException as exc:
            return self._response_delivery(where, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            raise ConfigError(f"email: {where}: {self._redact(str(exc))}; check notifications.email.starttls") from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # OSError covers refused connections, timeouts, DNS and TLS failures.
            error = f"{where}: {type(exc).__name__}: {self._redact(str(exc))}".rstrip(": ")
            log.warning("email not sent, will retry: %s", error)
            return Delivery("pending", None, error)
        if refused is None:
            error = f"{where}: Timeout (no complete SMTP session within {timeout:g}s)"
            log.warning("email not sent, will retry: %s", error)
            return Delivery("pending", None, error)
        if refused:
            # Part of the recipients accepted: a retry would repeat the mail to them, so this counts as sent.
            note = "; ".join(f"{rcpt} ({code} {self._reply(reply)})" for rcpt, (code, reply) in refused.items())
            log.warning("email sent, but %s refused: %s", where, note)
            return Delivery("sent", None, f"{where} refused some recipients: {note}")
        return Delivery("sent", None, None)

    def _deliver(self, mail: EmailMessage, timeout_s: float,
                 abandoned: threading.Event) -> dict[str, tuple[int, bytes]]:
        """Connect, secure, log in and send; return the recipients the server refused.

        Runs through BoundedCalls: once the caller gave up (`abandoned`), it goes no further than the
        step under way, so a mail given up on as pending is not sent after all (but for a race
        with its last step; a retry repeats its Message-ID).
        """

        def go_on() -> None:
            if abandoned.is_set():
                raise _GivenUp

        smtp: smtplib.SMTP
        if self._tls:
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=timeout_s, context=self._ssl_context)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=timeout_s)
        try:
            go_on()
            if self._starttls:
                smtp.starttls(context=self._ssl_context)
                go_on()
            if self._username is not None and self._password is not None:
                self._login(smtp, self._username, self._password)
                go_on()
            return smtp.send_message(mail, from_addr=self._sender, to_addrs=list(self._recipients))
        finally:
            if abandoned.is_set():
                smtp.close()  # no QUIT: a server that drips its replies would hold this thread longer
            else:
                self._close(smtp)

    def _login(self, smtp: smtplib.SMTP, username: str, password: str) -> None:
        try:
            smtp.login(username, password)
        except smtplib.SMTPException as exc:
            # Exactly these two mean "no AUTH we can use here"; subclasses carry server replies.
            if type(exc) not in (smtplib.SMTPException, smtplib.SMTPNotSupportedError):
                raise
            hint = "" if (self._tls or self._starttls) else " (many servers offer AUTH only after STARTTLS)"
            raise SmtpAuthError(
                f"email: SMTP {self._host}:{self._port} offers no usable AUTH method{hint}: "
                "check notifications.email.username, starttls and port"
            ) from None

    @staticmethod
    def _close(smtp: smtplib.SMTP) -> None:
        # The mail is already accepted (or the error already decided) by now: a failed QUIT changes nothing.
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _response_delivery(self, where: str, code: int, reply: bytes | str) -> Delivery:
        error = f"{where}: {code} {self._reply(reply)}"
        if 500 <= code < 600:
            log.warning("email failed for good: %s", error)
            return Delivery("failed", None, error)
        log.warning("email not sent, will retry: %s", error)
        return Delivery("pending", None, error)

    def _refused_delivery(self, where: str, refused: Iterable[tuple[str, tuple[int, bytes]]]) -> Delivery:
        items = list(refused)
        note = "; ".join(f"{rcpt} ({code} {self._reply(reply)})" for rcpt, (code, reply) in items)
        error = f"{where} refused every recipient: {note}"
        if all(500 <= code < 600 for _, (code, _) in items):
            log.warning("email failed for good: %s", error)
            return Delivery("failed", None, error)
        log.warning("email not sent, will retry: %s", error)
        return Delivery("pending", None, error)

    def _reply(self, reply: bytes | str) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        text = " ".join(self._redact(text).split())
        if len(text) > _REPLY_MAX_CHARS:
            text = text[: _REPLY_MAX_CHARS - 3] + "..."
        return text

    def _redact(self, text: str) -> str:
        # A server has no business echoing the password, but a log line must not carry it if one does.
        if self._password:
            text = text.replace(self._password, "<redacted>")
        return text
