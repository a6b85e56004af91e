"""A real SMTP server for tests (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message as MimeMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Inbox:
    """aiosmtpd handler: keeps every message delivered to it."""

    def __init__(self) -> None:
        self.messages: list[MimeMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def drain(self) -> list[MimeMessage]:
        """Everything received since the last drain."""
        with self.lock:
            drained, self.messages = self.messages, []
        return drained


@contextmanager
def running_smtp(handler: object, port: int | None = None) -> Iterator[int]:
    """Serve SMTP on 127.0.0.1 with this handler; yields the port."""
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
