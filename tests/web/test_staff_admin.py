"""Administration pages: only admins; accounts added, changed, deactivated, unlocked; sites."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func

from pro_app.extensions import db
from pro_app.models import AuditEvent, Site, StaffSession, StaffUser
from pro_app.services.passwords import verify_password
from tests import factories

ADMIN = "admin@example.org"
NURSE = "nurse@mi01.example.org"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def admin(app: Flask, client: FlaskClient) -> int:
    """An English-speaking admin, signed in on `client`; returns the admin's id."""
    admin_id = factories.staff_user(app, ADMIN, "admin", None, "en")
    assert factories.sign_in(client, ADMIN).status_code == 302
    return admin_id


def _user(app: Flask, email: str) -> StaffUser:
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == email))
        assert user is not None
        db.session.expunge(user)
        return user


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(db.select(func.count()).select_from(model)) or 0)


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))
        for event in events:
            db.session.expunge(event)
        return events


def _post(client: FlaskClient, url: str, data: dict[str, str], page: str | None = None):  # type: ignore[no-untyped-def]
    html = client.get(page or url).text
    return client.post(url, data={"csrf_token": factories.csrf_token(html), **data})


def _new_account(**overrides: str) -> dict[str, str]:
    return {
        "email": "new.nurse@mi01.example.org",
        "name": "Nuova Infermiera",
        "role": "nurse",
        "site": "1",
        "language": "it",
        "password": "eight ch",
        **overrides,
    }


ADMIN_PAGES = ["/staff/admin/accounts", "/staff/admin/accounts/1", "/staff/admin/sites"]
ADMIN_POSTS = [
    "/staff/admin/accounts",
    "/staff/admin/accounts/1",
    "/staff/admin/accounts/1/password",
    "/staff/admin/accounts/1/unlock",
    "/staff/admin/accounts/1/deactivate",
    "/staff/admin/accounts/1/reactivate",
    "/staff/admin/sites",
]


@pytest.mark.parametrize("role", ["nurse", "investigator", "analyst"])
def test_only_admins_reach_the_admin_pages(app: Flask, client: FlaskClient, role: str) -> None:
    factories.staff_user(app, ADMIN, "admin", None)
    email = f"{role}@example.org"
    factories.staff_user(app, email, role, "MI01" if role != "analyst" else None)
    factories.sign_in(client, email)
    token = factories.csrf_token(client.get("/auth/sign-in?x=1", follow_redirects=True).text)
    for url in ADMIN_PAGES:
        assert client.get(url).status_code == 403, url
    events = _count(app, AuditEvent)
    for url in ADMIN_POSTS:
        data = {"csrf_token": token, "role": "admin", "site": "", "name": "X", "language": "it"}
        assert client.post(url, data=data).status_code == 403, url
    assert _count(app, AuditEvent) == events
    assert _user(app, email).role == role


def test_admin_pages_need_sign_in(app: Flask, client: FlaskClient) -> None:
    for url in ADMIN_PAGES:
        assert client.get(url).headers["Location"].startswith("/auth/sign-in")


