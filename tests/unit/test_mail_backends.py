"""E-mail backends, with SMTP exercised against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import io
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage as MimeMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pro_app.messaging import (
    ConsoleEmailSender,
    DeliveryError,
    EmailMessage,
    FileEmailSender,
    FileSmsSender,
    MemoryEmailSender,
    SmsMessage,
    SmtpEmailSender,
    build_email_sender,
    message_id_for,
    read_outbox_files,
)
from tests.smtp_server import free_port

RECIPIENT = "paziente.rossi@example.org"
SENDER = "Studio PRO <questionari@pro.example.org>"
LINK = "https://pro.example.org/q/AbCdEf0123456789-_xyz"


def make_message(**changes: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "message_id": "<outbox-42@pro.example.org>",
        "to": RECIPIENT,
        "subject": "Il questionario è pronto",
        "text": f"Gentile paziente, il questionario è pronto.\n\n{LINK}\n",
    }
    fields.update(changes)
    return EmailMessage(**fields)


class Recorder:
    """aiosmtpd handler keeping every accepted envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 queued"

    def parsed(self) -> MimeMessage:
        [envelope] = self.envelopes
        mime = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(mime, MimeMessage)
        return mime


class Refuser(Recorder):
    """Answers `reply` at one stage (MAIL, RCPT or DATA); the reply repeats the address."""

    def __init__(self, stage: str, reply: str) -> None:
        super().__init__()
        self.stage, self.reply = stage, reply

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.stage == "MAIL":
            return self.reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.stage == "RCPT":
            return self.reply.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.reply if self.stage == "DATA" else "250 OK"


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., Controller]]:
    controllers: list[Controller] = []

    def start(handler: Any, **kwargs: Any) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        controllers.append(controller)
        return controller

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the test CA) for 127.0.0.1."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def smtp_sender(controller: Controller, **kwargs: Any) -> SmtpEmailSender:
    return SmtpEmailSender(
        host="127.0.0.1", port=controller.port, sender=SENDER, timeout=5, **kwargs
    )


def test_plain_delivery_keeps_headers_utf8_and_link(start_smtp: Callable[..., Controller]) -> None:
    recorder = Recorder()
    controller = start_smtp(recorder)

    provider_id = smtp_sender(controller).send(make_message())

    assert provider_id == "<outbox-42@pro.example.org>"
    [envelope] = recorder.envelopes
    assert envelope.mail_from == "questionari@pro.example.org"
    assert envelope.rcpt_tos == [RECIPIENT]
    mime = recorder.parsed()
    assert mime["From"] == SENDER
    assert mime["To"] == RECIPIENT
    assert mime["Subject"] == "Il questionario è pronto"
    assert mime["Message-ID"] == "<outbox-42@pro.example.org>"
    assert mime["Date"] is not None
    assert mime["Auto-Submitted"] == "auto-generated"
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content_charset() == "utf-8"
    assert mime.get_content().replace("\r\n", "\n") == make_message().text
    assert envelope.content.isascii()  # quoted-printable: safe through any relay


def test_html_makes_multipart_alternative(start_smtp: Callable[..., Controller]) -> None:
    recorder = Recorder()
    controller = start_smtp(recorder)

    smtp_sender(controller).send(make_message(html=f'<p>È pronto: <a href="{LINK}">apri</a></p>'))

    mime = recorder.parsed()
    assert mime.get_content_type() == "multipart/alternative"
    plain = mime.get_body(preferencelist=("plain",))
    html = mime.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    assert LINK in plain.get_content()
    assert f'href="{LINK}"' in html.get_content()


def test_starttls_with_auth_login(
    start_smtp: Callable[..., Controller], tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_context, client_context = tls
    mechanisms: list[str] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        mechanisms.append(mechanism)
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"reminders",
            b"s3cret",
        )
        # handled=False: aiosmtpd then answers 535 itself (its default assumes we replied).
        return AuthResult(success=ok, handled=False)

    recorder = Recorder()
    controller = start_smtp(
        recorder,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=["PLAIN"],
    )
    sender = smtp_sender(
        controller,
        use_tls=True,
        username="reminders",
        password="s3cret",
        ssl_context=client_context,
    )

    sender.send(make_message())

    assert mechanisms == ["LOGIN"]
    assert recorder.parsed()["Message-ID"] == "<outbox-42@pro.example.org>"

    wrong = smtp_sender(
        controller, use_tls=True, username="reminders", password="nope", ssl_context=client_context
    )
    with pytest.raises(DeliveryError) as caught:
        wrong.send(make_message())
    assert not caught.value.permanent
    assert caught.value.reason.startswith("SMTP 535 authentication failed")


