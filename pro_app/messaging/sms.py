"""SMS senders: an HTTP gateway for production, console, file and memory for development and tests.

A provider with its own request format (Skebby, Aruba, a Vodafone business gateway, ...) is one
small subclass of HttpSmsSender plus one `register_sms_backend` call: see docs/messaging.md.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Protocol, Self, TextIO
from urllib.parse import urlsplit

from pro_app.messaging.errors import (
    DeliveryError,
    number_setting,
    optional_text_setting,
    text_setting,
)
from pro_app.messaging.mail import outbox_file_time, write_outbox_file

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SmsMessage:
    reference: str  # our outbox reference, e.g. "outbox-123"
    to: str  # E.164, e.g. "+393471234567"
    text: str


class SmsSender(Protocol):
    def send(self, message: SmsMessage) -> str:
        """Send one message; return the provider id or raise DeliveryError."""
        ...


def mask_phone(number: str) -> str:
    """ "+39 *** *** 4567": enough to tell messages apart on a console, not to dial."""
    compact = re.sub(r"[^\d+]", "", number)
    if len(compact) < 8:
        return "***"
    prefix = compact[:3] if compact.startswith("+") else ""
    return f"{prefix} *** *** {compact[-4:]}".strip()


class HttpSmsSender:
    """POSTs JSON {"to", "text", "sender", "reference"} with a bearer key to SMS_GATEWAY_URL.

    To speak a provider's own dialect, subclass and override `payload` (or `request_body` for
    form encoding), `headers` and `provider_id`; the error classification is shared.
    """

    permanent_statuses: frozenset[int] = frozenset({400, 404, 422})

    def __init__(
        self, *, url: str, key: str | None = None, sender: str | None = None, timeout: float = 15.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"SMS_GATEWAY_URL must be an http(s) URL, not {url!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            # Phone numbers, message links and the key must not cross a network in clear.
            raise ValueError("SMS_GATEWAY_URL must use https (plain http only to localhost)")
        self.url, self.key, self.sender, self.timeout = url, key, sender, timeout
        self._opener = urllib.request.build_opener(_RefuseRedirects())

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(
            url=text_setting(config, "SMS_GATEWAY_URL", needed_for="an SMS gateway"),
            key=optional_text_setting(config, "SMS_GATEWAY_KEY"),
            sender=optional_text_setting(config, "SMS_SENDER"),
            timeout=number_setting(config, "SMS_TIMEOUT", 15),
        )

    def payload(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "to": message.to,
            "text": message.text,
            "sender": self.sender,
            "reference": message.reference,
        }

    def request_body(self, message: SmsMessage) -> tuple[bytes, str]:
        """The body and its Content-Type."""
        return json.dumps(self.payload(message)).encode("utf-8"), "application/json"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def provider_id(self, answer: Any, message: SmsMessage) -> str:
        """The gateway's id from its decoded JSON answer (None if not JSON); may raise."""
        if isinstance(answer, dict) and answer.get("id") not in (None, ""):
            return str(answer["id"])
        return message.reference

    def classify_status(self, status: int) -> DeliveryError:
        if status in self.permanent_statuses:
            return DeliveryError(f"SMS gateway refused the number (HTTP {status})", permanent=True)
        if status in (401, 403):
            return DeliveryError(
                f"SMS gateway refused the credentials (HTTP {status}); check SMS_GATEWAY_KEY",
                permanent=False,
            )
        if status == 429:
            return DeliveryError("SMS gateway rate limit (HTTP 429)", permanent=False)
        if 300 <= status < 400:
            return DeliveryError(
                f"SMS gateway redirected (HTTP {status}); check SMS_GATEWAY_URL", permanent=False
            )
        return DeliveryError(f"SMS gateway error (HTTP {status})", permanent=False)

    def send(self, message: SmsMessage) -> str:
        if not _E164.match(message.to):
            raise DeliveryError("SMS number is not in E.164 format", permanent=True)
        data, content_type = self.request_body(message)
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": content_type, "Accept": "application/json", **self.headers()},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(_MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            error.close()
            raise self.classify_status(error.code) from None
        except urllib.error.URLError as error:
            raise _connection_error(error.reason) from None
        except (OSError, http.client.HTTPException) as error:
            raise _connection_error(error) from None
        try:
            answer = json.loads(body) if body.strip() else None
        except ValueError:
            answer = None
        return self.provider_id(answer, message)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would re-send the key elsewhere (and turn the POST into a GET): treat it as
    # an error status instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _connection_error(error: object) -> DeliveryError:
    if isinstance(error, TimeoutError):
        return DeliveryError("SMS gateway timeout", permanent=False)
    if isinstance(error, ConnectionRefusedError):
        return DeliveryError("SMS gateway connection refused", permanent=False)
    return DeliveryError(f"SMS gateway unreachable ({type(error).__name__})", permanent=False)


