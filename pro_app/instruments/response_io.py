"""Read a set of answers from JSON, e.g. {"1": 2, "2": null}, for import or tests."""

from __future__ import annotations

import json
import re
from typing import Any

from pro_app.instruments.model import Instrument

_ITEM_KEY = re.compile(r"[1-9][0-9]*")


class ResponseSetError(ValueError):
    """The text is not a valid response set for the instrument; the message says why."""


def parse_response_set(instrument: Instrument, text: str) -> dict[int, int | None]:
    """Item number → answer (None = not answered), checked against the instrument."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        raise ResponseSetError(
            f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ResponseSetError(
            f"expected a JSON object of item numbers to answers, not {_json_type(data)}"
        )
    answers: dict[int, int | None] = {}
    for key, value in data.items():
        if not _ITEM_KEY.fullmatch(key):
            raise ResponseSetError(f"key {key!r} is not an item number")
        number = int(key)
        if not instrument.has_item(number):
            raise ResponseSetError(f"item {number} is not an item of {instrument.code}")
        # JSON true/false arrive as bool, a subclass of int; they are not answers.
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ResponseSetError(
                f"item {number}: answer {json.dumps(value)} is not an integer or null"
            )
        scale = instrument.item(number).response_scale
        if value is not None and not scale.allows(value):
            raise ResponseSetError(
                f"item {number}: answer {value} is outside the allowed range "
                f"{scale.min}-{scale.max}"
            )
        answers[number] = value
    return dict(sorted(answers.items()))


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would keep the last of two answers to one item without a word.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ResponseSetError(f"key {key!r} appears more than once")
        result[key] = value
    return result


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