def test_admin_sees_every_account_and_gets_no_writes_from_reading(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    factories.staff_user(app)
    events = _count(app, AuditEvent)
    listing = client.get("/staff/admin/accounts")
    assert listing.status_code == 200
    assert NURSE in listing.text
    assert ADMIN in listing.text
    assert '<th scope="col">Locked until</th>' in listing.text
    assert client.get("/staff/admin/accounts/2").status_code == 200
    assert client.get("/staff/admin/sites").status_code == 200
    assert client.get("/staff/admin/accounts/999").status_code == 404
    assert _count(app, AuditEvent) == events


def test_admin_adds_an_account_that_can_sign_in(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    factories.site(app)
    data = _new_account(email="New.Nurse@MI01.example.org")
    response = _post(client, "/staff/admin/accounts", data)
    assert response.status_code == 302
    user = _user(app, "new.nurse@mi01.example.org")
    assert (user.role, user.site_id, user.name) == ("nurse", 1, "Nuova Infermiera")
    [created] = _audit(app, "staff.create")[-1:]
    assert created.actor_id == str(admin)
    assert created.after is not None
    assert created.after["role"] == "nurse"
    assert "eight ch" not in json.dumps(created.after)
    assert "argon2" not in json.dumps(created.after)
    other = app.test_client()
    assert factories.sign_in(other, "new.nurse@mi01.example.org", "eight ch").status_code == 302


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": ""}, "email", "Enter the e-mail address."),
        ({"email": "not-an-address"}, "email", "This is not a valid e-mail address."),
        ({"email": "x" * 250 + "@example.org"}, "email", "The e-mail address is too long."),
        ({"email": ADMIN.upper()}, "email", "An account with this e-mail address already exists."),
        ({"email": "<script>@example.org"}, "email", "characters &lt; and &gt;"),
        ({"name": ""}, "name", "Enter a name."),
        ({"name": "n" * 201}, "name", "The name must be at most 200 characters long."),
        ({"name": "<script>alert(1)</script>"}, "name", "Please do not use the characters"),
        ({"password": "short"}, "password", "The password must be 8-128 characters long."),
        ({"password": "p" * 129}, "password", "The password must be 8-128 characters long."),
        ({"site": ""}, "site", "Nurses and investigators must belong to a site."),
        ({"role": "superuser"}, "role", "Not a valid choice"),
        ({"site": "99"}, "site", "Not a valid choice"),
    ],
)
def test_bad_account_input_is_refused_at_the_field(
    app: Flask, client: FlaskClient, admin: int, overrides: dict[str, str], field: str, message: str
) -> None:
    factories.site(app)
    accounts, events = _count(app, StaffUser), _count(app, AuditEvent)
    response = _post(client, "/staff/admin/accounts", _new_account(**overrides))
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert f'aria-describedby="{field}-error"' in response.text or (
        f'aria-describedby="{field}-hint {field}-error"' in response.text
    )
    assert "<script>alert" not in response.text
    assert (_count(app, StaffUser), _count(app, AuditEvent)) == (accounts, events)


def test_italian_admin_gets_italian_field_messages(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app, ADMIN, "admin", None, "it")
    factories.site(app)
    factories.sign_in(client, ADMIN)
    response = _post(client, "/staff/admin/accounts", _new_account(site=""))
    assert response.status_code == 400
    assert "Infermieri e sperimentatori devono essere assegnati a un centro." in response.text


def test_analyst_and_admin_accounts_may_have_no_site(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    data = _new_account(email="stats@example.org", role="analyst", site="")
    assert _post(client, "/staff/admin/accounts", data).status_code == 302
    assert _user(app, "stats@example.org").site_id is None


def test_admin_changes_role_site_and_language_with_audit(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    nurse_id = factories.staff_user(app)
    factories.site(app, "RM02")
    url = f"/staff/admin/accounts/{nurse_id}"
    page = client.get(url)
    assert 'value="Nurse"' in page.text
    assert '<option selected value="1">' in page.text
    data = {
        "name": "Anna Rossi",
        "role": "investigator",
        "site": "2",
        "language": "en",
        "is_active": "y",
    }
    response = _post(client, url, data)
    assert response.status_code == 302
    user = _user(app, NURSE)
    assert (user.name, user.role, user.site_id, user.language) == (
        "Anna Rossi",
        "investigator",
        2,
        "en",
    )
    [event] = _audit(app, "staff.update")
    assert event.before == {"name": "Nurse", "role": "nurse", "site": "MI01", "language": "it"}
    assert event.after == {
        "name": "Anna Rossi",
        "role": "investigator",
        "site": "RM02",
        "language": "en",
    }
    assert event.actor_id == str(admin)
    again = _post(client, url, data)  # the same values again: nothing to record
    assert again.status_code == 302
    assert len(_audit(app, "staff.update")) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "<script>x</script>"}, "name"),
        ({"name": ""}, "name"),
        ({"site": ""}, "site"),
        ({"language": "de"}, "language"),
    ],
)
def test_bad_edit_input_changes_nothing(
    app: Flask, client: FlaskClient, admin: int, overrides: dict[str, str], field: str
) -> None:
    nurse_id = factories.staff_user(app)
    events = _count(app, AuditEvent)
    data = {"name": "Nurse", "role": "nurse", "site": "1", "language": "it", "is_active": "y"}
    response = _post(client, f"/staff/admin/accounts/{nurse_id}", {**data, **overrides})
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    user = _user(app, NURSE)
    assert (user.name, user.site_id, user.language) == ("Nurse", 1, "it")
    assert _count(app, AuditEvent) == events