def test_starttls_refuses_an_untrusted_certificate(
    start_smtp: Callable[..., Controller], tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    controller = start_smtp(Recorder(), tls_context=tls[0], require_starttls=True)

    with pytest.raises(DeliveryError) as caught:
        smtp_sender(controller, use_tls=True).send(make_message())  # system CAs only

    assert caught.value.reason == "SMTP TLS certificate not trusted"
    assert not caught.value.permanent


def test_implicit_ssl(
    start_smtp: Callable[..., Controller], tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    recorder = Recorder()
    controller = start_smtp(recorder, ssl_context=tls[0])

    smtp_sender(controller, use_ssl=True, ssl_context=tls[1]).send(make_message())

    assert recorder.parsed()["To"] == RECIPIENT


@pytest.mark.parametrize(
    ("stage", "reply", "permanent", "reason"),
    [
        ("RCPT", "550 5.1.1 <{address}>: user unknown", True, "SMTP 550 5.1.1 recipient refused"),
        (
            "RCPT",
            "451 4.3.0 <{address}>: try later",
            False,
            "SMTP 451 4.3.0 recipient refused (temporary)",
        ),
        ("DATA", "554 5.7.1 message rejected as spam", True, "SMTP 554 5.7.1 message refused"),
        (
            "MAIL",
            "553 5.7.1 sender not allowed",
            False,
            "SMTP 553 sender refused (check MAIL_SENDER)",
        ),
    ],
)
def test_refusals_are_classified_without_the_address(
    start_smtp: Callable[..., Controller], stage: str, reply: str, permanent: bool, reason: str
) -> None:
    controller = start_smtp(Refuser(stage, reply))

    with pytest.raises(DeliveryError) as caught:
        smtp_sender(controller).send(make_message())

    assert caught.value.permanent is permanent
    assert caught.value.reason == reason
    assert RECIPIENT not in str(caught.value)
    assert "rossi" not in repr(caught.value)


def test_connection_refused_is_temporary() -> None:
    sender = SmtpEmailSender(host="127.0.0.1", port=free_port(), sender=SENDER, timeout=1)

    with pytest.raises(DeliveryError) as caught:
        sender.send(make_message())

    assert caught.value.reason == "SMTP connection refused"
    assert not caught.value.permanent


def test_silent_server_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        sender = SmtpEmailSender(
            host="127.0.0.1", port=silent.getsockname()[1], sender=SENDER, timeout=1
        )
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            sender.send(make_message())

    assert caught.value.reason == "SMTP timeout"
    assert not caught.value.permanent
    assert time.monotonic() - started < 5


def test_header_with_a_line_break_is_refused_before_connecting() -> None:
    sender = SmtpEmailSender(host="127.0.0.1", port=free_port(), sender=SENDER, timeout=1)

    with pytest.raises(DeliveryError) as caught:
        sender.send(make_message(to=f"{RECIPIENT}\r\nBcc: other@example.org"))

    assert caught.value.permanent
    assert RECIPIENT not in caught.value.reason


def test_message_id_uses_the_sender_domain() -> None:
    assert message_id_for(7, SENDER) == "<outbox-7@pro.example.org>"
    assert message_id_for(8, "Q@Pro.Example.org") == "<outbox-8@pro.example.org>"
    assert message_id_for(9, "") == "<outbox-9@localhost>"


def test_console_masks_the_recipient_and_shows_the_text() -> None:
    stream = io.StringIO()

    ConsoleEmailSender(sender=SENDER, stream=stream).send(make_message())

    out = stream.getvalue()
    assert "p***@example.org" in out
    assert RECIPIENT not in out
    assert "Il questionario è pronto" in out
    assert LINK in out


def test_file_backend_writes_and_reads_back(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"  # created on first send
    mail = FileEmailSender(folder=folder, sender=SENDER)

    first = mail.send(make_message())
    FileSmsSender(folder=folder, sender="StudioPRO").send(
        SmsMessage(reference="outbox-43", to="+393471234567", text=f"Questionario: {LINK}")
    )
    second = mail.send(
        make_message(
            message_id="<outbox-44@pro.example.org>", subject="Promemoria", html="<p>Promemoria</p>"
        )
    )

    assert first.startswith("file:")
    assert first.endswith("-outbox-42.eml")
    assert (folder / first.removeprefix("file:")).is_file()
    messages = read_outbox_files(folder)
    assert [m["kind"] for m in messages] == ["email", "sms", "email"]
    newest, sms, oldest = messages
    assert newest["file_name"] == second.removeprefix("file:")
    assert newest["subject"] == "Promemoria"
    assert sms == {
        "kind": "sms",
        "file_name": sms["file_name"],
        "to": "+393471234567",
        "subject": None,
        "text": f"Questionario: {LINK}",
        "sent_at": sms["sent_at"],
    }
    assert oldest["to"] == RECIPIENT
    assert oldest["subject"] == "Il questionario è pronto"
    assert oldest["text"] == make_message().text
    assert newest["sent_at"] >= sms["sent_at"] >= oldest["sent_at"]
    assert oldest["sent_at"].tzinfo is not None


def test_read_outbox_files_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert read_outbox_files(tmp_path / "nothing-yet") == []


def test_memory_backend_records_and_can_fail() -> None:
    sender = MemoryEmailSender()

    assert sender.send(make_message()) == "<outbox-42@pro.example.org>"
    sender.fail_with = DeliveryError("SMTP connection refused", permanent=False)
    with pytest.raises(DeliveryError, match="connection refused"):
        sender.send(make_message(message_id="<outbox-43@pro.example.org>"))

    assert [m.message_id for m in sender.sent] == ["<outbox-42@pro.example.org>"]


def test_build_picks_the_configured_backend(tmp_path: Path) -> None:
    smtp = build_email_sender(
        {
            "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "mail.example.org",
            "MAIL_PORT": "587",
            "MAIL_USE_TLS": "true",
            "MAIL_USERNAME": "u",
            "MAIL_PASSWORD": "p",
            "MAIL_SENDER": SENDER,
            "MAIL_TIMEOUT": 5,
        }
    )
    assert isinstance(smtp, SmtpEmailSender)
    assert (smtp.port, smtp.use_tls, smtp.use_ssl, smtp.timeout) == (587, True, False, 5)
    assert isinstance(build_email_sender({"MAIL_BACKEND": "console"}), ConsoleEmailSender)
    assert isinstance(build_email_sender({"MAIL_BACKEND": "memory"}), MemoryEmailSender)
    file_sender = build_email_sender({"MAIL_BACKEND": "FILE", "MAIL_FILE_DIR": str(tmp_path)})
    assert isinstance(file_sender, FileEmailSender)
    assert file_sender.folder == tmp_path


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"MAIL_BACKEND": "carrier-pigeon"}, "MAIL_BACKEND must be one of"),
        ({}, "MAIL_BACKEND must be one of"),
        ({"MAIL_BACKEND": "smtp", "MAIL_SERVER": "localhost"}, "MAIL_SENDER is not set"),
        ({"MAIL_BACKEND": "smtp", "MAIL_SENDER": SENDER}, "MAIL_SERVER is not set"),
        (
            {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "x", "MAIL_SENDER": "nobody"},
            "MAIL_SENDER must be an address",
        ),
        (
            {
                "MAIL_BACKEND": "smtp",
                "MAIL_SERVER": "x",
                "MAIL_SENDER": SENDER,
                "MAIL_USE_TLS": True,
                "MAIL_USE_SSL": True,
            },
            "exclude each other",
        ),
        (
            {
                "MAIL_BACKEND": "smtp",
                "MAIL_SERVER": "x",
                "MAIL_SENDER": SENDER,
                "MAIL_USERNAME": "u",
            },
            "MAIL_PASSWORD is not",
        ),
        (
            {
                "MAIL_BACKEND": "smtp",
                "MAIL_SERVER": "x",
                "MAIL_SENDER": SENDER,
                "MAIL_USE_TLS": "maybe",
            },
            "MAIL_USE_TLS must be true or false",
        ),
        (
            {
                "MAIL_BACKEND": "smtp",
                "MAIL_SERVER": "x",
                "MAIL_SENDER": SENDER,
                "MAIL_TIMEOUT": "0",
            },
            "MAIL_TIMEOUT must be greater than zero",
        ),
        ({"MAIL_BACKEND": "file"}, "MAIL_FILE_DIR is not set"),
    ],
)
def test_build_refuses_bad_settings(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_email_sender(config)
