"""Scale and item labels in the current locale, from the text packs in use."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import get_locale

from pro_app.instruments import Instrument
from pro_app.services.definitions import instrument_registry


def current_locale() -> str:
    locale = str(get_locale() or "it")
    return locale if locale in instrument_registry().locales else instrument_registry().locales[0]


@dataclass(frozen=True)
class ScaleLabel:
    """A scale's name from the text pack of whatever locale is current when str() runs."""

    instrument: str
    scale: str

    def __str__(self) -> str:
        pack = instrument_registry().text(self.instrument, current_locale())
        return pack.scales.get(self.scale, self.scale)


@dataclass(frozen=True)
class OptionLabel:
    """A response option's label (e.g. 1 = "Not at all") from the current text pack."""

    instrument: str
    response_scale: str
    value: int

    def __str__(self) -> str:
        pack = instrument_registry().text(self.instrument, current_locale())
        return pack.options.get(self.response_scale, {}).get(self.value, str(self.value))


def scale_kind(instrument: Instrument, code: str) -> str:
    """functional, symptom or global; "summary" for the summary score."""
    if instrument.summary is not None and code == instrument.summary.code:
        return "summary"
    return str(instrument.scale(code).kind)


def higher_is_worse(instrument: Instrument, code: str) -> bool:
    """Symptom scales rise as the patient gets worse; all other scores fall."""
    return scale_kind(instrument, code) == "symptom"


def items_in(instrument: Instrument, code: str) -> int:
    """Items of a scale; for the summary score, the scales it averages."""
    if instrument.summary is not None and code == instrument.summary.code:
        return len(instrument.summary.scales)
    return len(instrument.scale(code).items)
