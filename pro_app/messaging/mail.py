"""E-mail senders: SMTP for production, console, file and memory for development and tests."""

from __future__ import annotations

import email.message
import email.policy
import os
import re
import smtplib
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Protocol, TextIO

from pro_app.messaging.errors import (
    DeliveryError,
    flag_setting,
    number_setting,
    optional_text_setting,
    text_setting,
)

DEFAULT_SENDER = "pro-app@localhost"
OUTBOX_TIMESTAMP = "%Y%m%dT%H%M%S%fZ"  # file names sort by sending time
# Answers about the session rather than this message: retrying after a fix can succeed.
_AUTH_CODES = frozenset({530, 534, 535, 538})
_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class EmailMessage:
    message_id: str  # full Message-ID header value, e.g. "<outbox-123@pro.example.org>"
    to: str
    subject: str
    text: str  # plain-text body, always present
    html: str | None = None


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Send one message; return the provider id or raise DeliveryError."""
        ...


def message_id_for(outbox_id: int, sender_address: str) -> str:
    """The Message-ID of an outbox row: "<outbox-{id}@{domain of the sender}>"."""
    domain = parseaddr(sender_address)[1].rpartition("@")[2].strip().lower()
    return f"<outbox-{outbox_id}@{domain or 'localhost'}>"


def build_mime(
    message: EmailMessage, sender: str, *, sent_at: datetime | None = None
) -> email.message.EmailMessage:
    """The full RFC 5322 message; ValueError if a header cannot be encoded safely."""
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(sent_at or datetime.now(UTC))
    mime["Message-ID"] = message.message_id
    # RFC 3834: tells mail servers and out-of-office robots not to answer automatically.
    mime["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps the body 7-bit clean for any relay, and links readable.
    mime.set_content(message.text, charset="utf-8", cte="quoted-printable")
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mime


def mask_address(address: str) -> str:
    """ "m***@example.org": enough to tell messages apart on a console, not to read the address."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


class SmtpEmailSender:
    """Sends through an SMTP server, one connection per message.

    Reminders go out a few at a time each minute, so a fresh connection per message is simpler
    and more robust (no stale connection to detect) than keeping one open.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        use_ssl: bool = False,
        timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if use_tls and use_ssl:
            raise ValueError(
                "MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL (implicit TLS) exclude "
                "each other; set only one"
            )
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.use_tls, self.use_ssl, self.timeout = use_tls, use_ssl, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> str:
        try:
            mime = build_mime(message, self.sender)
        except ValueError:
            raise DeliveryError("e-mail not built: invalid header value", permanent=True) from None
        try:
            self._deliver(mime, message.to)
        except (smtplib.SMTPException, OSError) as error:
            raise classify_smtp_error(error) from None
        return message.message_id

    def _deliver(self, mime: email.message.EmailMessage, recipient: str) -> None:
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.use_tls:
                smtp.starttls(context=self.ssl_context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mime, to_addrs=[recipient])
        except BaseException:
            smtp.close()  # no polite QUIT: the server may be the thing that hangs
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the message is accepted; a failed goodbye changes nothing


def classify_smtp_error(error: BaseException) -> DeliveryError:
    """Map an smtplib or socket failure to a DeliveryError whose reason holds no address."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, response = next(iter(error.recipients.values()), (0, b""))
        return _by_code(code, response, "recipient refused")
    if isinstance(error, smtplib.SMTPDataError):
        return _by_code(error.smtp_code, error.smtp_error, "message refused")
    if isinstance(error, smtplib.SMTPSenderRefused):
        return DeliveryError(
            f"SMTP {error.smtp_code} sender refused (check MAIL_SENDER)", permanent=False
        )
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"SMTP {error.smtp_code} authentication failed (check MAIL_USERNAME/MAIL_PASSWORD)",
            permanent=False,
        )
    if isinstance(error, smtplib.SMTPResponseException):
        # Greeting, EHLO or STARTTLS refused: a server or configuration problem.
        return DeliveryError(f"SMTP {error.smtp_code} server refused the session", permanent=False)
    if _caused_by(error, TimeoutError):
        return DeliveryError("SMTP timeout", permanent=False)
    if _caused_by(error, ConnectionRefusedError):
        return DeliveryError("SMTP connection refused", permanent=False)
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryError("SMTP TLS certificate not trusted", permanent=False)
    if isinstance(error, ssl.SSLError):
        return DeliveryError("SMTP TLS error", permanent=False)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryError(
            "SMTP server lacks a needed extension (STARTTLS, AUTH or SMTPUTF8)", permanent=False
        )
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryError("SMTP server disconnected", permanent=False)
    if isinstance(error, OSError):
        return DeliveryError(f"SMTP connection error ({type(error).__name__})", permanent=False)
    return DeliveryError(f"SMTP error ({type(error).__name__})", permanent=False)


def _by_code(code: int, response: bytes | str, what: str) -> DeliveryError:
    raw = response.encode("utf-8", "replace") if isinstance(response, str) else response
    # Only the numeric codes are kept: the response text often repeats the address.
    match = _ENHANCED_STATUS.match(raw or b"")
    status = f" {match.group(1).decode('ascii')}" if match else ""
    permanent = 500 <= code < 600 and code not in _AUTH_CODES
    suffix = "" if permanent or code >= 500 else " (temporary)"
    return DeliveryError(f"SMTP {code}{status} {what}{suffix}", permanent=permanent)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    # smtplib turns a read timeout into SMTPServerDisconnected raised while handling it.
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class ConsoleEmailSender:
    """Development: prints each message with the recipient masked and the text in full."""

    sender: str = DEFAULT_SENDER
    stream: TextIO | None = None  # None: sys.stdout at the time of sending

    def send(self, message: EmailMessage) -> str:
        out = self.stream or sys.stdout
        lines = [
            "-" * 72,
            f"E-mail {message.message_id}",
            f"From: {self.sender}",
            f"To: {mask_address(message.to)}",
            f"Subject: {message.subject}",
            "",
            message.text.rstrip("\n"),
        ]
        if message.html is not None:
            lines += ["", f"(HTML alternative: {len(message.html)} characters, not shown)"]
        out.write("\n".join([*lines, "-" * 72, ""]))
        out.flush()
        return message.message_id


