"""Properties of scoring over random response sets with missing items, for both instruments."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pro_app.instruments.loader import load_instrument
from pro_app.instruments.model import Instrument
from pro_app.instruments.scoring import score_instrument
from tests.unit.reference_scoring import REFERENCES

QUESTIONNAIRES = Path(__file__).resolve().parents[2] / "questionnaires"
INSTRUMENTS = {
    code: load_instrument(QUESTIONNAIRES / f"{code}.yaml") for code in ("qlq_c30", "qlq_gi_net21")
}
ABSENT = object()  # an item left out of the mapping, as opposed to present with None


def response_sets(instrument: Instrument) -> st.SearchStrategy[dict[int, int | None]]:
    """Answers where each item is answered, None, or absent from the mapping."""
    per_item = [
        st.one_of(
            st.just(ABSENT),
            st.none(),
            st.integers(item.response_scale.min, item.response_scale.max),
        )
        for item in instrument.items
    ]
    return st.tuples(*per_item).map(
        lambda drawn: {
            number: value
            for number, value in zip(instrument.item_numbers, drawn, strict=True)
            if value is not ABSENT
        }
    )


def instrument_and_answers() -> st.SearchStrategy[tuple[Instrument, dict[int, int | None]]]:
    return st.sampled_from(list(INSTRUMENTS.values())).flatmap(
        lambda instrument: st.tuples(st.just(instrument), response_sets(instrument))
    )


@given(instrument_and_answers())
def test_scores_lie_between_0_and_100_or_are_missing(
    case: tuple[Instrument, dict[int, int | None]],
) -> None:
    instrument, answers = case
    scores = score_instrument(instrument, answers)
    assert list(scores) == list(instrument.scale_codes)
    for score in scores.values():
        assert score.value is None or 0 <= score.value <= 100
        assert 0 <= score.items_answered <= score.items_in_scale


@given(instrument_and_answers())
def test_agrees_with_the_independent_reference(
    case: tuple[Instrument, dict[int, int | None]],
) -> None:
    instrument, answers = case
    expected = REFERENCES[instrument.code](answers)
    actual = {code: score.value for code, score in score_instrument(instrument, answers).items()}
    assert actual.keys() == expected.keys()
    for code, value in expected.items():
        if value is None:
            assert actual[code] is None, code
        else:
            assert actual[code] == pytest.approx(value, abs=1e-9), code


@given(st.data())
def test_answering_one_more_item_never_loses_a_score(data: st.DataObject) -> None:
    instrument, answers = data.draw(instrument_and_answers())
    unanswered = [n for n in instrument.item_numbers if answers.get(n) is None]
    if not unanswered:
        return
    number = data.draw(st.sampled_from(unanswered))
    scale = instrument.item(number).response_scale
    more = {**answers, number: data.draw(st.integers(scale.min, scale.max))}
    before = score_instrument(instrument, answers)
    after = score_instrument(instrument, more)
    for code, score in before.items():
        if score.value is not None:
            assert after[code].value is not None, code


@given(instrument_and_answers())
def test_absent_and_none_mean_the_same(case: tuple[Instrument, dict[int, int | None]]) -> None:
    instrument, answers = case
    explicit = {number: answers.get(number) for number in instrument.item_numbers}
    assert score_instrument(instrument, explicit) == score_instrument(instrument, answers)


@pytest.mark.parametrize("instrument", INSTRUMENTS.values(), ids=INSTRUMENTS.keys())
def test_complete_answers_score_everything(instrument: Instrument) -> None:
    answers = {item.number: item.response_scale.max for item in instrument.items}
    assert all(score.value is not None for score in score_instrument(instrument, answers).values())
