"""Guessing link tokens: every wrong token gets the same answer, and the rate limit engages.

Signing timestamps are frozen so that the page's CSRF token cannot differ from one second to
the next; what still differs (Date, the rate limiter's clock readings, the token itself where
the page repeats its own address, and so the length) is named and left out; everything else,
status, headers and body, must be byte-equal.
The full-size variant (10,000 guesses against a running server) is bench/token_guessing.py.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner

from pro_app.extensions import db
from pro_app.models import PatientLink
from pro_app.models.types import utcnow
from tests import factories
from tests.conftest import make_config

# Clock readings; and the length, which follows the guessed token where a page repeats its address.
VARYING_HEADERS = {"Date", "X-RateLimit-Reset", "Retry-After", "Content-Length", "X-Request-ID"}
GUESSES = 300
LIMIT_PER_MINUTE = 20


@pytest.fixture
def app_config(database_uri: str) -> dict[str, Any]:
    # The shipped default, written out so that the test says what it proves.
    return make_config(database_uri, PATIENT_LINK_RATE_LIMIT="20 per minute; 200 per day")


@pytest.fixture(autouse=True)
def frozen_signing_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: 1_800_000_000)


def random_token() -> str:
    """A token shaped like the real ones (43 URL-safe characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def odd_tokens() -> Iterator[str]:
    alphabet = "abcXYZ019-_"
    for length in (1, 2, 42, 44, 64, 199, 200, 201, 500):
        yield "".join(secrets.choice(alphabet) for _ in range(length))


def addresses() -> Iterator[str]:
    for n in range(1, 60_000):
        yield f"10.{n // 250 % 250}.{n % 250}.{n // 62500 + 1}"


def signature(response: Any, token: str) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Status, headers (clock readings aside) and the body with the guessed token blanked out."""
    headers = tuple(
        (name, value) for name, value in response.headers.items() if name not in VARYING_HEADERS
    )
    body = response.get_data().replace(f"/p/{token}".encode(), b"/p/<token>")
    return response.status_code, headers, body


def warm_client(app: Flask) -> tuple[FlaskClient, str]:
    """A browser with its session (and CSRF token) already set, as a guesser would have."""
    client = app.test_client()
    page = client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.1"})
    return client, factories.csrf_token(page.text)


def revoked_and_expired(app: Flask) -> list[str]:
    """Two real tokens that no longer open anything."""
    revoked = factories.enrol(app, "MI01-0001")
    expired = factories.enrol(app, "MI01-0002")
    with app.app_context():
        for enrolled, change in ((revoked, "revoked_at"), (expired, "expires_at")):
            link = db.session.scalar(
                db.select(PatientLink).where(PatientLink.patient_id == enrolled.patient_id)
            )
            assert link is not None
            setattr(link, change, utcnow() - timedelta(minutes=1))
        db.session.commit()
    return [revoked.token, expired.token]


def test_every_link_that_opens_nothing_gets_the_same_answer(app: Flask) -> None:
    client, csrf = warm_client(app)
    dead = revoked_and_expired(app)
    tokens = [*dead, *odd_tokens(), *(random_token() for _ in range(GUESSES // 2 - 11))]
    fresh_address = addresses()
    greetings, refusals = set(), set()
    for token in tokens:
        # A fresh address each time: the rate limit's remaining count is then the same too.
        environ = {"REMOTE_ADDR": next(fresh_address)}
        greetings.add(signature(client.get(f"/p/{token}", environ_base=environ), token))
        posted = client.post(
            f"/p/{token}", data={"csrf_token": csrf, "action": "start"}, environ_base=environ
        )
        refusals.add(signature(posted, token))
    assert len(greetings) == 1
    assert len(refusals) == 1
    assert refusals.pop()[0] == 404
    assert greetings.pop()[0] == 200  # the greeting changes nothing and reveals nothing


def test_the_greeting_of_a_valid_link_reveals_nothing_either(app: Flask) -> None:
    client, _csrf = warm_client(app)
    valid = factories.enrol(app, "MI01-0003")
    fresh_address = addresses()
    answers = {
        signature(
            client.get(f"/p/{token}", environ_base={"REMOTE_ADDR": next(fresh_address)}), token
        )
        for token in (valid.token, random_token(), *revoked_and_expired(app))
    }
    assert len(answers) == 1


def test_guessing_from_one_address_hits_the_rate_limit(app: Flask) -> None:
    client, csrf = warm_client(app)
    valid = factories.enrol(app, "MI01-0004")
    guesser = {"REMOTE_ADDR": "198.51.100.7"}
    statuses = []
    limited = set()
    for n in range(GUESSES):
        token = random_token()
        if n % 2:
            response = client.post(
                f"/p/{token}", data={"csrf_token": csrf, "action": "start"}, environ_base=guesser
            )
        else:
            response = client.get(f"/p/{token}", environ_base=guesser)
        statuses.append(response.status_code)
        if response.status_code == 429:
            limited.add(signature(response, token))
    # Opening and starting share one counter per address.
    assert statuses.count(429) == GUESSES - LIMIT_PER_MINUTE
    assert 429 not in statuses[:LIMIT_PER_MINUTE]
    assert len(limited) == 1  # every refusal alike: nothing about the token
    # The real link is refused too from the guessing address, so a hit is not recognisable,
    # while the patient, elsewhere, opens it.
    assert client.get(valid.path, environ_base=guesser).status_code == 429
    patient = app.test_client()
    assert patient.get(valid.path, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    print(f"{GUESSES} guesses from one address: {statuses.count(429)} limited")
