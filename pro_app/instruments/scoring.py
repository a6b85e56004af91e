"""EORTC scoring (QLQ-C30 Scoring Manual, 3rd ed.): scale scores 0–100 with the half rule."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pro_app.instruments.model import Instrument, Scale, ScaleKind

SCORING_METHOD = "eortc-manual-3"


class ScoringInputError(ValueError):
    """The answers cannot be scored: an unknown item or an impossible value."""


@dataclass(frozen=True)
class ScaleScore:
    """One scale's score (None when missing) and how many of its parts were available.

    For the summary score the parts are its component scales, not items.
    """

    code: str
    value: float | None
    items_answered: int
    items_in_scale: int


def score_instrument(
    instrument: Instrument, answers: Mapping[int, int | None]
) -> dict[str, ScaleScore]:
    """Score every scale, summary last; unanswered or absent items count as missing."""
    check_answers(instrument, answers)
    scores = {scale.code: _score_scale(instrument, scale, answers) for scale in instrument.scales}
    if instrument.summary is not None:
        parts = [scores[code] for code in instrument.summary.scales]
        oriented = [
            _higher_is_better(instrument.scale(part.code).kind, part.value)
            for part in parts
            if part.value is not None
        ]
        # Giesinger et al. 2016: the summary exists only when every component does.
        value = sum(oriented) / len(oriented) if len(oriented) == len(parts) else None
        scores[instrument.summary.code] = ScaleScore(
            instrument.summary.code, value, len(oriented), len(parts)
        )
    return scores


def check_answers(instrument: Instrument, answers: Mapping[int, int | None]) -> None:
    """Raise ScoringInputError unless every answer is a possible value of a known item."""
    for number, value in answers.items():
        # bool is an int subclass, but True as an answer is always a caller's mistake.
        if not isinstance(number, int) or isinstance(number, bool):
            raise ScoringInputError(f"item key {number!r} is not an item number")
        if not instrument.has_item(number):
            raise ScoringInputError(f"{instrument.code} has no item {number}")
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScoringInputError(f"item {number}: answer {value!r} is not an integer")
        scale = instrument.item(number).response_scale
        if not scale.allows(value):
            raise ScoringInputError(
                f"item {number}: answer {value} is outside {scale.min}-{scale.max}"
            )


def scoring_version(instrument: Instrument) -> str:
    """A stable label of the scoring definition behind a score, stored next to it."""
    provisional = "" if instrument.verified else "-provisional"
    method = f"{SCORING_METHOD}{provisional}"
    return f"{instrument.code} {instrument.version} {method} map-{_map_digest(instrument)}"


def _score_scale(
    instrument: Instrument, scale: Scale, answers: Mapping[int, int | None]
) -> ScaleScore:
    answered = [answer for number in scale.items if (answer := answers.get(number)) is not None]
    # Half rule: a scale is scored when at least half of its items are answered.
    if not answered or len(answered) * 2 < len(scale.items):
        return ScaleScore(scale.code, None, len(answered), len(scale.items))
    lowest = instrument.item(scale.items[0]).response_scale.min
    raw_score = sum(answered) / len(answered)
    position = (raw_score - lowest) / scale.item_range
    value = (1 - position) * 100 if scale.kind is ScaleKind.FUNCTIONAL else position * 100
    return ScaleScore(scale.code, value, len(answered), len(scale.items))


def _higher_is_better(kind: ScaleKind, value: float) -> float:
    return 100 - value if kind is ScaleKind.SYMPTOM else value


def _map_digest(instrument: Instrument) -> str:
    # Changing any item of the scoring map (e.g. a deployment's licensed GI.NET21 map)
    # changes the label, so scores from different maps are never mixed up.
    definition = {
        "scales": [
            [scale.code, scale.kind.value, list(scale.items), scale.item_range]
            for scale in instrument.scales
        ],
        "summary": [instrument.summary.code, list(instrument.summary.scales)]
        if instrument.summary
        else None,
        "minimum": {item.number: item.response_scale.min for item in instrument.items},
    }
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]