def test_deactivation_ends_every_session_and_copied_cookies(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    nurse_id = factories.staff_user(app)
    nurse = app.test_client()
    factories.sign_in(nurse, NURSE)
    copied = app.test_client()
    cookie = nurse.get_cookie("session")
    assert cookie is not None
    copied.set_cookie("session", cookie.value)
    assert not copied.get("/staff/").headers["Location"].startswith("/auth/sign-in")

    response = _post(
        client,
        f"/staff/admin/accounts/{nurse_id}/deactivate",
        {},
        page=f"/staff/admin/accounts/{nurse_id}",
    )
    assert response.status_code == 302
    for browser in (nurse, copied):
        assert browser.get("/staff/").headers["Location"].startswith("/auth/sign-in")
    with app.app_context():
        sessions = list(
            db.session.scalars(
                db.select(StaffSession).where(StaffSession.staff_user_id == nurse_id)
            )
        )
        assert sessions
        assert all(s.revoked_at is not None for s in sessions)
    [event] = _audit(app, "staff.deactivate")
    assert event.before == {"active": True}
    assert event.after == {"active": False, "sessions_revoked": 1}
    assert factories.sign_in(app.test_client(), NURSE).status_code == 400
    assert "No" in client.get("/staff/admin/accounts").text

    back = _post(
        client,
        f"/staff/admin/accounts/{nurse_id}/reactivate",
        {},
        page=f"/staff/admin/accounts/{nurse_id}",
    )
    assert back.status_code == 302
    assert _user(app, NURSE).is_active
    assert len(_audit(app, "staff.reactivate")) == 1
    assert factories.sign_in(app.test_client(), NURSE).status_code == 302


def test_deactivating_through_the_edit_form(app: Flask, client: FlaskClient, admin: int) -> None:
    nurse_id = factories.staff_user(app)
    data = {"name": "Nurse", "role": "nurse", "site": "1", "language": "it"}  # box unticked
    assert _post(client, f"/staff/admin/accounts/{nurse_id}", data).status_code == 302
    assert not _user(app, NURSE).is_active
    assert len(_audit(app, "staff.deactivate")) == 1


def test_admin_cannot_deactivate_or_demote_themselves(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    url = f"/staff/admin/accounts/{admin}"
    page = client.get(url).text
    assert f"/staff/admin/accounts/{admin}/deactivate" not in page  # no button for oneself
    events = _count(app, AuditEvent)
    refused = _post(client, f"{url}/deactivate", {}, page=url)
    assert refused.status_code == 400
    assert "You cannot deactivate your own account" in refused.text
    demoted = _post(
        client,
        url,
        {"name": "Admin", "role": "nurse", "site": "", "language": "en", "is_active": "y"},
    )
    assert demoted.status_code == 400
    assert "You cannot change your own role" in demoted.text
    inactive = _post(client, url, {"name": "Admin", "role": "admin", "site": "", "language": "en"})
    assert inactive.status_code == 400
    assert 'id="is_active-error"' in inactive.text
    user = _user(app, ADMIN)
    assert (user.role, user.is_active, user.name) == ("admin", True, "Admin")
    assert _count(app, AuditEvent) == events
    assert client.get("/staff/admin/accounts").status_code == 200  # still signed in


def test_unlock_clears_the_lockout(app: Flask, client: FlaskClient, admin: int) -> None:
    nurse_id = factories.staff_user(app)
    for _ in range(5):
        factories.sign_in(app.test_client(), NURSE, "wrong password!")
    assert factories.sign_in(app.test_client(), NURSE).status_code == 400  # locked
    url = f"/staff/admin/accounts/{nurse_id}"
    page = client.get(url).text
    assert 'class="status-locked"' in page
    assert f"{url}/unlock" in page
    assert 'class="status-locked"' in client.get("/staff/admin/accounts").text
    response = _post(client, f"{url}/unlock", {}, page=url)
    assert response.status_code == 302
    user = _user(app, NURSE)
    assert (user.locked_until, user.failed_login_count) == (None, 0)
    [event] = _audit(app, "staff.unlock")
    assert event.before is not None
    assert event.before["locked_until"] is not None
    assert event.after == {"locked_until": None, "failed_login_count": 0}
    assert factories.sign_in(app.test_client(), NURSE).status_code == 302
    nothing = _post(client, f"{url}/unlock", {}, page=url)  # not locked any more
    assert nothing.status_code == 302
    assert len(_audit(app, "staff.unlock")) == 1


def test_password_reset_ends_sessions_and_never_reaches_the_trail(
    app: Flask, client: FlaskClient, admin: int
) -> None:
    nurse_id = factories.staff_user(app)
    nurse = app.test_client()
    factories.sign_in(nurse, NURSE)
    url = f"/staff/admin/accounts/{nurse_id}"
    response = _post(
        client, f"{url}/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, page=url
    )
    assert response.status_code == 302
    assert nurse.get("/staff/").headers["Location"].startswith("/auth/sign-in")
    assert verify_password(_user(app, NURSE).password_hash, NEW_PASSWORD)
    assert factories.sign_in(app.test_client(), NURSE).status_code == 400  # old one
    assert factories.sign_in(app.test_client(), NURSE, NEW_PASSWORD).status_code == 302
    [event] = _audit(app, "staff.password_reset")
    assert event.after == {"password": "changed", "sessions_revoked": 1}
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent))
        trail = json.dumps([[event.before, event.after] for event in events])
    assert NEW_PASSWORD not in trail
    assert "argon2" not in trail


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"password": "short", "confirm": "short"}, "password", "8-128 characters"),
        ({"password": NEW_PASSWORD, "confirm": "something else"}, "confirm", "not the same"),
        ({"password": "", "confirm": ""}, "password", "Enter a password."),
    ],
)
def test_bad_password_reset_changes_nothing(
    app: Flask, client: FlaskClient, admin: int, data: dict[str, str], field: str, message: str
) -> None:
    nurse_id = factories.staff_user(app)
    before = _user(app, NURSE).password_hash
    url = f"/staff/admin/accounts/{nurse_id}"
    response = _post(client, f"{url}/password", data, page=url)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert _user(app, NURSE).password_hash == before
    assert _audit(app, "staff.password_reset") == []


