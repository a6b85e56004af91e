"""Security headers on every route for every role (errors and redirects included), trusted
hosts, proxies, and links in messages built from BASE_URL only."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app import create_app
from pro_app.extensions import db
from pro_app.models import Assessment, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import api_tokens
from pro_app.services.senders import senders
from pro_app.staff import link_pages
from tests import factories
from tests.conftest import make_config

ROME = ZoneInfo("Europe/Rome")
ROLES = ("anonymous", "patient", "nurse", "investigator", "analyst", "admin", "api")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


@pytest.fixture
def app_config(database_uri: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    settings = {"PATIENT_LINK_RATE_LIMIT": "1000 per minute", **getattr(request, "param", {})}
    return make_config(database_uri, **settings)


def check_headers(response: Any, *, secure: bool, where: str) -> None:
    """The headers every answer carries, whatever its status."""
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip()
    )
    assert "'unsafe-inline'" not in directives.get("script-src", "'none'"), where
    assert "'unsafe-eval'" not in policy, where
    assert "script-src" in directives or "default-src" in directives, where
    assert directives.get("frame-ancestors") == "'none'", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "same-origin", where
    if secure:
        assert headers.get("Strict-Transport-Security", "").startswith("max-age="), where
    else:
        assert "Strict-Transport-Security" not in headers, where
    if not where.split()[-1].startswith("/static/"):
        assert headers.get("Cache-Control") == "no-store", where
    if response.mimetype == "text/html":
        html = response.get_data(as_text=True)
        # The policy forbids inline code: any left in a template would silently not run.
        assert not INLINE_SCRIPT.search(html), where
        assert not INLINE_HANDLER.search(html), where
        assert not INLINE_STYLE.search(html), where


def path_for(rule: str, values: dict[str, object]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), 1)), rule)


def clients(app: Flask, base_url: str) -> tuple[dict[str, FlaskClient], dict[str, object]]:
    """A client per role, each signed in (or holding a patient session / an API token)."""
    enrolled = factories.enrol(app, "MI01-0001", mobile="3471234567")
    with app.app_context():
        assessment_id = db.session.scalar(
            db.select(Assessment.id).where(Assessment.patient_id == enrolled.patient_id)
        )
    made: dict[str, FlaskClient] = {}
    for role in ("nurse", "investigator", "analyst", "admin"):
        factories.staff_user(
            app, f"{role}@example.org", role, None if role in ("analyst", "admin") else "MI01"
        )
        made[role] = app.test_client()
        made[role].get("/", base_url=base_url)
        assert factories.sign_in(made[role], f"{role}@example.org").status_code == 302
    made["anonymous"] = app.test_client()
    made["patient"] = app.test_client()
    factories.open_link(made["patient"], enrolled)
    with app.app_context():
        analyst = db.session.scalar(db.select(StaffUser).where(StaffUser.role == "analyst"))
        assert analyst is not None
        _row, raw = api_tokens.create_token(analyst, "script", utcnow())
        db.session.commit()
    made["api"] = app.test_client()
    made["api"].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    values: dict[str, object] = {
        "patient_id": enrolled.patient_id,
        "assessment_id": assessment_id or 1,
        "user_id": 1,
        "token_id": 1,
        "number": 1,
        "token": enrolled.token,
        "kind": "scores",
        "fmt": "csv",
        "instrument": "qlq_c30",
        "scale": "QL2",
        "filename": "style.css",
        "_rest": "nothing-here",
    }
    return made, values


def every_request(app: Flask) -> Iterator[tuple[str, str]]:
    """(method, rule) for every route and method it answers, plus what answers no route."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, rule.rule
    yield "GET", "/no/such/page"
    yield "DELETE", "/staff/worklist"  # 405


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_every_route_for_every_role_carries_the_headers(app: Flask, scheme: str) -> None:
    base_url = f"{scheme}://localhost"
    made, values = clients(app, base_url)
    statuses: dict[int, int] = {}
    for role in ROLES:
        client = made[role]
        for method, rule in every_request(app):
            if role != "api" and rule.startswith("/api/") and method != "GET":
                continue  # the API's writes are the same 405 for everyone: checked for "api"
            path = path_for(rule, values)
            # Forms are posted empty, without CSRF token: the refusal must carry headers too.
            response = client.open(path, method=method, base_url=base_url, data={})
            check_headers(response, secure=scheme == "https", where=f"{role} {method} {path}")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            response.close()
    # Answers of every kind were looked at: pages, redirects and each sort of refusal.
    assert {200, 302, 400, 401, 403, 404, 405} <= set(statuses), statuses
    by_status = dict(sorted(statuses.items()))
    print(f"{scheme}: {sum(statuses.values())} answers checked, by status {by_status}")


