"""The API tokens page: create (shown once), list, revoke; CSRF, roles and ownership enforced."""

from __future__ import annotations

import hashlib
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import ApiToken, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import api_tokens
from tests import factories

PAGE = "/analyst/api-tokens"
ANALYST = "analyst@example.org"
RAW_TOKEN = re.compile(r'value="(pro_[A-Za-z0-9_-]{40,})"')


def _account(app: Flask, email: str, role: str, site: str | None = None) -> int:
    return factories.staff_user(app, email, role=role, site_code=site, language="en")


@pytest.fixture
def analyst(app: Flask, client: FlaskClient) -> int:
    user_id = _account(app, ANALYST, "analyst")
    assert factories.sign_in(client, ANALYST).status_code == 302
    return user_id


def _create(client: FlaskClient, name: str = "R on my laptop") -> str:
    page = client.get(PAGE)
    response = client.post(PAGE, data={"csrf_token": factories.csrf_token(page.text), "name": name})
    assert response.status_code == 200, response.text  # shown in the answer to the POST only
    assert response.headers["Cache-Control"] == "no-store"
    match = RAW_TOKEN.search(response.text)
    assert match, "the new token is not on the page"
    return match.group(1)


def _tokens(app: Flask) -> list[ApiToken]:
    with app.app_context():
        return list(db.session.scalars(db.select(ApiToken).order_by(ApiToken.id)))


def _token_for(app: Flask, email: str) -> tuple[int, str]:
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == email))
        assert user is not None
        token, raw = api_tokens.create_token(user, "their script", utcnow())
        db.session.commit()
        return token.id, raw


def test_the_page_explains_how_to_use_a_token(
    app: Flask, client: FlaskClient, analyst: int
) -> None:
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "You have no tokens yet." in page.text
    assert "req_auth_bearer_token" in page.text
    assert 'pd.DataFrame(r.json()["rows"])' in page.text
    assert "https://pro.example.test/api/v1/exports/scores" in page.text
    assert RAW_TOKEN.search(page.text) is None


def test_a_new_token_is_shown_once_and_works(app: Flask, client: FlaskClient, analyst: int) -> None:
    raw = _create(client)
    (token,) = _tokens(app)
    assert token.name == "R on my laptop"
    assert token.staff_user_id == analyst
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    again = client.get(PAGE)
    assert raw not in again.text  # once only
    assert "R on my laptop" in again.text
    assert f"{raw[:8]}…" in again.text
    assert "Never" in again.text  # not used yet
    used = client.get("/api/v1/exports", headers={"Authorization": f"Bearer {raw}"})
    assert used.status_code == 200
    assert "Active" in client.get(PAGE).text


def test_a_name_is_required(app: Flask, client: FlaskClient, analyst: int) -> None:
    page = client.get(PAGE)
    for name in ("", "x" * 101):
        response = client.post(
            PAGE, data={"csrf_token": factories.csrf_token(page.text), "name": name}
        )
        assert response.status_code == 400
        assert 'aria-invalid="true"' in response.text
        assert 'class="field-error"' in response.text
        assert RAW_TOKEN.search(response.text) is None
    assert (
        "Enter a name for the token."
        in client.post(PAGE, data={"csrf_token": factories.csrf_token(page.text), "name": " "}).text
    )
    assert _tokens(app) == []


def test_creating_needs_the_csrf_token(app: Flask, client: FlaskClient, analyst: int) -> None:
    response = client.post(PAGE, data={"name": "forged"})
    assert response.status_code == 400
    assert _tokens(app) == []


def test_revoking_a_token(app: Flask, client: FlaskClient, analyst: int) -> None:
    raw = _create(client)
    (token,) = _tokens(app)
    page = client.get(PAGE)
    response = client.post(
        f"{PAGE}/{token.id}/revoke", data={"csrf_token": factories.csrf_token(page.text)}
    )
    assert response.status_code == 302
    after = client.get(PAGE)
    assert "is revoked" in after.text
    assert "Revoked" in after.text
    assert f"{PAGE}/{token.id}/revoke" not in after.text  # no button for a revoked token
    (revoked,) = _tokens(app)
    assert revoked.revoked_at is not None
    refused = client.get("/api/v1/exports", headers={"Authorization": f"Bearer {raw}"})
    assert refused.status_code == 401


def test_revoking_needs_the_csrf_token(app: Flask, client: FlaskClient, analyst: int) -> None:
    _create(client)
    (token,) = _tokens(app)
    assert client.post(f"{PAGE}/{token.id}/revoke").status_code == 400
    assert _tokens(app)[0].revoked_at is None


def test_another_users_token_cannot_be_revoked(
    app: Flask, client: FlaskClient, analyst: int
) -> None:
    _account(app, "colleague@example.org", "analyst")
    token_id, raw = _token_for(app, "colleague@example.org")
    page = client.get(PAGE)
    assert "their script" not in page.text  # not listed either
    response = client.post(
        f"{PAGE}/{token_id}/revoke", data={"csrf_token": factories.csrf_token(page.text)}
    )
    assert response.status_code == 404
    missing = client.post(
        f"{PAGE}/9999/revoke", data={"csrf_token": factories.csrf_token(page.text)}
    )
    assert missing.status_code == 404
    assert _tokens(app)[0].revoked_at is None
    assert (
        client.get("/api/v1/exports", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    )


def test_an_admin_may_revoke_anyones_token(app: Flask, client: FlaskClient) -> None:
    _account(app, "colleague@example.org", "analyst")
    token_id, _raw = _token_for(app, "colleague@example.org")
    _account(app, "admin@example.org", "admin")
    assert factories.sign_in(client, "admin@example.org").status_code == 302
    page = client.get(PAGE)
    assert "Active tokens of other accounts" in page.text
    assert "their script" in page.text
    response = client.post(
        f"{PAGE}/{token_id}/revoke", data={"csrf_token": factories.csrf_token(page.text)}
    )
    assert response.status_code == 302
    assert _tokens(app)[0].revoked_at is not None


@pytest.mark.parametrize(("role", "status"), [("investigator", 200), ("nurse", 403)])
def test_who_may_hold_tokens(app: Flask, client: FlaskClient, role: str, status: int) -> None:
    _account(app, f"{role}@mi01.example.org", role, "MI01")
    assert factories.sign_in(client, f"{role}@mi01.example.org").status_code == 302
    assert client.get(PAGE).status_code == status
    assert client.post(PAGE, data={"name": "x"}).status_code in (400, status)
    assert _tokens(app) == []


def test_signed_out_staff_are_sent_to_sign_in(app: Flask, client: FlaskClient) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/auth/sign-in" in response.headers["Location"]


def test_the_page_is_never_cached(app: Flask, client: FlaskClient, analyst: int) -> None:
    _create(client)
    assert client.get(PAGE).headers["Cache-Control"] == "no-store"
