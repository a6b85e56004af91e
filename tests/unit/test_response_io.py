"""Reading response sets from JSON: good sets and each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pro_app.instruments.loader import load_instrument
from pro_app.instruments.response_io import ResponseSetError, parse_response_set

QUESTIONNAIRES = Path(__file__).resolve().parents[2] / "questionnaires"
C30 = load_instrument(QUESTIONNAIRES / "qlq_c30.yaml")
GI_NET21 = load_instrument(QUESTIONNAIRES / "qlq_gi_net21.yaml")


def test_good_set() -> None:
    text = '{"2": 3, "1": 2, "29": 7, "30": null}'
    assert parse_response_set(C30, text) == {1: 2, 2: 3, 29: 7, 30: None}


def test_null_and_missing_items_are_allowed() -> None:
    assert parse_response_set(C30, '{"5": null}') == {5: None}
    assert parse_response_set(C30, "{}") == {}


def test_module_items_are_numbered_after_the_core() -> None:
    assert parse_response_set(GI_NET21, '{"31": 4, "51": 1}') == {31: 4, 51: 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"1": 2,',
            "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 9",
        ),
        ("", "not valid JSON: Expecting value at line 1, column 1"),
        ("[1, 2]", "expected a JSON object of item numbers to answers, not an array"),
        ('"1"', "expected a JSON object of item numbers to answers, not a string"),
        ('{"abc": 1}', "key 'abc' is not an item number"),
        ('{"01": 1}', "key '01' is not an item number"),
        ('{"99": 1}', "item 99 is not an item of qlq_c30"),
        ('{"31": 1}', "item 31 is not an item of qlq_c30"),
        ('{"1": 9}', "item 1: answer 9 is outside the allowed range 1-4"),
        ('{"29": 0}', "item 29: answer 0 is outside the allowed range 1-7"),
        ('{"1": "2"}', 'item 1: answer "2" is not an integer or null'),
        ('{"1": 2.0}', "item 1: answer 2.0 is not an integer or null"),
        ('{"1": true}', "item 1: answer true is not an integer or null"),
        ('{"1": 2, "1": 3}', "key '1' appears more than once"),
    ],
)
def test_bad_set(text: str, message: str) -> None:
    with pytest.raises(ResponseSetError) as raised:
        parse_response_set(C30, text)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_messages_are_one_line() -> None:
    with pytest.raises(ResponseSetError) as raised:
        parse_response_set(C30, '{"1": "two\\nlines"}')
    assert "\n" not in str(raised.value)
