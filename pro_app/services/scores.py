"""Computing and storing an assessment's scores from its stored answers."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from pro_app.extensions import db
from pro_app.instruments.scoring import score_instrument, scoring_version
from pro_app.models import Assessment, Score
from pro_app.services.definitions import instrument_registry, trial_schedule


def answers_by_instrument(assessment: Assessment) -> dict[str, dict[int, int | None]]:
    """The stored answers of an assessment: instrument → item → value (None = skipped)."""
    grouped: dict[str, dict[int, int | None]] = defaultdict(dict)
    for answer in assessment.answers:
        grouped[answer.instrument][answer.item] = answer.value
    return grouped


def store_scores(assessment: Assessment, now: datetime) -> list[Score]:
    """Score every instrument of the assessment's time point and replace its stored scores."""
    registry = instrument_registry()
    answers = answers_by_instrument(assessment)
    existing = {(score.instrument, score.scale): score for score in assessment.scores}
    stored: list[Score] = []
    for code in trial_schedule().timepoint(assessment.timepoint).instruments:
        instrument = registry.get(code)
        version = scoring_version(instrument)
        for scale, result in score_instrument(instrument, answers.get(code, {})).items():
            score = existing.get((code, scale)) or Score(
                assessment=assessment, instrument=code, scale=scale
            )
            score.value = result.value
            score.items_answered = result.items_answered
            score.items_in_scale = result.items_in_scale
            score.scoring_version = version
            score.computed_at = now
            db.session.add(score)
            stored.append(score)
    return stored
