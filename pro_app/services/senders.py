"""The app's e-mail and SMS senders, built once from configuration."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from pro_app.config import ConfigurationError
from pro_app.messaging import EmailSender, SmsSender, build_email_sender, build_sms_sender

EXTENSION_KEY = "pro_app.senders"


@dataclass(frozen=True)
class Senders:
    email: EmailSender
    sms: SmsSender


def init_app(app: Flask) -> None:
    """Build the configured backends; a missing setting stops start-up with its name."""
    try:
        built = Senders(email=build_email_sender(app.config), sms=build_sms_sender(app.config))
    except ValueError as error:
        raise ConfigurationError(f"Messaging is not configured: {error}") from None
    app.extensions[EXTENSION_KEY] = built


def senders() -> Senders:
    """The current app's senders."""
    built: Senders = current_app.extensions[EXTENSION_KEY]
    return built