def test_rare_refusals_carry_the_headers(app: Flask) -> None:
    client = app.test_client()
    too_large = client.post("/language", data={"next": "x" * 1_100_000})
    assert too_large.status_code == 413
    check_headers(too_large, secure=False, where="POST /language")
    wrong_host = client.get("/", headers={"Host": "evil.example"})
    assert wrong_host.status_code == 400
    check_headers(wrong_host, secure=False, where="GET /")
    unreadable = client.get("/?q=%00")
    assert unreadable.status_code == 400
    check_headers(unreadable, secure=False, where="GET /?q=%00")


@pytest.mark.parametrize("app_config", [{"PATIENT_LINK_RATE_LIMIT": "1 per minute"}], indirect=True)
def test_too_many_attempts_carry_the_headers(app: Flask) -> None:
    client = app.test_client()
    client.get("/p/first-guess")
    limited = client.get("/p/second-guess")
    assert limited.status_code == 429
    check_headers(limited, secure=False, where="GET /p/second-guess")


@pytest.fixture
def other_app(database_uri: str) -> Iterator[Callable[..., Flask]]:
    """Apps with other settings, for requests that need no table ("/" and /healthz)."""
    made: list[Flask] = []

    def make(**settings: Any) -> Flask:
        made.append(create_app(make_config(database_uri, **settings)))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()  # /healthz opened a connection


def test_hsts_behind_a_proxy_only_when_told_to_believe_it(
    other_app: Callable[..., Flask],
) -> None:
    https_at_proxy = {"X-Forwarded-Proto": "https"}
    believing = other_app(PROXY_FIX_X_PROTO=1).test_client()
    answer = believing.get("/", headers=https_at_proxy)
    check_headers(answer, secure=True, where="GET / (proxy says https)")
    # Without the setting anyone could claim https: the header is ignored.
    direct = other_app().test_client().get("/", headers=https_at_proxy)
    check_headers(direct, secure=False, where="GET / (no proxy configured)")


def test_trusted_hosts_come_from_base_url(other_app: Callable[..., Flask]) -> None:
    production = other_app(ENV="production")
    assert production.config["TRUSTED_HOSTS"] == ["pro.example.test"]
    client = production.test_client()
    assert client.get("/healthz", base_url="https://pro.example.test").status_code == 200
    for host in ("evil.example", "localhost", "pro.example.test.evil.example"):
        refused = client.get("/healthz", base_url=f"https://{host}")
        assert refused.status_code == 400, host
        assert "evil" not in refused.text
    # Development is also reached as localhost; nothing else.
    development = other_app().test_client()
    assert development.get("/healthz").status_code == 200
    assert development.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    # Behind a proxy that passes the host on, the forwarded host is checked the same way.
    forwarding = other_app(PROXY_FIX_X_HOST=1).test_client()
    spoofed = forwarding.get("/healthz", headers={"X-Forwarded-Host": "evil.example"})
    assert spoofed.status_code == 400


@pytest.mark.parametrize(
    "app_config",
    # Too loose on purpose: ".example" lets evil.example in, and the proxy's host is believed.
    [{"TRUSTED_HOSTS": [".example", "localhost"], "PROXY_FIX_X_HOST": 1}],
    indirect=True,
)
def test_links_in_messages_use_base_url_whatever_the_host(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with a host check too loose, the link sent comes from BASE_URL, never the request."""
    clinic_hours = utcnow().astimezone(ROME).replace(hour=11, minute=0)
    monkeypatch.setattr(link_pages, "utcnow", lambda: clinic_hours)  # not in quiet hours
    enrolled = factories.enrol(app, "MI01-0009", mobile="3471234567")
    factories.staff_user(app, "nurse@example.org", "nurse", "MI01")
    client = app.test_client()
    # The whole visit at a forged address, and a proxy header naming it too.
    evil = {"base_url": "http://evil.example", "headers": {"X-Forwarded-Host": "evil.example"}}
    page = client.get("/auth/sign-in", **evil)
    signed_in = client.post(
        "/auth/sign-in",
        data={
            "csrf_token": factories.csrf_token(page.text),
            "email": "nurse@example.org",
            "password": factories.STAFF_PASSWORD,
        },
        **evil,
    )
    assert signed_in.status_code == 302
    link_page = client.get(f"/staff/patients/{enrolled.patient_id}/link", **evil)
    assert link_page.status_code == 200
    assert f"https://pro.example.test/p/{enrolled.token}" in link_page.text
    assert "evil.example/p/" not in link_page.text
    sent = client.post(
        f"/staff/patients/{enrolled.patient_id}/send-link",
        data={"csrf_token": factories.csrf_token(link_page.text), "channel": "email"},
        **evil,
    )
    assert sent.status_code == 302
    with app.app_context():
        outbox = senders().email.sent  # type: ignore[attr-defined]
        assert len(outbox) == 1
        text = outbox[0].text + (outbox[0].html or "")
    assert f"https://pro.example.test/p/{enrolled.token}" in text
    assert "evil" not in text
