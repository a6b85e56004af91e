"""Front page, error pages, health check, security headers and language choice."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from pro_app.extensions import db


def test_front_page_is_italian_by_default(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="it">' in page
    assert "Questionari sulla qualità di vita" in page


def test_browser_language_is_used_when_nothing_else_is_known(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Quality-of-life questionnaires" in page


def test_language_chosen_on_the_page_wins_over_the_browser(client: FlaskClient) -> None:
    client.get("/")
    token = _csrf_token(client)
    response = client.post(
        "/language",
        data={"locale": "en", "next": "/", "csrf_token": token},
        headers={"Accept-Language": "it"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/", headers={"Accept-Language": "it"}).get_data(as_text=True)
    assert '<html lang="en">' in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:x"])
def test_language_choice_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    client.get("/")
    response = client.post(
        "/language", data={"locale": "it", "next": target, "csrf_token": _csrf_token(client)}
    )
    assert response.headers["Location"] == "/"


def test_language_choice_without_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/language", data={"locale": "en", "next": "/"})
    assert response.status_code == 400
    assert "Il modulo è scaduto" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("code", "italian", "english"),
    [
        (404, "Pagina non trovata", "Page not found"),
        (403, "Accesso non consentito", "Access denied"),
        (410, "Pagina non più disponibile", "Page no longer available"),
        (429, "Troppi tentativi", "Too many attempts"),
        (500, "Si è verificato un problema", "Something went wrong"),
    ],
)
def test_error_pages_in_both_languages(app: Flask, code: int, italian: str, english: str) -> None:
    from flask import abort

    @app.get(f"/_raise/{code}")
    def _raise() -> None:
        if code == 500:
            raise RuntimeError("boom with personal data that must not leak")
        abort(code)

    client = app.test_client()
    italian_page = client.get(f"/_raise/{code}", headers={"Accept-Language": "it"})
    assert italian_page.status_code == code
    assert italian in italian_page.get_data(as_text=True)
    assert "boom" not in italian_page.get_data(as_text=True)
    english_page = client.get(f"/_raise/{code}", headers={"Accept-Language": "en"})
    assert english in english_page.get_data(as_text=True)


def test_unknown_page_is_a_friendly_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Torna alla pagina iniziale" in response.get_data(as_text=True)


def test_healthz_reports_database_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "scheduler": "never"}


def test_healthz_turns_red_when_the_database_fails(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_security_headers_on_every_page(client: FlaskClient) -> None:
    for path in ("/", "/healthz", "/no/such/page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"


def test_hsts_only_over_https(client: FlaskClient) -> None:
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://pro.example.test")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_static_files_may_be_cached(client: FlaskClient) -> None:
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_stylesheet_is_small(client: FlaskClient) -> None:
    response = client.get("/static/style.css")
    assert len(response.data) < 8 * 1024
    response.close()


def _csrf_token(client: FlaskClient) -> str:
    import re

    page = client.get("/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)
