"""Immutable description of a questionnaire (structure and scoring map) and of its text packs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property


class ScaleKind(StrEnum):
    """How a scale's raw score turns into 0–100 (EORTC scoring manual)."""

    FUNCTIONAL = "functional"
    SYMPTOM = "symptom"
    GLOBAL = "global"


@dataclass(frozen=True)
class ResponseScale:
    """The allowed answers of an item: the integers min..max."""

    code: str
    min: int
    max: int

    @property
    def range(self) -> int:
        """Distance between the highest and lowest answer (the scoring manual's "range")."""
        return self.max - self.min

    def allows(self, value: int) -> bool:
        """Whether value is a possible answer on this scale."""
        return self.min <= value <= self.max


@dataclass(frozen=True)
class Item:
    """One question, identified by its EORTC item number."""

    number: int
    response_scale: ResponseScale


@dataclass(frozen=True)
class Section:
    """A group of items shown together, with shared instructions in the text pack."""

    code: str
    items: tuple[int, ...]


@dataclass(frozen=True)
class Scale:
    """A scored scale or single item: which items it averages and how the mean is transformed."""

    code: str
    kind: ScaleKind
    items: tuple[int, ...]
    item_range: int


@dataclass(frozen=True)
class SummaryScore:
    """A score that averages other scales, symptom scales reversed (e.g. SUMSC)."""

    code: str
    scales: tuple[str, ...]


@dataclass(frozen=True)
class Instrument:
    """A questionnaire's structure and scoring map, without any wording."""

    code: str
    name: str
    version: str
    source: str
    verified: bool
    items: tuple[Item, ...]
    sections: tuple[Section, ...]
    scales: tuple[Scale, ...]
    summary: SummaryScore | None

    # Cached on the instance __dict__, which a frozen dataclass still allows.
    @cached_property
    def _items_by_number(self) -> dict[int, Item]:
        return {item.number: item for item in self.items}

    def item(self, number: int) -> Item:
        """The item with this number; KeyError if the instrument has none."""
        try:
            return self._items_by_number[number]
        except KeyError:
            raise KeyError(f"{self.code} has no item {number}") from None

    def has_item(self, number: int) -> bool:
        """Whether the instrument has an item with this number."""
        return number in self._items_by_number

    def scale(self, code: str) -> Scale:
        """The scale with this code (not the summary); KeyError if there is none."""
        for scale in self.scales:
            if scale.code == code:
                return scale
        raise KeyError(f"{self.code} has no scale {code}")

    @property
    def item_numbers(self) -> tuple[int, ...]:
        """Item numbers in questionnaire order."""
        return tuple(item.number for item in self.items)

    @property
    def scale_codes(self) -> tuple[str, ...]:
        """Codes of every score the instrument produces, the summary score last."""
        codes = tuple(scale.code for scale in self.scales)
        return (*codes, self.summary.code) if self.summary else codes

    @property
    def response_scales(self) -> dict[str, ResponseScale]:
        """The response scales the items use, by code, in order of first use."""
        return {item.response_scale.code: item.response_scale for item in self.items}


@dataclass(frozen=True)
class SectionText:
    """What a patient reads above a section."""

    instructions: str


@dataclass(frozen=True)
class TextPack:
    """All wording of one instrument in one locale: the demo pack or a licensed one."""

    instrument: str
    locale: str
    pack: str
    version: str
    is_demo: bool
    notice: str | None
    title: str
    sections: Mapping[str, SectionText]
    options: Mapping[str, Mapping[int, str]]
    items: Mapping[int, str]
    scales: Mapping[str, str]

    @property
    def identity(self) -> str:
        """Pack name and version, recorded with every assessment, e.g. "demo 2026.1"."""
        return f"{self.pack} {self.version}"
