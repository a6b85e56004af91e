"""EORTC scoring: each scale, the manual's worked examples, the half rule and input errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pro_app.instruments.loader import load_instrument
from pro_app.instruments.model import ScaleKind
from pro_app.instruments.scoring import (
    ScaleScore,
    ScoringInputError,
    score_instrument,
    scoring_version,
)

QUESTIONNAIRES = Path(__file__).resolve().parents[2] / "questionnaires"
C30 = load_instrument(QUESTIONNAIRES / "qlq_c30.yaml")
GI_NET21 = load_instrument(QUESTIONNAIRES / "qlq_gi_net21.yaml")

C30_CODES = [
    "QL2", "PF2", "RF2", "EF", "CF", "SF", "FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI", "FI",
]  # fmt: skip


def approx(value: float) -> object:
    """Equality within the 1e-9 that SCORING.md allows for summation order."""
    return pytest.approx(value, abs=1e-9)


def all_answered(four_point: int, seven_point: int) -> dict[int, int | None]:
    answers: dict[int, int | None] = {n: four_point for n in range(1, 29)}
    answers.update({29: seven_point, 30: seven_point})
    return answers


# Each scale on its own, expected values worked out by hand from the manual's formulas.
C30_SINGLE_SCALE_CASES = [
    ("QL2", {29: 6, 30: 5}, (5.5 - 1) / 6 * 100),  # 75
    ("PF2", {1: 1, 2: 2, 3: 2, 4: 3, 5: 4}, (1 - (2.4 - 1) / 3) * 100),  # 53.33
    ("RF2", {6: 2, 7: 3}, 50.0),
    ("EF", {21: 1, 22: 2, 23: 1, 24: 2}, 250 / 3),  # RS 1.5
    ("CF", {20: 4, 25: 3}, 50 / 3),  # RS 3.5
    ("SF", {26: 1, 27: 1}, 100.0),
    ("FA", {10: 2, 12: 3, 18: 4}, 200 / 3),  # RS 3
    ("NV", {14: 1, 15: 2}, 50 / 3),  # RS 1.5
    ("PA", {9: 4, 19: 4}, 100.0),
    ("DY", {8: 2}, 100 / 3),
    ("SL", {11: 3}, 200 / 3),
    ("AP", {13: 4}, 100.0),
    ("CO", {16: 1}, 0.0),
    ("DI", {17: 2}, 100 / 3),
    ("FI", {28: 3}, 200 / 3),
]


def test_single_scale_cases_cover_every_c30_scale() -> None:
    assert [case[0] for case in C30_SINGLE_SCALE_CASES] == C30_CODES
    assert list(C30.scale_codes) == [*C30_CODES, "SUMSC"]


@pytest.mark.parametrize(("code", "answers", "expected"), C30_SINGLE_SCALE_CASES)
def test_each_c30_scale(code: str, answers: dict[int, int], expected: float) -> None:
    scores = score_instrument(C30, answers)
    assert scores[code].value == approx(expected)
    assert scores[code].items_answered == scores[code].items_in_scale == len(answers)
    # No two C30 scales share an item, so every other scale lacks its items.
    assert all(score.value is None for other, score in scores.items() if other != code)


def test_all_lowest_answers() -> None:
    scores = score_instrument(C30, all_answered(1, 1))
    for scale in C30.scales:
        expected = 100.0 if scale.kind is ScaleKind.FUNCTIONAL else 0.0
        assert scores[scale.code].value == approx(expected), scale.code
    assert scores["QL2"].value == approx(0.0)
    assert scores["SUMSC"].value == approx(100.0)


def test_all_highest_answers() -> None:
    scores = score_instrument(C30, all_answered(4, 7))
    for scale in C30.scales:
        expected = 0.0 if scale.kind is ScaleKind.FUNCTIONAL else 100.0
        assert scores[scale.code].value == approx(expected), scale.code
    assert scores["QL2"].value == approx(100.0)
    assert scores["SUMSC"].value == approx(0.0)


def test_pf2_worked_example_with_two_items_missing() -> None:
    score = score_instrument(C30, {1: 2, 2: 2, 3: 3, 4: None})["PF2"]
    assert score.value == approx((1 - (4 / 3) / 3) * 100)
    assert score.value == approx(55.5555555556)
    assert (score.items_answered, score.items_in_scale) == (3, 5)


def test_pf2_with_only_two_items_is_missing() -> None:
    score = score_instrument(C30, {1: 2, 2: 2})["PF2"]
    assert score == ScaleScore("PF2", None, 2, 5)


@pytest.mark.parametrize(
    ("code", "answers", "expected"),
    [
        ("EF", {21: 2, 22: 3}, (1 - 1.5 / 3) * 100),  # 2 of 4
        ("FA", {10: 2, 18: 3}, 1.5 / 3 * 100),  # 2 of 3
        ("NV", {15: 4}, 100.0),  # 1 of 2
        ("QL2", {30: 4}, 50.0),  # 1 of 2 on the 1-7 scale
    ],
)
def test_exactly_half_answered_is_scored(
    code: str, answers: dict[int, int], expected: float
) -> None:
    assert score_instrument(C30, answers)[code].value == approx(expected)


@pytest.mark.parametrize(
    ("code", "answers"),
    [("EF", {21: 2}), ("FA", {12: 3}), ("PF2", {5: 1}), ("NV", {}), ("QL2", {29: None, 30: None})],
)
def test_fewer_than_half_answered_is_missing(code: str, answers: dict[int, int | None]) -> None:
    assert score_instrument(C30, answers)[code].value is None


def test_single_item_scale_missing_when_its_item_is_missing() -> None:
    answers = all_answered(2, 4)
    answers[8] = None
    scores = score_instrument(C30, answers)
    assert scores["DY"] == ScaleScore("DY", None, 0, 1)
    assert scores["SL"].value is not None


@pytest.mark.parametrize("answers", [{}, dict.fromkeys(range(1, 31))])
def test_nothing_answered_leaves_every_score_missing(answers: dict[int, None]) -> None:
    scores = score_instrument(C30, answers)
    assert list(scores) == [*C30_CODES, "SUMSC"]
    assert all(score.value is None for score in scores.values())
    assert scores["SUMSC"].items_answered == 0


def test_summary_is_missing_when_a_component_is_missing() -> None:
    answers = all_answered(2, 5)
    del answers[8]  # DY, a single item
    scores = score_instrument(C30, answers)
    assert scores["SUMSC"] == ScaleScore("SUMSC", None, 12, 13)


@pytest.mark.parametrize("missing", [[29, 30], [28]], ids=["QL2", "FI"])
def test_summary_does_not_need_ql2_or_fi(missing: list[int]) -> None:
    answers = all_answered(2, 5)
    for number in missing:
        answers[number] = None
    summary = score_instrument(C30, answers)["SUMSC"]
    # All four-point answers 2: functional 66.67, symptoms 33.33 reversed to 66.67.
    assert summary.value == approx(200 / 3)
    assert (summary.items_answered, summary.items_in_scale) == (13, 13)


def test_summary_reverses_symptom_scales() -> None:
    answers = all_answered(1, 4)
    answers.update({8: 4, 11: 4})  # DY and SL at 100: they enter the summary as 0
    summary = score_instrument(C30, answers)["SUMSC"].value
    assert summary == approx((11 * 100 + 0 + 0) / 13)


def test_zero_is_a_score_not_a_missing_value() -> None:
    score = score_instrument(C30, {16: 1})["CO"]
    assert score.value is not None
    assert score.value == 0.0
    assert score_instrument(C30, {})["CO"].value is None


def test_scores_are_not_rounded() -> None:
    value = score_instrument(C30, {8: 2})["DY"].value
    assert value == approx(100 / 3)
    assert value != round(value, 6)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({1: 0}, "item 1: answer 0 is outside 1-4"),
        ({1: 5}, "item 1: answer 5 is outside 1-4"),
        ({29: 8}, "item 29: answer 8 is outside 1-7"),
        ({31: 1}, "qlq_c30 has no item 31"),
        ({0: 1}, "qlq_c30 has no item 0"),
        ({1: True}, "item 1: answer True is not an integer"),
        ({1: 2.0}, "item 1: answer 2.0 is not an integer"),
        ({1: "2"}, "item 1: answer '2' is not an integer"),
        ({"1": 2}, "item key '1' is not an item number"),
        ({True: 2}, "item key True is not an item number"),
    ],
)
def test_impossible_answers_are_rejected(answers: dict[object, object], message: str) -> None:
    with pytest.raises(ScoringInputError) as raised:
        score_instrument(C30, answers)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_seven_point_items_accept_values_above_four() -> None:
    assert score_instrument(C30, {29: 7, 30: 5})["QL2"].value == approx(500 / 6)


# GI.NET21 under the provisional map, worked out by hand.
@pytest.mark.parametrize(
    ("code", "answers", "expected"),
    [
        ("ED", {31: 2, 32: 2, 33: 3}, (7 / 3 - 1) / 3 * 100),  # 44.44
        ("GI", {34: 4, 35: 4, 36: 3}, (11 / 3 - 1) / 3 * 100),  # 3 of 5 answered
        ("TR", {39: 1, 40: None}, 0.0),
        ("WG", {41: 4}, 100.0),
        ("SOC", {42: 1, 43: 2, 44: 4}, (1 - (7 / 3 - 1) / 3) * 100),  # functional: reversed
        ("DRW", {45: 2, 46: 3}, 50.0),
        ("MBP", {48: 2}, 100 / 3),
        ("SX", {49: 3}, 200 / 3),
        ("INF", {50: 1}, 0.0),
        ("BI", {51: 4}, 100.0),
    ],
)
def test_each_gi_net21_scale(code: str, answers: dict[int, int | None], expected: float) -> None:
    scores = score_instrument(GI_NET21, answers)
    assert scores[code].value == approx(expected)
    assert all(score.value is None for other, score in scores.items() if other != code)


def test_gi_net21_has_no_summary_and_half_rule_applies() -> None:
    scores = score_instrument(GI_NET21, {34: 2, 35: 2})
    assert list(scores) == ["ED", "GI", "TR", "WG", "SOC", "DRW", "MBP", "SX", "INF", "BI"]
    assert scores["GI"] == ScaleScore("GI", None, 2, 5)


def test_gi_net21_rejects_c30_items() -> None:
    with pytest.raises(ScoringInputError, match="qlq_gi_net21 has no item 1"):
        score_instrument(GI_NET21, {1: 1})


def test_scoring_version_names_the_definition() -> None:
    assert scoring_version(C30).startswith("qlq_c30 3.0 eortc-manual-3 map-")
    assert "eortc-manual-3-provisional map-" in scoring_version(GI_NET21)
    assert scoring_version(C30) == scoring_version(load_instrument(QUESTIONNAIRES / "qlq_c30.yaml"))


def test_scoring_version_changes_with_the_scale_map() -> None:
    first, *others = GI_NET21.scales
    moved = dataclasses.replace(first, items=(*first.items, 41))
    changed = dataclasses.replace(GI_NET21, scales=(moved, *others))
    assert scoring_version(changed) != scoring_version(GI_NET21)
