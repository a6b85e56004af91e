"""Delivery of one already-rendered e-mail or SMS through a backend chosen by configuration.

It knows nothing of patients, the outbox table or Flask: settings come in as a plain mapping
(MAIL_BACKEND, SMS_BACKEND and friends; see docs/messaging.md) and every failure comes out as a
DeliveryError that says whether retrying can help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pro_app.messaging.errors import DeliveryError
from pro_app.messaging.mail import (
    ConsoleEmailSender,
    EmailMessage,
    EmailSender,
    FileEmailSender,
    MemoryEmailSender,
    SmtpEmailSender,
    build_email_sender,
    message_id_for,
    read_email_file,
)
from pro_app.messaging.sms import (
    ConsoleSmsSender,
    FileSmsSender,
    HttpSmsSender,
    MemorySmsSender,
    SmsMessage,
    SmsSender,
    build_sms_sender,
    read_sms_file,
    register_sms_backend,
)

__all__ = [
    "ConsoleEmailSender",
    "ConsoleSmsSender",
    "DeliveryError",
    "EmailMessage",
    "EmailSender",
    "FileEmailSender",
    "FileSmsSender",
    "HttpSmsSender",
    "MemoryEmailSender",
    "MemorySmsSender",
    "SmsMessage",
    "SmsSender",
    "SmtpEmailSender",
    "build_email_sender",
    "build_sms_sender",
    "message_id_for",
    "read_outbox_files",
    "register_sms_backend",
]

_READERS = {".eml": read_email_file, ".txt": read_sms_file}


def read_outbox_files(folder: str | Path) -> list[dict[str, Any]]:
    """Messages written by the file backends, newest first.

    Each is a dict: kind (email | sms), file_name, to, subject (None for SMS), text, sent_at.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    paths = [
        p
        for p in root.iterdir()
        if p.suffix in _READERS and p.is_file() and not p.name.startswith(".")
    ]
    messages = [_READERS[p.suffix](p) for p in paths]
    messages.sort(key=lambda m: (m["sent_at"], m["file_name"]), reverse=True)
    return messages
