"""Cutting questionnaires into pages."""

from __future__ import annotations

import pytest

from pro_app.instruments.pages import field_name, page_of, paginate, parse_field_name
from tests.unit.test_scoring_properties import INSTRUMENTS

BOTH = [INSTRUMENTS["qlq_c30"], INSTRUMENTS["qlq_gi_net21"]]


def test_every_item_appears_once_in_order() -> None:
    pages = paginate(BOTH, 5)
    shown = [(page.instrument, item) for page in pages for item in page.items]
    expected = [(i.code, n) for i in BOTH for n in i.item_numbers]
    assert shown == expected
    assert [page.number for page in pages] == list(range(1, len(pages) + 1))


def test_pages_never_mix_sections_and_respect_the_size() -> None:
    for size in (1, 3, 5, 7, 100):
        for page in paginate(BOTH, size):
            assert 1 <= len(page.items) <= size
            instrument = next(i for i in BOTH if i.code == page.instrument)
            section = next(s for s in instrument.sections if s.code == page.section)
            assert set(page.items) <= set(section.items)


def test_one_item_per_screen() -> None:
    pages = paginate(BOTH, 1)
    assert len(pages) == 51
    assert pages[0].starts_instrument
    assert pages[0].starts_section
    assert not pages[1].starts_section
    assert pages[30].instrument == "qlq_gi_net21"
    assert pages[30].starts_instrument


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        paginate(BOTH, 0)


def test_field_names_round_trip() -> None:
    assert field_name("qlq_c30", 29) == "qlq_c30-29"
    assert parse_field_name("qlq_c30-29") == ("qlq_c30", 29)
    for bad in ("qlq_c30-0", "qlq_c30-", "QLQ-1", "qlq_c30-1000", "x-1; drop", "-1", "qlq_c30-01"):
        assert parse_field_name(bad) is None


def test_page_of_finds_the_page_of_an_item() -> None:
    pages = paginate(BOTH, 5)
    page = page_of(pages, "qlq_gi_net21", 51)
    assert page is not None
    assert page is pages[-1]
    assert page_of(pages, "qlq_c30", 99) is None
