"""EmailChannel against a real SMTP server on 127.0.0.1 (aiosmtpd): delivery, TLS, AUTH and outcomes."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from netwatch.errors import ConfigError, ExitCode
from netwatch.notify.email import EmailChannel, SmtpAuthError, message_id
from netwatch.notify.message import Message

SENDER = "netwatch@monitor.example"
RECIPIENTS = ("ops@example.com", "night@example.com", "boss@example.com")
USER = "netwatch"
PASSWORD = "pa55-s3cret-word"

MESSAGE = Message(
    kind="host_offline",
    subject="cam-01",
    title="OFFLINE: cam-01 (10.1.2.3)",
    body="Host cam-01 stopped answering after 3 failed checks.\nSince 2024-05-01T10:00:00+00:00.",
    occurred_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
    recovery=False,
    account="1234",
    partition="1",
    zone="7",
    code=None,
    data={"host": "cam-01"},
)


@dataclass
class Handler:
    """Records accepted mails; `rcpt_reply` maps a recipient to the reply it gets instead of 250."""

    rcpt_reply: dict[str, str] = field(default_factory=dict)
    mails: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        reply = self.rcpt_reply.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 OK queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(handler: Handler, **kwargs: Any) -> Iterator[int]:
    """A real aiosmtpd server on 127.0.0.1; yields its port."""
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return Cert(cert, key)


def channel(port: int, **changes: Any) -> EmailChannel:
    values: dict[str, Any] = {
        "starttls": False,
        "tls": False,
        "username": None,
        "password": None,
        "sender": SENDER,
        "recipients": RECIPIENTS,
        "timeout_s": 5.0,
        "deadline": lambda: 300.0,
    }
    values.update(changes)
    return EmailChannel("127.0.0.1", port, **values)


def test_delivers_one_mail_to_every_recipient() -> None:
    handler = Handler()
    with smtp_server(handler) as port:
        delivery = channel(port).send(MESSAGE, "host_offline:cam-01:2024-05-01T10:00:00Z")
    assert (delivery.status, delivery.http_status, delivery.error) == ("sent", None, None)
    assert len(handler.mails) == 1
    mail_from, rcpt_tos, mail = handler.mails[0]
    assert mail_from == SENDER
    assert rcpt_tos == list(RECIPIENTS)
    assert mail["Subject"] == "OFFLINE: cam-01 (10.1.2.3)"
    assert mail["From"] == SENDER
    assert mail["To"] == ", ".join(RECIPIENTS)
    assert mail["Message-ID"] == message_id("host_offline:cam-01:2024-05-01T10:00:00Z", SENDER)
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"].datetime == MESSAGE.occurred_at
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().splitlines() == MESSAGE.body.splitlines()


def test_message_id_is_stable_per_key_and_differs_between_keys() -> None:
    first = message_id("k-1", SENDER)
    assert first == message_id("k-1", SENDER)
    assert first != message_id("k-2", SENDER)
    assert first.startswith("<netwatch.") and first.endswith("@monitor.example>")


def test_a_retry_with_the_same_key_repeats_the_message_id() -> None:
    handler = Handler()
    with smtp_server(handler) as port:
        email_channel = channel(port)
        assert email_channel.send(MESSAGE, "key-7").status == "sent"
        assert email_channel.send(MESSAGE, "key-7").status == "sent"
    assert [m["Message-ID"] for _, _, m in handler.mails] == [message_id("key-7", SENDER)] * 2


def test_line_breaks_in_the_title_do_not_reach_the_subject_header() -> None:
    handler = Handler()
    message = Message(**{**MESSAGE.__dict__, "title": "OFFLINE:\n cam-01\r\nBcc: x@example.com"})
    with smtp_server(handler) as port:
        assert channel(port).send(message, "k").status == "sent"
    mail = handler.mails[0][2]
    assert mail["Subject"] == "OFFLINE: cam-01 Bcc: x@example.com"
    assert mail["Bcc"] is None


def test_starttls_with_a_trusted_self_signed_certificate(cert: Cert) -> None:
    handler = Handler()
    with smtp_server(handler, tls_context=cert.server_context(), require_starttls=True) as port:
        delivery = channel(port, starttls=True, ssl_context=cert.client_context()).send(MESSAGE, "k")
    assert delivery == type(delivery)("sent", None, None)
    assert len(handler.mails) == 1


def test_starttls_verifies_the_certificate_by_default(cert: Cert) -> None:
    handler = Handler()
    with smtp_server(handler, tls_context=cert.server_context(), require_starttls=True) as port:
        delivery = channel(port, starttls=True).send(MESSAGE, "k")
    assert delivery.status == "pending"
    assert delivery.error is not None and "SSLCertVerificationError" in delivery.error
    assert handler.mails == []


def test_without_starttls_a_server_that_requires_it_fails_the_message(cert: Cert) -> None:
    handler = Handler()
    with smtp_server(handler, tls_context=cert.server_context(), require_starttls=True) as port:
        delivery = channel(port).send(MESSAGE, "k")
    assert delivery.status == "failed"
    assert delivery.error is not None and "530" in delivery.error
    assert handler.mails == []


def test_implicit_tls(cert: Cert) -> None:
    handler = Handler()
    with smtp_server(handler, ssl_context=cert.server_context()) as port:
        delivery = channel(port, tls=True, ssl_context=cert.client_context()).send(MESSAGE, "k")
    assert delivery.status == "sent"
    assert len(handler.mails) == 1


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@contextmanager
def auth_server(handler: Handler, cert: Cert) -> Iterator[int]:
    with smtp_server(
        handler,
        tls_context=cert.server_context(),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
        auth_required=True,
    ) as port:
        yield port


def test_login_after_starttls(cert: Cert) -> None:
    handler = Handler()
    with auth_server(handler, cert) as port:
        email_channel = channel(
            port, starttls=True, ssl_context=cert.client_context(), username=USER, password=PASSWORD
        )
        delivery = email_channel.send(MESSAGE, "k")
    assert delivery.status == "sent"
    assert len(handler.mails) == 1
    assert PASSWORD not in repr(email_channel)


def test_wrong_password_raises_a_config_error_without_the_password(
    cert: Cert, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Handler()
    wrong = "wr0ng-pa55word"
    with auth_server(handler, cert) as port:
        email_channel = channel(port, starttls=True, ssl_context=cert.client_context(), username=USER, password=wrong)
        with pytest.raises(SmtpAuthError) as info:
            email_channel.send(MESSAGE, "k")
    message = str(info.value)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == ExitCode.CONFIG
    assert "535" in message
    assert "notifications.email.username" in message and "notifications.email.password_env" in message
    assert wrong not in message and wrong not in caplog.text
    assert handler.mails == []


def test_login_without_tls_where_the_server_offers_auth_only_after_starttls(cert: Cert) -> None:
    handler = Handler()
    with smtp_server(
        handler, tls_context=cert.server_context(), authenticator=_authenticator, auth_require_tls=True
    ) as port:
        with pytest.raises(SmtpAuthError, match=r"offers no usable AUTH method .*STARTTLS") as info:
            channel(port, username=USER, password=PASSWORD).send(MESSAGE, "k")
    assert PASSWORD not in str(info.value)
    assert handler.mails == []


def test_temporary_recipient_refusal_is_pending() -> None:
    handler = Handler(rcpt_reply={r: "451 4.3.0 Mailbox busy, try later" for r in RECIPIENTS})
    with smtp_server(handler) as port:
        delivery = channel(port).send(MESSAGE, "k")
    assert delivery.status == "pending"
    assert delivery.http_status is None
    assert delivery.error is not None and "451 4.3.0 Mailbox busy" in delivery.error
    assert handler.mails == []


def test_permanent_refusal_of_every_recipient_fails() -> None:
    handler = Handler(rcpt_reply={r: "550 5.1.1 No such user" for r in RECIPIENTS})
    with smtp_server(handler) as port:
        delivery = channel(port).send(MESSAGE, "k")
    assert delivery.status == "failed"
    assert delivery.error is not None
    assert "refused every recipient" in delivery.error and "ops@example.com (550 5.1.1 No such user)" in delivery.error


def test_mixed_temporary_and_permanent_refusals_stay_pending() -> None:
    replies = {"ops@example.com": "550 5.1.1 No such user", "night@example.com": "451 4.3.0 later"}
    handler = Handler(rcpt_reply={**replies, "boss@example.com": "550 5.1.1 No such user"})
    with smtp_server(handler) as port:
        delivery = channel(port).send(MESSAGE, "k")
    assert delivery.status == "pending"


def test_some_recipients_refused_counts_as_sent_and_names_them() -> None:
    handler = Handler(rcpt_reply={"night@example.com": "550 5.1.1 No such user"})
    with smtp_server(handler) as port:
        delivery = channel(port).send(MESSAGE, "k")
    assert delivery.status == "sent"
    assert delivery.error is not None and "night@example.com (550 5.1.1 No such user)" in delivery.error
    assert handler.mails[0][1] == ["ops@example.com", "boss@example.com"]


def test_nothing_listening_is_pending() -> None:
    delivery = channel(_free_port(), timeout_s=2.0).send(MESSAGE, "k")
    assert delivery.status == "pending"
    assert delivery.error is not None and "ConnectionRefusedError" in delivery.error


def test_a_server_that_never_greets_times_out_as_pending() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        delivery = channel(listener.getsockname()[1], timeout_s=0.3).send(MESSAGE, "k")
    assert delivery.status == "pending"
    # The socket's timeout and the session's bound are the same: either may end it first.
    assert delivery.error is not None and re.search(r"timed out|Timeout \(no complete SMTP session", delivery.error)
