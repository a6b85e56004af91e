"""A randomization-date correction moves only the windows that have not opened yet."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from pro_app.extensions import db
from pro_app.models import (
    Assessment,
    AssessmentStatus,
    AuditEvent,
    Message,
    MessageStatus,
    Patient,
)
from pro_app.protocol.reminders import plan_messages
from pro_app.protocol.windows import AssessmentWindow, plan_windows
from pro_app.services import answering, audit, patient_status
from pro_app.services.assessment_states import advance_assessment_states
from pro_app.services.definitions import trial_schedule
from pro_app.services.links import active_link
from pro_app.services.outbox import sync_patient_messages
from pro_app.services.patient_status import StatusChangeError
from pro_app.services.randomization import correct_randomization_date
from tests import factories
from tests.factories import rome

ROME = ZoneInfo("Europe/Rome")
ENROLLED_AT = rome(2026, 3, 2, 10)  # randomized the same day
NURSE = audit.Actor.staff(1)


@pytest.fixture
def patient_id(app: Flask) -> int:
    factories.staff_user(app)
    return factories.enrol(app, "MI01-0101", now=ENROLLED_AT).patient_id


def _assessments(patient_id: int) -> dict[str, Assessment]:
    rows = db.session.scalars(db.select(Assessment).where(Assessment.patient_id == patient_id))
    return {assessment.timepoint: assessment for assessment in rows}


def _dates(assessment: Assessment) -> tuple[date, date, date]:
    return assessment.target_on, assessment.window_opens_on, assessment.window_closes_on


def _pending(patient_id: int, timepoint: str) -> list[tuple[str, datetime]]:
    rows = db.session.scalars(
        db.select(Message)
        .join(Assessment, Assessment.id == Message.assessment_id)
        .where(
            Message.patient_id == patient_id,
            Assessment.timepoint == timepoint,
            Message.status == MessageStatus.PENDING,
        )
        .order_by(Message.scheduled_for)
    )
    return [(message.kind, message.scheduled_for) for message in rows]


def _expected(window: AssessmentWindow, now: datetime) -> list[tuple[str, datetime]]:
    planned = plan_messages(trial_schedule(), window, ROME, not_before=now)
    return [(message.kind, max(message.send_at, now)) for message in planned]


def _complete_baseline(patient_id: int, at: datetime) -> None:
    baseline = _assessments(patient_id)["baseline"]
    assert answering.submit(baseline, at, NURSE)
    db.session.commit()


def _snapshot(patient_id: int) -> dict[str, Any]:
    db.session.expire_all()
    patient = db.session.get(Patient, patient_id)
    assert patient is not None
    return {
        "randomized_on": patient.randomized_on,
        "assessments": {code: _dates(a) for code, a in _assessments(patient_id).items()},
        "messages": sorted(
            (m.dedupe_key, m.status, m.scheduled_for)
            for m in db.session.scalars(db.select(Message).where(Message.patient_id == patient_id))
        ),
        "audit": db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)),
    }


def test_moves_only_windows_not_yet_open(app_context: None, patient_id: int) -> None:
    _complete_baseline(patient_id, rome(2026, 3, 3, 18))
    before = _assessments(patient_id)
    baseline_dates = _dates(before["baseline"])
    now = rome(2026, 3, 20, 11)  # month 3 opens in May
    new_date = date(2026, 2, 20)
    patient = db.session.get(Patient, patient_id)
    assert patient is not None

    correction = correct_randomization_date(patient, new_date, "typo in the CRF", now, NURSE)
    db.session.commit()

    assert correction.moved == ["month3", "month6"]
    assert correction.kept == ["baseline"]
    after = _assessments(patient_id)
    assert _dates(after["baseline"]) == baseline_dates
    assert after["baseline"].status == AssessmentStatus.COMPLETED
    windows = {w.timepoint: w for w in plan_windows(trial_schedule(), new_date, date(2026, 3, 2))}
    for code in ("month3", "month6"):
        assert after[code].window == windows[code]
        assert _pending(patient_id, code) == _expected(windows[code], now)
    assert after["month3"].target_on == new_date + timedelta(days=91)
    assert after["month3"].window_opens_on == new_date + timedelta(days=77)
    assert patient.randomized_on == new_date
    event = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "patient.correct_randomization")
    ).one()
    assert event.actor_id == "1"
    assert event.reason == "typo in the CRF"
    assert event.before == {"randomized_on": "2026-03-02"}
    assert event.after is not None
    assert event.after["randomized_on"] == "2026-02-20"
    assert set(event.after["moved"]) == {"month3", "month6"}
    assert event.after["kept"] == ["baseline"]


def test_later_date_moves_messages_later(app_context: None, patient_id: int) -> None:
    now = rome(2026, 3, 5, 12)
    old_month3 = _pending(patient_id, "month3")
    patient = db.session.get(Patient, patient_id)
    assert patient is not None
    link = active_link(patient)
    assert link is not None
    old_expiry = link.expires_at

    correct_randomization_date(patient, date(2026, 3, 4), "date of the signed consent", now, NURSE)
    db.session.commit()

    new_month3 = _pending(patient_id, "month3")
    assert [kind for kind, _ in new_month3] == [kind for kind, _ in old_month3]
    assert all(
        new - old == timedelta(days=2)
        for (_, new), (_, old) in zip(new_month3, old_month3, strict=True)
    )
    # The link stays valid until the last window, which closes two days later now.
    assert link.expires_at - old_expiry == timedelta(days=2)


@pytest.mark.parametrize("after_a_pass", [False, True])
def test_open_window_keeps_its_dates(
    app_context: None, patient_id: int, after_a_pass: bool
) -> None:
    _complete_baseline(patient_id, rome(2026, 3, 3, 18))
    now = rome(2026, 5, 25, 11)  # month 3's window opened on 18 May
    if after_a_pass:
        advance_assessment_states(now)  # the stored status says "open" too
        db.session.commit()
    patient = db.session.get(Patient, patient_id)
    assert patient is not None
    # What any re-plan at this instant does to month 3's overdue rows, with or without a
    # correction: the comparison is then about the correction alone.
    sync_patient_messages(patient, now)
    db.session.commit()
    month3_dates = _dates(_assessments(patient_id)["month3"])
    month3_pending = _pending(patient_id, "month3")

    correction = correct_randomization_date(patient, date(2026, 2, 25), "wrong date", now, NURSE)
    db.session.commit()

    after = _assessments(patient_id)
    assert correction.moved == ["month6"]
    assert "month3" in correction.kept
    assert _dates(after["month3"]) == month3_dates
    assert _pending(patient_id, "month3") == month3_pending
    assert after["month6"].target_on == date(2026, 2, 25) + timedelta(days=182)


def test_in_progress_assessment_is_not_moved(app_context: None, patient_id: int) -> None:
    # An assessment started on paper or on a tablet before its window (not possible on the web)
    # is history: the correction leaves it alone like an open one.
    month6 = _assessments(patient_id)["month6"]
    month6.status = AssessmentStatus.IN_PROGRESS
    month6.started_at = rome(2026, 3, 10, 10)
    db.session.commit()
    dates = _dates(month6)
    patient = db.session.get(Patient, patient_id)
    assert patient is not None

    correction = correct_randomization_date(
        patient, date(2026, 2, 27), "wrong date", rome(2026, 3, 10, 12), NURSE
    )

    assert "month6" in correction.kept
    assert _dates(_assessments(patient_id)["month6"]) == dates


@pytest.mark.parametrize(
    ("new_date", "reason", "field", "message"),
    [
        (date(2026, 3, 11), "wrong", "new_date", "cannot be in the future"),
        (date(2025, 3, 1), "wrong", "new_date", "more than a year before enrolment"),
        (date(2026, 3, 2), "wrong", "new_date", "already the randomization date"),
        (date(2026, 2, 28), "   ", "reason", "Give the reason"),
        (date(2026, 2, 28), "x" * 501, "reason", "at most 500 characters"),
    ],
)
def test_refusals_change_nothing(
    app_context: None, patient_id: int, new_date: date, reason: str, field: str, message: str
) -> None:
    before = _snapshot(patient_id)
    patient = db.session.get(Patient, patient_id)
    assert patient is not None

    with pytest.raises(StatusChangeError) as refused:
        correct_randomization_date(patient, new_date, reason, rome(2026, 3, 10, 12), NURSE)

    assert refused.value.field == field
    assert message in str(refused.value.message)
    db.session.rollback()
    assert _snapshot(patient_id) == before


def test_a_withdrawn_patient_cannot_be_corrected(app_context: None, patient_id: int) -> None:
    patient = db.session.get(Patient, patient_id)
    assert patient is not None
    patient_status.withdraw(patient, date(2026, 3, 5), "moved abroad", rome(2026, 3, 5, 12), NURSE)
    db.session.commit()

    with pytest.raises(StatusChangeError, match="no longer followed"):
        correct_randomization_date(
            patient, date(2026, 2, 28), "wrong date", rome(2026, 3, 6, 12), NURSE
        )
