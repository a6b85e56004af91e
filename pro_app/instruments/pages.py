"""How a time point's questionnaires are cut into pages: sections kept whole, a few items a page."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pro_app.instruments.model import Instrument

FIELD_NAME = re.compile(r"^(?P<instrument>[a-z][a-z0-9_]*)-(?P<item>[1-9][0-9]{0,2})$")


def field_name(instrument: str, item: int) -> str:
    """The form field (radio group) name of an item, e.g. "qlq_c30-29"."""
    return f"{instrument}-{item}"


def parse_field_name(name: str) -> tuple[str, int] | None:
    """Instrument code and item number of a field name, or None if it is not one."""
    match = FIELD_NAME.match(name)
    return (match["instrument"], int(match["item"])) if match else None


@dataclass(frozen=True)
class Page:
    """One screen: some consecutive items of one section of one instrument."""

    number: int  # 1-based position among all pages of the time point
    instrument: str
    section: str
    items: tuple[int, ...]
    starts_section: bool
    starts_instrument: bool

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field_name(self.instrument, item) for item in self.items)


def paginate(instruments: Sequence[Instrument], items_per_page: int) -> tuple[Page, ...]:
    """Pages for these instruments in order; a page never mixes sections or instruments."""
    if items_per_page < 1:
        raise ValueError("items_per_page must be at least 1")
    pages: list[Page] = []
    for instrument in instruments:
        for section_index, section in enumerate(instrument.sections):
            for start in range(0, len(section.items), items_per_page):
                pages.append(
                    Page(
                        number=len(pages) + 1,
                        instrument=instrument.code,
                        section=section.code,
                        items=section.items[start : start + items_per_page],
                        starts_section=start == 0,
                        starts_instrument=start == 0 and section_index == 0,
                    )
                )
    return tuple(pages)


def page_of(pages: Sequence[Page], instrument: str, item: int) -> Page | None:
    """The page that shows this item, if any."""
    for page in pages:
        if page.instrument == instrument and item in page.items:
            return page
    return None
