"""Schema: migrations match the models, constraints refuse bad states, audit is append-only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from pro_app import create_app
from pro_app.extensions import db
from pro_app.models import (
    Answer,
    Assessment,
    AuditEvent,
    Message,
    Patient,
    PatientLink,
    Score,
    Site,
)
from pro_app.services import audit
from tests.conftest import make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_migrations_build_exactly_the_models_schema(tmp_path: Path, postgres_uri: str) -> None:
    uri = postgres_uri or f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    if postgres_uri:
        _drop_everything(postgres_uri)
    app = create_app(make_config(uri))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == []
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()  # leave the schema in place for the other PostgreSQL tests
        db.engine.dispose()


def _drop_everything(uri: str) -> None:
    engine = create_engine(uri)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def site(app: Flask) -> int:
    with app.app_context():
        new_site = Site(code="MI01", name="Milano")
        db.session.add(new_site)
        db.session.commit()
        return new_site.id


def _patient(site_id: int, code: str = "MI01-0001", **fields: object) -> Patient:
    return Patient(
        study_code=code, site_id=site_id, arm="tae", randomized_on=date(2026, 11, 1), **fields
    )


def _assessment(patient: Patient, **fields: object) -> Assessment:
    values = {
        "timepoint": "baseline",
        "target_on": date(2026, 11, 1),
        "window_opens_on": date(2026, 11, 1),
        "window_closes_on": date(2026, 11, 8),
        **fields,
    }
    return Assessment(patient=patient, **values)


def _refused(app: Flask, *rows_factory: object) -> None:
    with app.app_context():
        for row in rows_factory:
            db.session.add(row)
        with pytest.raises((IntegrityError, StatementError)):
            db.session.commit()
        db.session.rollback()


def test_answer_is_unique_per_assessment_instrument_item(app: Flask, site: int) -> None:
    with app.app_context():
        assessment = _assessment(_patient(site))
        db.session.add_all(
            [
                Answer(assessment=assessment, instrument="qlq_c30", item=1, value=2),
                Answer(assessment=assessment, instrument="qlq_c30", item=1, value=3),
            ]
        )
        with pytest.raises(IntegrityError):
            db.session.commit()


@pytest.mark.parametrize(
    "bad_fields",
    [
        {"status": "lost"},
        {"language": "fr"},
        {"status": "withdrawn"},  # without a withdrawal date
        {"died_on": date(2026, 11, 2)},  # dated death while still active
    ],
)
def test_patient_constraints(app: Flask, site: int, bad_fields: dict) -> None:
    with app.app_context():
        db.session.add(_patient(site, **bad_fields))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_patient_needs_an_existing_site(app: Flask) -> None:
    with app.app_context():
        db.session.add(_patient(site_id=999))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_study_code_is_unique(app: Flask, site: int) -> None:
    with app.app_context():
        db.session.add_all([_patient(site), _patient(site)])
        with pytest.raises(IntegrityError):
            db.session.commit()


@pytest.mark.parametrize(
    "bad_fields",
    [
        {"status": "done"},
        {"status": "completed"},  # completed without a completion time
        {"window_opens_on": date(2026, 12, 1)},  # opens after it closes
        {"mode": "fax"},
    ],
)
def test_assessment_constraints(app: Flask, site: int, bad_fields: dict) -> None:
    with app.app_context():
        db.session.add(_assessment(_patient(site), **bad_fields))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_score_must_lie_between_0_and_100(app: Flask, site: int) -> None:
    with app.app_context():
        db.session.add(
            Score(
                assessment=_assessment(_patient(site)),
                instrument="qlq_c30",
                scale="PF2",
                value=100.5,
                items_answered=5,
                items_in_scale=5,
                scoring_version="v",
            )
        )
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_only_one_active_link_per_patient(app: Flask, site: int) -> None:
    with app.app_context():
        patient = _patient(site)
        db.session.add_all(
            [
                PatientLink(patient=patient, token_hash="a" * 64, expires_at=NOW),
                PatientLink(patient=patient, token_hash="b" * 64, expires_at=NOW),
            ]
        )
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        patient = _patient(site)
        db.session.add_all(
            [
                PatientLink(patient=patient, token_hash="a" * 64, expires_at=NOW, revoked_at=NOW),
                PatientLink(patient=patient, token_hash="b" * 64, expires_at=NOW),
            ]
        )
        db.session.commit()


def test_message_dedupe_key_is_unique(app: Flask, site: int) -> None:
    with app.app_context():
        patient = _patient(site)
        for _ in range(2):
            db.session.add(
                Message(
                    patient=patient,
                    kind="invitation",
                    channel="email",
                    dedupe_key="MI01-0001:baseline:invitation:email",
                    scheduled_for=NOW,
                    next_attempt_at=NOW,
                )
            )
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_naive_datetimes_are_refused(app: Flask, site: int) -> None:
    with app.app_context():
        patient = _patient(site)
        db.session.add(
            PatientLink(patient=patient, token_hash="c" * 64, expires_at=datetime(2026, 1, 1))
        )
        with pytest.raises(StatementError, match="naive datetimes are refused"):
            db.session.commit()


def test_datetimes_come_back_aware_in_utc(app: Flask, site: int) -> None:
    from zoneinfo import ZoneInfo

    rome = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Rome"))
    with app.app_context():
        patient = _patient(site)
        db.session.add(PatientLink(patient=patient, token_hash="d" * 64, expires_at=rome))
        db.session.commit()
        db.session.expire_all()
        stored = db.session.scalar(db.select(PatientLink.expires_at))
        assert stored == rome
        assert stored.utcoffset().total_seconds() == 0
        assert stored.hour == 10


def test_audit_trail_refuses_update_and_delete(app: Flask, site: int) -> None:
    with app.app_context():
        event = audit.record(audit.SYSTEM, "site.touch", db.session.get(Site, site))
        db.session.commit()
        event_id = event.id
        for statement in (
            "UPDATE audit_event SET action = 'forged' WHERE id = :id",
            "DELETE FROM audit_event WHERE id = :id",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(statement), {"id": event_id})
            db.session.rollback()
        stored = db.session.get(AuditEvent, event_id)
        assert stored is not None
        assert stored.action == "site.touch"
