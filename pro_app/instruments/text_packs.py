"""Load a text pack (text/<code>.<locale>.yaml) and check it against its instrument."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pro_app.instruments.model import Instrument, ResponseScale, SectionText, TextPack
from pro_app.instruments.problems import ProblemLog, QuestionnaireError, has_type

_TOP_KEYS = {
    "instrument", "locale", "pack", "version", "is_demo", "notice", "title",
    "sections", "options", "items", "scales",
}  # fmt: skip

Raw = Mapping[Any, Any]
K = TypeVar("K")
V = TypeVar("V")


def text_pack_name(instrument_code: str, locale: str) -> str:
    """The file name of an instrument's text pack in a locale, e.g. "qlq_c30.it.yaml"."""
    return f"{instrument_code}.{locale}.yaml"


def load_text_pack(path: Path | str, instrument: Instrument, *, file_label: str = "") -> TextPack:
    """Read a text pack and check it covers the instrument exactly; QuestionnaireError if not."""
    path = Path(path)
    log = ProblemLog(file_label or path.name)
    data = log.read_yaml(path)
    pack = None if data is None else _parse_pack(data, path.name, instrument, log)
    if pack is None or log.problems:
        raise QuestionnaireError(log.problems)
    return pack


def _parse_pack(
    data: Any, file_name: str, instrument: Instrument, log: ProblemLog
) -> TextPack | None:
    top = log.mapping(data, "")
    if top is None:
        return None
    log.unknown_keys(top, _TOP_KEYS, "")
    file_code, _, file_locale = file_name.removesuffix(".yaml").rpartition(".")
    if file_code != instrument.code:
        log.add("", f"file name must be {text_pack_name(instrument.code, '<locale>')}")
    code = log.field(top, "instrument", str, "")
    if code is not None and code != instrument.code:
        log.add("", f"instrument '{code}' does not match '{instrument.code}'")
    locale = log.field(top, "locale", str, "")
    if locale is not None and locale != file_locale:
        log.add("", f"locale '{locale}' does not match the file name (expected '{file_locale}')")
    pack = log.field(top, "pack", str, "")
    version = log.field(top, "version", str, "")
    title = log.field(top, "title", str, "")
    is_demo = log.field(top, "is_demo", bool, "")
    # Patients must be told when they see demo wording; a licensed pack needs no notice.
    notice = log.field(top, "notice", str, "", required=is_demo is True)

    section_codes = [section.code for section in instrument.sections]
    sections = _texts(top, "sections", "section", section_codes, _section_text, log)
    items = _texts(top, "items", "item", instrument.item_numbers, _plain_text, log)
    scales = _texts(top, "scales", "scale", instrument.scale_codes, _plain_text, log)
    options = _options(top, instrument.response_scales, log)

    if log.problems:
        return None
    # No problems means every required field was read; the checks narrow the types for mypy.
    if pack is None or version is None or title is None or is_demo is None or locale is None:
        return None
    return TextPack(
        instrument=instrument.code,
        locale=locale,
        pack=pack,
        version=version,
        is_demo=is_demo,
        notice=notice,
        title=title,
        sections=MappingProxyType(sections),
        options=MappingProxyType(options),
        items=MappingProxyType(items),
        scales=MappingProxyType(scales),
    )


def _where(label: str, key: Any) -> str:
    if isinstance(key, str) and key.isdigit():
        return f"{label} '{key}' (write numbers without quotes)"
    return f"{label} {key}"


def _plain_text(value: Any, where: str, log: ProblemLog) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    log.add(where, "text must be a non-empty string")
    return None


def _section_text(value: Any, where: str, log: ProblemLog) -> SectionText | None:
    entry = log.mapping(value, where)
    if entry is None:
        return None
    log.unknown_keys(entry, {"instructions"}, where)
    instructions = log.field(entry, "instructions", str, where)
    return SectionText(instructions) if instructions is not None else None


def _texts(
    top: Raw,
    key: str,
    label: str,
    expected: Iterable[K],
    parse: Callable[[Any, str, ProblemLog], V | None],
    log: ProblemLog,
) -> dict[K, V]:
    """The entries of top[key], which must cover exactly the expected keys."""
    raw = log.field(top, key, dict, "")
    if raw is None:
        return {}
    wanted = list(expected)
    texts: dict[K, V] = {}
    for name, value in raw.items():
        if name not in wanted:
            log.add(_where(label, name), "is not part of this instrument")
            continue
        text = parse(value, _where(label, name), log)
        if text is not None:
            texts[name] = text
    for name in wanted:
        if name not in raw:
            log.add(_where(label, name), "has no text")
    # Keep the instrument's order, whatever the order in the file.
    return {name: texts[name] for name in wanted if name in texts}


def _options(
    top: Raw, response_scales: Mapping[str, ResponseScale], log: ProblemLog
) -> dict[str, Mapping[int, str]]:
    raw = log.field(top, "options", dict, "")
    if raw is None:
        return {}
    options: dict[str, Mapping[int, str]] = {}
    for code, labels in raw.items():
        where = f"options {code}"
        if code not in response_scales:
            log.add(where, "is not a response scale used by this instrument")
            continue
        entry = log.mapping(labels, where)
        if entry is not None:
            options[code] = MappingProxyType(_labels(entry, response_scales[code], where, log))
    for code in response_scales:
        if code not in raw:
            log.add(f"options {code}", "has no labels")
    return options


def _labels(entry: Raw, scale: ResponseScale, where: str, log: ProblemLog) -> dict[int, str]:
    labels: dict[int, str] = {}
    for value, label in entry.items():
        if not has_type(value, int):
            log.add(where, f"{value!r} is not an answer value (write numbers without quotes)")
        elif not scale.allows(value):
            log.add(where, f"option {value} is outside the scale ({scale.min}-{scale.max})")
        else:
            text = _plain_text(label, f"{where} option {value}", log)
            if text is not None:
                labels[value] = text
    # Both ends must be named so a patient knows which way the scale runs.
    for end in (scale.min, scale.max):
        if end not in entry:
            log.add(where, f"option {end} needs a label (both ends of the scale are labelled)")
    return dict(sorted(labels.items()))
