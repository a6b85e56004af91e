"""A page saved at the very moment the questionnaire is submitted: scored with it, or refused."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime

import pytest
from flask import Flask

from pro_app.extensions import db
from pro_app.instruments.scoring import score_instrument
from pro_app.models import Assessment, Score
from pro_app.models.types import utcnow
from pro_app.services import answering, audit
from pro_app.services.definitions import instrument_registry
from pro_app.services.scores import answers_by_instrument
from tests import factories

# How long the save waits, between its check and its write, for the submission to finish. With
# the assessment locked first the submission cannot finish meanwhile, so the wait runs out.
PAUSE_SECONDS = 2.0
CHANGED_ITEM = "qlq_c30-1"  # physical functioning: a new value changes the PF2 score


def _baseline(patient_id: int) -> Assessment:
    assessment = db.session.scalar(
        db.select(Assessment).where(
            Assessment.patient_id == patient_id, Assessment.timepoint == "baseline"
        )
    )
    assert assessment is not None
    return assessment


def _all_items(assessment: Assessment) -> list[str]:
    return [name for page in answering.pages_for(assessment) for name in page.field_names]


def test_a_save_racing_the_submission_never_leaves_answers_the_scores_do_not_show(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrolled = factories.enrol(app)
    actor = audit.Actor.patient_link(1)
    with app.app_context():
        assessment = _baseline(enrolled.patient_id)
        answering.store_answers(
            assessment, dict.fromkeys(_all_items(assessment), 1), now=utcnow(), actor=actor
        )
        db.session.commit()

    checked, submitted = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}
    real_upsert = answering.upsert_answers

    def upsert_after_pause(target: Assessment, values: Mapping[str, int | None], now: datetime):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "save":
            checked.set()  # the save found the assessment open: now the submission runs
            submitted.wait(PAUSE_SECONDS)
        return real_upsert(target, values, now)

    monkeypatch.setattr(answering, "upsert_answers", upsert_after_pause)

    def save() -> None:
        with app.app_context():
            try:
                answering.store_answers(
                    _baseline(enrolled.patient_id), {CHANGED_ITEM: 4}, now=utcnow(), actor=actor
                )
                db.session.commit()
                outcome["save"] = "saved"
            except answering.AssessmentClosed:
                db.session.rollback()
                outcome["save"] = "refused"

    def submit() -> None:
        checked.wait(60)
        with app.app_context():
            outcome["submit"] = answering.submit(_baseline(enrolled.patient_id), utcnow(), actor)
            db.session.commit()
        submitted.set()

    saving = threading.Thread(target=save, name="save")
    saving.start()
    submitting = threading.Thread(target=submit, name="submit")
    submitting.start()
    saving.join(timeout=60)
    submitting.join(timeout=60)

    assert outcome == {"save": "saved", "submit": True}  # the submission waited for the save
    with app.app_context():
        assessment = _baseline(enrolled.patient_id)
        assert assessment.status == "completed"
        stored = answers_by_instrument(assessment)["qlq_c30"][1]
        assert stored == 4
        # The stored score is the score of the stored answers: nothing changed after scoring.
        pf2 = db.session.scalar(
            db.select(Score.value).where(Score.assessment_id == assessment.id, Score.scale == "PF2")
        )
        qlq_c30 = instrument_registry().get("qlq_c30")
        rescored = score_instrument(qlq_c30, answers_by_instrument(assessment)["qlq_c30"])
        assert pf2 == rescored["PF2"].value