@dataclass
class ConsoleSmsSender:
    """Development: prints each SMS with the number masked and the text in full."""

    sender: str | None = None
    stream: TextIO | None = None  # None: sys.stdout at the time of sending

    def send(self, message: SmsMessage) -> str:
        out = self.stream or sys.stdout
        out.write(
            "\n".join(
                [
                    "-" * 72,
                    f"SMS {message.reference}",
                    f"From: {self.sender or '-'}",
                    f"To: {mask_phone(message.to)}",
                    "",
                    message.text.rstrip("\n"),
                    "-" * 72,
                    "",
                ]
            )
        )
        out.flush()
        return f"console:{message.reference}"


@dataclass
class FileSmsSender:
    """Development and demo: each SMS becomes one .txt file (headers, blank line, text)."""

    folder: Path
    sender: str | None = None

    def send(self, message: SmsMessage) -> str:
        sent_at = datetime.now(UTC)
        if "\n" in message.to or "\r" in message.to:
            raise DeliveryError("SMS number is not valid", permanent=True)
        content = (
            f"To: {message.to}\nFrom: {self.sender or ''}\n"
            f"Reference: {message.reference}\n\n{message.text}"
        )
        try:
            name = write_outbox_file(
                self.folder, sent_at, message.reference, ".txt", content.encode("utf-8")
            )
        except OSError as error:
            raise DeliveryError(
                f"SMS folder not writable ({type(error).__name__})", permanent=False
            ) from None
        return f"file:{name}"


@dataclass
class DisabledSmsSender:
    """A trial that sends no SMS (SMS_BACKEND=off): each SMS fails for good, visibly, at once."""

    def send(self, message: SmsMessage) -> str:
        raise DeliveryError(
            "SMS is switched off in this deployment (SMS_BACKEND=off)", permanent=True
        )


@dataclass
class MemorySmsSender:
    """Tests: keeps messages in `sent`; set `fail_with` to make every send raise it."""

    sent: list[SmsMessage] = field(default_factory=list)
    fail_with: DeliveryError | None = None

    def send(self, message: SmsMessage) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return message.reference


def read_sms_file(path: Path) -> dict[str, Any]:
    """One .txt written by FileSmsSender, as the demo's "sent messages" page shows it."""
    head, _, text = path.read_text(encoding="utf-8").partition("\n\n")
    fields = dict(line.partition(": ")[::2] for line in head.splitlines())
    return {
        "kind": "sms",
        "file_name": path.name,
        "to": fields.get("To", ""),
        "subject": None,
        "text": text,
        "sent_at": outbox_file_time(path),
    }


SmsFactory = Callable[[Mapping[str, Any]], SmsSender]

_SMS_BACKENDS: dict[str, SmsFactory] = {
    "http": HttpSmsSender.from_config,
    "console": lambda config: ConsoleSmsSender(sender=optional_text_setting(config, "SMS_SENDER")),
    "file": lambda config: FileSmsSender(
        folder=Path(text_setting(config, "SMS_FILE_DIR", needed_for="SMS_BACKEND=file")),
        sender=optional_text_setting(config, "SMS_SENDER"),
    ),
    "memory": lambda config: MemorySmsSender(),
    "off": lambda config: DisabledSmsSender(),
}


def register_sms_backend(name: str, factory: SmsFactory) -> None:
    """Make SMS_BACKEND=<name> build a sender with `factory(config)`."""
    _SMS_BACKENDS[name.strip().lower()] = factory


def build_sms_sender(config: Mapping[str, Any]) -> SmsSender:
    """The sender named by SMS_BACKEND; ValueError for an unknown backend or missing setting."""
    backend = str(config.get("SMS_BACKEND") or "").strip().lower()
    try:
        factory = _SMS_BACKENDS[backend]
    except KeyError:
        known = ", ".join(sorted(_SMS_BACKENDS))
        raise ValueError(f"SMS_BACKEND must be one of {known}, not {backend!r}") from None
    return factory(config)