@dataclass
class FileEmailSender:
    """Development and demo: each message becomes one .eml file, a local stand-in for a mailbox."""

    folder: Path
    sender: str = DEFAULT_SENDER

    def send(self, message: EmailMessage) -> str:
        sent_at = datetime.now(UTC)
        try:
            data = build_mime(message, self.sender, sent_at=sent_at).as_bytes()
        except ValueError:
            raise DeliveryError("e-mail not built: invalid header value", permanent=True) from None
        stem = message.message_id.strip("<>").partition("@")[0]
        try:
            name = write_outbox_file(self.folder, sent_at, stem, ".eml", data)
        except OSError as error:
            raise DeliveryError(
                f"mail folder not writable ({type(error).__name__})", permanent=False
            ) from None
        return f"file:{name}"


@dataclass
class MemoryEmailSender:
    """Tests: keeps messages in `sent`; set `fail_with` to make every send raise it."""

    sent: list[EmailMessage] = field(default_factory=list)
    fail_with: DeliveryError | None = None

    def send(self, message: EmailMessage) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return message.message_id


def write_outbox_file(folder: Path, sent_at: datetime, stem: str, suffix: str, data: bytes) -> str:
    """Write `<UTC timestamp>-<stem><suffix>` atomically; return the file name."""
    folder.mkdir(parents=True, exist_ok=True)
    safe_stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:80] or "message"
    name = f"{sent_at.strftime(OUTBOX_TIMESTAMP)}-{safe_stem}{suffix}"
    partial = folder / f".{name}.partial"
    partial.write_bytes(data)
    os.replace(partial, folder / name)  # a reader never sees half a message
    return name


def build_smtp_sender(config: Mapping[str, Any]) -> SmtpEmailSender:
    sender = _sender_setting(config, required=True)
    port = number_setting(config, "MAIL_PORT", 25)
    if port != int(port) or port > 65535:
        raise ValueError(f"MAIL_PORT must be a port number, not {config.get('MAIL_PORT')!r}")
    username = optional_text_setting(config, "MAIL_USERNAME")
    if username and not optional_text_setting(config, "MAIL_PASSWORD"):
        raise ValueError("MAIL_USERNAME is set but MAIL_PASSWORD is not")
    return SmtpEmailSender(
        host=text_setting(config, "MAIL_SERVER", needed_for="MAIL_BACKEND=smtp"),
        port=int(port),
        sender=sender,
        username=username,
        password=optional_text_setting(config, "MAIL_PASSWORD"),
        use_tls=flag_setting(config, "MAIL_USE_TLS"),
        use_ssl=flag_setting(config, "MAIL_USE_SSL"),
        timeout=number_setting(config, "MAIL_TIMEOUT", 15),
    )


def _sender_setting(config: Mapping[str, Any], *, required: bool) -> str:
    if required:
        value = text_setting(config, "MAIL_SENDER", needed_for="MAIL_BACKEND=smtp")
    else:
        value = optional_text_setting(config, "MAIL_SENDER") or DEFAULT_SENDER
    if "@" not in parseaddr(value)[1]:
        raise ValueError(
            f"MAIL_SENDER must be an address like 'Name <addr@example.org>', not {value!r}"
        )
    return value


_MAIL_BACKENDS: dict[str, Callable[[Mapping[str, Any]], EmailSender]] = {
    "smtp": build_smtp_sender,
    "console": lambda config: ConsoleEmailSender(sender=_sender_setting(config, required=False)),
    "file": lambda config: FileEmailSender(
        folder=Path(text_setting(config, "MAIL_FILE_DIR", needed_for="MAIL_BACKEND=file")),
        sender=_sender_setting(config, required=False),
    ),
    "memory": lambda config: MemoryEmailSender(),
}


def build_email_sender(config: Mapping[str, Any]) -> EmailSender:
    """The sender named by MAIL_BACKEND; ValueError for an unknown backend or missing setting."""
    backend = str(config.get("MAIL_BACKEND") or "").strip().lower()
    try:
        factory = _MAIL_BACKENDS[backend]
    except KeyError:
        known = ", ".join(sorted(_MAIL_BACKENDS))
        raise ValueError(f"MAIL_BACKEND must be one of {known}, not {backend!r}") from None
    return factory(config)


def read_email_file(path: Path) -> dict[str, Any]:
    """One .eml written by FileEmailSender, as the demo's "sent messages" page shows it."""
    with path.open("rb") as handle:
        mime = BytesParser(policy=email.policy.default).parse(handle)
    body = (
        mime.get_body(preferencelist=("plain",))
        if isinstance(mime, email.message.EmailMessage)
        else None
    )
    return {
        "kind": "email",
        "file_name": path.name,
        "to": str(mime["To"] or ""),
        "subject": str(mime["Subject"] or ""),
        "text": body.get_content() if isinstance(body, email.message.EmailMessage) else "",
        "sent_at": outbox_file_time(path),
    }


def outbox_file_time(path: Path) -> datetime:
    """When a message file was written: from its name, else from the file itself."""
    try:
        return datetime.strptime(path.name.partition("-")[0], OUTBOX_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
