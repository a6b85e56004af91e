"""A small trial with a known history, built through the real services, for the export tests.

Five patients randomized on known dates (all times Rome): completed, late on paper, missed,
withdrawn during a window, died, and one still inside a window. TODAY is the export date.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask import Flask

from pro_app.extensions import db
from pro_app.models import Answer, Assessment, AssessmentStatus, Mode, Patient, StaffUser
from pro_app.services import audit, patient_status
from pro_app.services.corrections import correct_answer
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.paper_forms import record_paper_form
from pro_app.services.scores import store_scores
from tests.factories import ROME, enrol, staff_user

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=ROME)
# A free-text answer cannot exist, so the formula test goes through a correction reason.
FORMULA_REASON = '=HYPERLINK("http://evil.example","click")'

Answers = dict[tuple[str, int], int | None]


@dataclass(frozen=True)
class Trial:
    """Study codes by role in the story, and the answers each completed assessment holds."""

    answers: Mapping[tuple[str, str], Answers]  # (study code, time point) → answers
    tokens: tuple[str, ...]
    contacts: tuple[str, ...]


def rome(day: date, hour: int = 18) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=ROME)


def random_answers(rng: random.Random, timepoint: str, skip_share: float = 0.05) -> Answers:
    """A plausible answer set; some items skipped to exercise the missing-data rules."""
    registry = instrument_registry()
    answers: Answers = {}
    for code in trial_schedule().timepoint(timepoint).instruments:
        for item in registry.get(code).items:
            scale = item.response_scale
            value = None if rng.random() < skip_share else rng.randint(scale.min, scale.max)
            answers[(code, item.number)] = value
    return answers


def _assessment(patient_id: int, timepoint: str) -> Assessment:
    found = db.session.scalar(
        db.select(Assessment).where(
            Assessment.patient_id == patient_id, Assessment.timepoint == timepoint
        )
    )
    assert found is not None
    return found


def complete_online(patient_id: int, timepoint: str, answers: Answers, at: datetime) -> None:
    """Stored as a patient's submit stores it: answers, completed, scored."""
    assessment = _assessment(patient_id, timepoint)
    for (code, item), value in answers.items():
        db.session.add(
            Answer(assessment=assessment, instrument=code, item=item, value=value, answered_at=at)
        )
    assessment.status = AssessmentStatus.COMPLETED
    assessment.mode = Mode.WEB
    assessment.started_at = at - timedelta(minutes=12)
    assessment.completed_at = at.astimezone(UTC)
    assessment.text_packs = {code: "demo 2026.1" for code, _item in answers}
    db.session.flush()
    store_scores(assessment, at.astimezone(UTC))


def build_trial(app: Flask) -> Trial:
    """The story of the five patients; returns what the tests check against."""
    rng = random.Random(20261124)
    nurse_id = staff_user(app, "nurse.export@mi01.example.org", "investigator", "MI01")
    start = {
        "MI01-0001": date(2026, 5, 1),  # tae: all three, month 3 late on paper, one correction
        "MI01-0002": date(2026, 5, 2),  # tae: baseline only, then missed twice
        "MI01-0003": date(2026, 5, 3),  # control: baseline, withdrew on day 80 (in month 3)
        "MI01-0004": date(2026, 5, 4),  # control: baseline, month 3, died on day 150
        "MI01-0005": date(2026, 8, 17),  # control: baseline missed; month 3 open (day 99)
    }
    arms = {"MI01-0001": "tae", "MI01-0002": "tae"}
    ids, tokens = {}, []
    for code, randomized_on in start.items():
        enrolled = enrol(
            app, code, now=rome(randomized_on, 9), mobile="+393331234567", channel="email"
        )
        ids[code], _ = enrolled.patient_id, tokens.append(enrolled.token)
    answers: dict[tuple[str, str], Answers] = {}
    with app.app_context():
        for code, patient_id in ids.items():
            patient = db.session.get(Patient, patient_id)
            assert patient is not None
            patient.arm = arms.get(code, "control")

        def online(code: str, timepoint: str, day: int) -> None:
            given = random_answers(rng, timepoint)
            answers[(code, timepoint)] = given
            complete_online(ids[code], timepoint, given, rome(start[code] + timedelta(days=day)))

        online("MI01-0001", "baseline", 2)
        online("MI01-0001", "month6", 182)
        online("MI01-0002", "baseline", 0)
        online("MI01-0003", "baseline", 5)
        online("MI01-0004", "baseline", 1)
        online("MI01-0004", "month3", 90)
        # Month 3 of patient 1 on paper, filled in on day 110 (after the window: late).
        staff = db.session.get(StaffUser, nurse_id)
        assert staff is not None
        paper = random_answers(rng, "month3", skip_share=0.0)
        record_paper_form(
            _assessment(ids["MI01-0001"], "month3"),
            {f"{code}-{item}": value for (code, item), value in paper.items()},
            completed_on=start["MI01-0001"] + timedelta(days=110),
            staff_user=staff,
            now=rome(start["MI01-0001"] + timedelta(days=112)).astimezone(UTC),
        )
        # Then an investigator corrects item 1 (the reason looks like a spreadsheet formula).
        old = paper[("qlq_c30", 1)]
        new = 1 if old != 1 else 2
        correct_answer(
            _assessment(ids["MI01-0001"], "month3"),
            "qlq_c30",
            1,
            new,
            FORMULA_REASON,
            staff_user=staff,
            now=rome(start["MI01-0001"] + timedelta(days=115)).astimezone(UTC),
        )
        paper[("qlq_c30", 1)] = new
        answers[("MI01-0001", "month3")] = paper
        actor = audit.Actor.staff(nurse_id)
        withdrawn = db.session.get(Patient, ids["MI01-0003"])
        died = db.session.get(Patient, ids["MI01-0004"])
        assert withdrawn is not None
        assert died is not None
        day80 = start["MI01-0003"] + timedelta(days=80)
        patient_status.withdraw(
            withdrawn, day80, "moved abroad", rome(day80).astimezone(UTC), actor
        )
        day150 = start["MI01-0004"] + timedelta(days=150)
        patient_status.record_death(died, day150, rome(day150).astimezone(UTC), actor)
        db.session.commit()
    contacts = (*tuple(f"{code.lower()}@example.org" for code in start), "3331234567")
    return Trial(answers, tuple(tokens), contacts)
