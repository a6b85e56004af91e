"""API tokens: only the hash is kept; only valid tokens of allowed, active staff open the API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import text

from pro_app.extensions import db
from pro_app.models import ApiToken, AuditEvent, StaffUser
from pro_app.services import api_tokens
from tests import factories

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
ANALYST = "analyst@example.org"


@pytest.fixture
def analyst_id(app: Flask) -> int:
    return factories.staff_user(app, ANALYST, role="analyst", site_code=None)


def _user(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    assert user is not None
    return user


def _create(user_id: int, name: str = "laptop", **kwargs: object) -> tuple[ApiToken, str]:
    token, raw = api_tokens.create_token(_user(user_id), name, NOW, **kwargs)  # type: ignore[arg-type]
    db.session.commit()
    return token, raw


def _cells(table: str) -> list[str]:
    rows = db.session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 (fixed table names)
    return [str(cell) for row in rows for cell in row if cell is not None]


def test_only_the_hash_and_a_short_prefix_are_stored(
    app: Flask, app_context: None, analyst_id: int
) -> None:
    token, raw = _create(analyst_id)
    assert raw.startswith("pro_")
    assert len(raw) >= 40
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:8]
    assert token.name == "laptop"
    assert token.created_at == NOW
    assert token.expires_at is None
    secret_part = raw[8:]
    for table in ("api_token", "audit_event"):
        for cell in _cells(table):
            assert raw not in cell
            assert secret_part not in cell
    for cell in _cells("audit_event"):
        assert token.token_hash not in cell
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "api_token.create"))
    assert event is not None
    assert event.entity_type == "api_token"
    assert event.actor_id == str(analyst_id)
    assert event.after == {"owner_id": analyst_id, "name": "laptop", "prefix": raw[:8]}


def test_two_tokens_differ(app: Flask, app_context: None, analyst_id: int) -> None:
    first, raw_first = _create(analyst_id)
    second, raw_second = _create(analyst_id)
    assert raw_first != raw_second
    assert first.token_hash != second.token_hash


def test_the_hash_finds_the_owner(app: Flask, app_context: None, analyst_id: int) -> None:
    _token, raw = _create(analyst_id)
    user = api_tokens.authenticate(raw, NOW)
    assert user is not None
    assert user.id == analyst_id
    assert api_tokens.authenticate(raw + "x", NOW) is None
    assert api_tokens.authenticate(raw[:-1], NOW) is None
    assert api_tokens.authenticate(raw[4:], NOW) is None  # without the "pro_" marker
    assert api_tokens.authenticate("", NOW) is None
    assert api_tokens.authenticate("pro_" + "a" * 500, NOW) is None


@pytest.mark.parametrize("name", ["", "   "])
def test_a_name_is_required(app: Flask, app_context: None, analyst_id: int, name: str) -> None:
    with pytest.raises(api_tokens.ApiTokenError) as refused:
        api_tokens.create_token(_user(analyst_id), name, NOW)
    assert refused.value.field == "name"


def test_a_name_is_at_most_100_characters(app: Flask, app_context: None, analyst_id: int) -> None:
    token, _raw = _create(analyst_id, "  " + "n" * 100 + "  ")
    assert token.name == "n" * 100
    with pytest.raises(api_tokens.ApiTokenError) as refused:
        api_tokens.create_token(_user(analyst_id), "n" * 101, NOW)
    assert refused.value.field == "name"


def test_nurses_cannot_create_tokens(app: Flask, app_context: None) -> None:
    nurse_id = factories.staff_user(app, "nurse@mi01.example.org", role="nurse")
    with pytest.raises(api_tokens.ApiTokenError):
        api_tokens.create_token(_user(nurse_id), "laptop", NOW)
    assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 0


def test_a_revoked_token_is_refused(app: Flask, app_context: None, analyst_id: int) -> None:
    token, raw = _create(analyst_id)
    later = NOW + timedelta(hours=1)
    revoked = api_tokens.revoke_token(_user(analyst_id), token.id, later)
    db.session.commit()
    assert revoked is token
    assert token.revoked_at == later
    assert token.status_at(later) == "revoked"
    assert api_tokens.authenticate(raw, later) is None
    # Revoking again changes nothing and writes no second audit row.
    assert api_tokens.revoke_token(_user(analyst_id), token.id, later + timedelta(hours=1))
    assert token.revoked_at == later
    actions = db.session.scalars(
        db.select(AuditEvent.action).where(AuditEvent.action == "api_token.revoke")
    ).all()
    assert actions == ["api_token.revoke"]


def test_an_expired_token_is_refused(app: Flask, app_context: None, analyst_id: int) -> None:
    expires = NOW + timedelta(days=30)
    token, raw = _create(analyst_id, expires_at=expires)
    assert api_tokens.authenticate(raw, expires - timedelta(seconds=1)) is not None
    assert api_tokens.authenticate(raw, expires) is None
    assert token.status_at(expires) == "expired"


def test_the_token_of_a_deactivated_account_is_refused(
    app: Flask, app_context: None, analyst_id: int
) -> None:
    _token, raw = _create(analyst_id)
    _user(analyst_id).is_active = False
    db.session.commit()
    assert api_tokens.authenticate(raw, NOW) is None
    assert api_tokens.find_token(raw, NOW) is None


def test_a_token_stops_working_when_the_role_changes_to_nurse(
    app: Flask, app_context: None, analyst_id: int
) -> None:
    _token, raw = _create(analyst_id)
    _user(analyst_id).role = "nurse"
    db.session.commit()
    assert api_tokens.authenticate(raw, NOW) is None
    assert api_tokens.find_token(raw, NOW) is not None  # a valid token, of the wrong role


def test_last_use_is_written_at_most_once_a_minute(
    app: Flask, app_context: None, analyst_id: int
) -> None:
    token, raw = _create(analyst_id)
    assert token.last_used_at is None
    api_tokens.authenticate(raw, NOW)
    assert token.last_used_at == NOW
    db.session.commit()
    api_tokens.authenticate(raw, NOW + timedelta(seconds=30))
    assert not db.session.dirty
    assert token.last_used_at == NOW
    api_tokens.authenticate(raw, NOW + timedelta(seconds=59))
    assert token.last_used_at == NOW
    api_tokens.authenticate(raw, NOW + timedelta(seconds=60))
    assert token.last_used_at == NOW + timedelta(seconds=60)


def test_only_the_owner_or_an_admin_revokes(app: Flask, app_context: None, analyst_id: int) -> None:
    token, raw = _create(analyst_id)
    other_id = factories.staff_user(app, "other@example.org", role="analyst", site_code=None)
    admin_id = factories.staff_user(app, "admin@example.org", role="admin", site_code=None)
    assert api_tokens.revoke_token(_user(other_id), token.id, NOW) is None
    assert api_tokens.revoke_token(_user(other_id), 9999, NOW) is None
    assert token.revoked_at is None
    assert api_tokens.authenticate(raw, NOW) is not None
    assert api_tokens.active_tokens_of_others(_user(admin_id), NOW) == [token]
    assert api_tokens.revoke_token(_user(admin_id), token.id, NOW) is token
    db.session.commit()
    assert token.revoked_at == NOW
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "api_token.revoke"))
    assert event is not None
    assert event.actor_id == str(admin_id)
    assert api_tokens.active_tokens_of_others(_user(admin_id), NOW) == []


def test_tokens_are_listed_newest_first(app: Flask, app_context: None, analyst_id: int) -> None:
    first, _ = _create(analyst_id, "first")
    second, _ = _create(analyst_id, "second")
    assert api_tokens.tokens_of(_user(analyst_id)) == [second, first]
