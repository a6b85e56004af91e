"""SMS backends, with the HTTP gateway exercised against a real local http.server."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from pro_app.messaging import (
    ConsoleSmsSender,
    DeliveryError,
    FileSmsSender,
    HttpSmsSender,
    MemorySmsSender,
    SmsMessage,
    build_sms_sender,
    read_outbox_files,
    register_sms_backend,
)
from pro_app.messaging import sms as sms_module

NUMBER = "+393471234567"
LINK = "https://pro.example.org/q/AbCdEf0123456789"
MESSAGE = SmsMessage(reference="outbox-7", to=NUMBER, text=f"Questionario pronto: {LINK}")


@dataclass
class Gateway:
    """What the fake gateway received, and what it answers next."""

    url: str = ""
    status: int = 200
    body: bytes = b'{"id": "gw-981"}'
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the timeout test's client hangs up before the answer: expected


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"path": self.path, "headers": self.headers, "body": body})
            if state.delay:
                state.release.wait(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            if 300 <= state.status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/sms"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def http_sender(gateway: Gateway, **kwargs: Any) -> HttpSmsSender:
    return HttpSmsSender(url=gateway.url, key="k-123", sender="StudioPRO", timeout=5, **kwargs)


def test_gateway_success_returns_its_id_and_sends_json_with_bearer_key(gateway: Gateway) -> None:
    assert http_sender(gateway).send(MESSAGE) == "gw-981"

    [request] = gateway.requests
    assert request["path"] == "/api/sms"
    assert request["headers"]["Authorization"] == "Bearer k-123"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "to": NUMBER,
        "text": MESSAGE.text,
        "sender": "StudioPRO",
        "reference": "outbox-7",
    }


@pytest.mark.parametrize("body", [b"", b"accepted", b'{"status": "queued"}', b"[1]"])
def test_gateway_success_without_an_id_returns_our_reference(gateway: Gateway, body: bytes) -> None:
    gateway.status, gateway.body = 202, body

    assert http_sender(gateway).send(MESSAGE) == "outbox-7"


@pytest.mark.parametrize(
    ("status", "permanent", "reason"),
    [
        (422, True, "SMS gateway refused the number (HTTP 422)"),
        (400, True, "SMS gateway refused the number (HTTP 400)"),
        (503, False, "SMS gateway error (HTTP 503)"),
        (429, False, "SMS gateway rate limit (HTTP 429)"),
        (401, False, "SMS gateway refused the credentials (HTTP 401); check SMS_GATEWAY_KEY"),
        (302, False, "SMS gateway redirected (HTTP 302); check SMS_GATEWAY_URL"),
    ],
)
def test_gateway_errors_are_classified_without_personal_data(
    gateway: Gateway, status: int, permanent: bool, reason: str
) -> None:
    gateway.status, gateway.body = status, json.dumps({"error": f"bad number {NUMBER}"}).encode()

    with pytest.raises(DeliveryError) as caught:
        http_sender(gateway).send(MESSAGE)

    assert caught.value.permanent is permanent
    assert caught.value.reason == reason
    assert "4567" not in caught.value.reason
    assert len(gateway.requests) == 1  # a redirect is not followed


def test_gateway_timeout_is_temporary(gateway: Gateway) -> None:
    gateway.delay = 5

    with pytest.raises(DeliveryError) as caught:
        HttpSmsSender(url=gateway.url, key="k", timeout=0.3).send(MESSAGE)

    assert caught.value.reason == "SMS gateway timeout"
    assert not caught.value.permanent


def test_gateway_connection_refused_is_temporary(gateway: Gateway) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = HttpSmsSender(url=f"http://127.0.0.1:{port}/api/sms", timeout=1)

    with pytest.raises(DeliveryError) as caught:
        closed.send(MESSAGE)

    assert caught.value.reason == "SMS gateway connection refused"
    assert not caught.value.permanent


def test_number_not_in_e164_is_refused_without_a_request(gateway: Gateway) -> None:
    with pytest.raises(DeliveryError) as caught:
        http_sender(gateway).send(SmsMessage(reference="outbox-8", to="347 123 4567", text="x"))

    assert caught.value.permanent
    assert gateway.requests == []


def test_gateway_url_must_be_https_beyond_localhost() -> None:
    with pytest.raises(ValueError, match="https"):
        HttpSmsSender(url="http://sms.example.org/send")
    with pytest.raises(ValueError, match="http"):
        HttpSmsSender(url="ftp://sms.example.org/send")
    assert HttpSmsSender(url="https://sms.example.org/send").url.startswith("https://")


class AcmeSmsSender(HttpSmsSender):
    """The shape of a provider adapter as docs/messaging.md describes it."""

    def request_body(self, message: SmsMessage) -> tuple[bytes, str]:
        form = {"recipient": message.to, "message": message.text, "sender": self.sender or ""}
        return urlencode(form).encode(), "application/x-www-form-urlencoded"

    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.key or ""}

    def provider_id(self, answer: Any, message: SmsMessage) -> str:
        if not isinstance(answer, dict) or answer.get("result") != "OK":
            raise DeliveryError("SMS gateway answered KO", permanent=False)
        return str(answer["order_id"])


def test_a_provider_adapter_registers_and_is_built_from_config(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sms_module, "_SMS_BACKENDS", dict(sms_module._SMS_BACKENDS))
    register_sms_backend("acme", AcmeSmsSender.from_config)
    gateway.body = b'{"result": "OK", "order_id": 5512}'
    sender = build_sms_sender(
        {
            "SMS_BACKEND": "acme",
            "SMS_GATEWAY_URL": gateway.url,
            "SMS_GATEWAY_KEY": "k",
            "SMS_SENDER": "Studio",
        }
    )

    assert sender.send(MESSAGE) == "5512"
    [request] = gateway.requests
    assert request["headers"]["X-Api-Key"] == "k"
    assert parse_qs(request["body"].decode())["recipient"] == [NUMBER]

    gateway.body = b'{"result": "KO"}'
    with pytest.raises(DeliveryError, match="KO"):
        sender.send(MESSAGE)


def test_console_masks_the_number_and_shows_the_text() -> None:
    stream = io.StringIO()

    assert ConsoleSmsSender(sender="StudioPRO", stream=stream).send(MESSAGE) == "console:outbox-7"

    out = stream.getvalue()
    assert "+39 *** *** 4567" in out
    assert NUMBER not in out
    assert LINK in out


def test_file_backend_writes_one_txt_per_message(tmp_path: Path) -> None:
    provider_id = FileSmsSender(folder=tmp_path / "outbox").send(MESSAGE)

    [stored] = read_outbox_files(tmp_path / "outbox")
    assert provider_id == f"file:{stored['file_name']}"
    assert stored["file_name"].endswith("-outbox-7.txt")
    assert (stored["kind"], stored["to"], stored["text"]) == ("sms", NUMBER, MESSAGE.text)


def test_memory_backend_records_and_can_fail() -> None:
    sender = MemorySmsSender()
    sender.send(MESSAGE)
    sender.fail_with = DeliveryError("SMS gateway timeout", permanent=False)

    with pytest.raises(DeliveryError):
        sender.send(MESSAGE)

    assert sender.sent == [MESSAGE]


def test_build_picks_the_configured_backend(tmp_path: Path) -> None:
    http = build_sms_sender(
        {
            "SMS_BACKEND": "http",
            "SMS_GATEWAY_URL": "https://sms.example.org/v1",
            "SMS_GATEWAY_KEY": "k",
            "SMS_TIMEOUT": "7",
        }
    )
    assert isinstance(http, HttpSmsSender)
    assert (http.key, http.timeout) == ("k", 7)
    assert isinstance(build_sms_sender({"SMS_BACKEND": "console"}), ConsoleSmsSender)
    assert isinstance(build_sms_sender({"SMS_BACKEND": "memory"}), MemorySmsSender)
    assert isinstance(
        build_sms_sender({"SMS_BACKEND": "file", "SMS_FILE_DIR": str(tmp_path)}), FileSmsSender
    )


def test_off_fails_every_sms_for_good_and_sends_nothing() -> None:
    sender = build_sms_sender({"SMS_BACKEND": "off"})
    with pytest.raises(DeliveryError) as refused:
        sender.send(MESSAGE)
    assert refused.value.permanent
    assert "SMS_BACKEND=off" in refused.value.reason


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SMS_BACKEND": "fax"}, "SMS_BACKEND must be one of"),
        ({"SMS_BACKEND": None}, "SMS_BACKEND must be one of"),
        ({"SMS_BACKEND": "http"}, "SMS_GATEWAY_URL is not set"),
        (
            {"SMS_BACKEND": "http", "SMS_GATEWAY_URL": "https://x.example.org", "SMS_TIMEOUT": "x"},
            "SMS_TIMEOUT must be a number",
        ),
        ({"SMS_BACKEND": "file"}, "SMS_FILE_DIR is not set"),
    ],
)
def test_build_refuses_bad_settings(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_sms_sender(config)