def test_admin_adds_a_site(app: Flask, client: FlaskClient, admin: int) -> None:
    response = _post(client, "/staff/admin/sites", {"code": "to03", "name": "Ospedale di Torino"})
    assert response.status_code == 302
    listing = client.get("/staff/admin/sites").text
    assert "TO03" in listing
    assert "Ospedale di Torino" in listing
    [event] = _audit(app, "site.create")
    assert event.actor_id == str(admin)
    assert event.after == {"code": "TO03", "name": "Ospedale di Torino"}
    # The new site is offered at once for accounts.
    assert (
        '<option value="1">TO03 – Ospedale di Torino</option>'
        in client.get("/staff/admin/accounts").text
    )


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"code": "", "name": "Ospedale"}, "code", "Enter the site code."),
        ({"code": "MI 01", "name": "Ospedale"}, "code", "capital letters, digits"),
        ({"code": "A" * 21, "name": "Ospedale"}, "code", "at most 20 characters"),
        ({"code": "MI01", "name": "Doppione"}, "code", "Site MI01 already exists."),
        ({"code": "TO03", "name": ""}, "name", "Enter the site name."),
        ({"code": "TO03", "name": "x" * 201}, "name", "1-200 characters"),
        ({"code": "TO03", "name": "<script>alert(1)</script>"}, "name", "characters &lt; and &gt;"),
    ],
)
def test_bad_site_input_changes_nothing(
    app: Flask, client: FlaskClient, admin: int, data: dict[str, str], field: str, message: str
) -> None:
    factories.site(app, "MI01")
    sites, events = _count(app, Site), _count(app, AuditEvent)
    response = _post(client, "/staff/admin/sites", data)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert "<script>alert" not in response.text
    assert (_count(app, Site), _count(app, AuditEvent)) == (sites, events)


def test_posts_without_csrf_token_are_refused(app: Flask, client: FlaskClient, admin: int) -> None:
    nurse_id = factories.staff_user(app)
    events = _count(app, AuditEvent)
    for url in [
        "/staff/admin/accounts",
        f"/staff/admin/accounts/{nurse_id}",
        f"/staff/admin/accounts/{nurse_id}/password",
        f"/staff/admin/accounts/{nurse_id}/unlock",
        f"/staff/admin/accounts/{nurse_id}/deactivate",
        "/staff/admin/sites",
    ]:
        assert client.post(url, data={"code": "XX", "name": "X"}).status_code == 400, url
    assert _count(app, AuditEvent) == events
    assert _user(app, NURSE).is_active
