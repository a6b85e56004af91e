"""The first questionnaire page stays light: at most 30 KB uncompressed and 4 requests."""

from __future__ import annotations

from flask import Flask

from bench.page_weight import (
    FIRST_PAGE_MAX_BYTES,
    FIRST_PAGE_MAX_REQUESTS,
    measure_patient_pages,
)
from tests import factories


def test_first_questionnaire_page_is_light(app: Flask, live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    enrolled = factories.enrol(app)
    weights = {w.page: w for w in measure_patient_pages(live_server, enrolled.token, browser)}
    first = weights["first questionnaire page"]
    assert first.requests <= FIRST_PAGE_MAX_REQUESTS
    assert 5_000 < first.bytes <= FIRST_PAGE_MAX_BYTES
    for weight in weights.values():
        assert weight.bytes <= FIRST_PAGE_MAX_BYTES, weight
        assert weight.requests <= FIRST_PAGE_MAX_REQUESTS, weight
