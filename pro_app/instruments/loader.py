"""Load instrument files (questionnaires/<code>.yaml) and their text packs, checked strictly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pro_app.instruments.model import (
    Instrument,
    Item,
    ResponseScale,
    Scale,
    ScaleKind,
    Section,
    SummaryScore,
)
from pro_app.instruments.problems import (
    ProblemLog,
    QuestionnaireError,
    QuestionnaireProblem,
    has_type,
)
from pro_app.instruments.text_packs import load_text_pack

__all__ = ["QuestionnaireError", "QuestionnaireProblem", "load_instrument", "load_text_pack"]

_TOP_KEYS = {
    "code", "name", "version", "source", "verified",
    "response_scales", "sections", "items", "scales", "summary",
}  # fmt: skip
_KINDS = ", ".join(kind.value for kind in ScaleKind)

Raw = Mapping[Any, Any]


def load_instrument(path: Path | str) -> Instrument:
    """Read and check an instrument file; QuestionnaireError lists every problem found."""
    path = Path(path)
    log = ProblemLog(path.name)
    data = log.read_yaml(path)
    instrument = None if data is None else _parse_instrument(data, path.stem, log)
    if instrument is None or log.problems:
        raise QuestionnaireError(log.problems)
    return instrument


def _parse_instrument(data: Any, expected_code: str, log: ProblemLog) -> Instrument | None:
    top = log.mapping(data, "")
    if top is None:
        return None
    log.unknown_keys(top, _TOP_KEYS, "")
    code = log.field(top, "code", str, "")
    if code is not None and code != expected_code:
        log.add("", f"code '{code}' does not match the file name (expected '{expected_code}')")
    name = log.field(top, "name", str, "")
    version = log.field(top, "version", str, "")
    source = log.field(top, "source", str, "")
    verified = log.field(top, "verified", bool, "")

    response_scales = _parse_response_scales(top, log)
    items, numbers = _parse_items(top, response_scales, log)
    sections = _parse_sections(top, numbers, log)
    scales, kinds = _parse_scales(top, items, numbers, log)
    summary = _parse_summary(top, kinds, log)
    if response_scales is not None and items:
        used = {item.response_scale.code for item in items}
        for unused in sorted(response_scales.keys() - used):
            log.add(f"response scale {unused}", "is not used by any item")

    if log.problems:
        return None
    # No problems means every required field was read; the checks narrow the types for mypy.
    if code is None or name is None or version is None or source is None or verified is None:
        return None
    return Instrument(
        code=code,
        name=name,
        version=version,
        source=source,
        verified=verified,
        items=tuple(items),
        sections=tuple(sections),
        scales=tuple(scales),
        summary=summary,
    )


def _parse_response_scales(top: Raw, log: ProblemLog) -> dict[str, ResponseScale] | None:
    raw = log.field(top, "response_scales", dict, "")
    if raw is None:
        return None
    scales: dict[str, ResponseScale] = {}
    for code, spec in raw.items():
        where = f"response scale {code}"
        entry = log.mapping(spec, where)
        if entry is None:
            continue
        log.unknown_keys(entry, {"min", "max"}, where)
        low = log.field(entry, "min", int, where)
        high = log.field(entry, "max", int, where)
        if low is None or high is None:
            continue
        if low >= high:
            log.add(where, f"min ({low}) must be less than max ({high})")
        scales[str(code)] = ResponseScale(str(code), low, high)
    return scales


def _parse_items(
    top: Raw, response_scales: dict[str, ResponseScale] | None, log: ProblemLog
) -> tuple[list[Item], set[int] | None]:
    """The complete items, and every item number seen (None when there is no usable list)."""
    raw = log.field(top, "items", list, "")
    if raw is None:
        return [], None
    if not raw:
        log.add("", "'items' must list at least one item")
    items: list[Item] = []
    numbers: set[int] = set()
    expected: int | None = None
    for index, value in enumerate(raw, start=1):
        entry = log.mapping(value, f"items entry {index}")
        if entry is None:
            continue
        number = log.field(entry, "number", int, f"items entry {index}")
        if number is None:
            continue
        where = f"item {number}"
        log.unknown_keys(entry, {"number", "response_scale"}, where)
        if number in numbers:
            log.add(where, "is listed more than once")
            continue
        if number < 1:
            log.add(where, "item numbers start at 1")
        elif expected is not None and number != expected:
            log.add(where, f"expected item {expected} here (numbers must be consecutive, in order)")
        numbers.add(number)
        expected = number + 1
        scale_code = log.field(entry, "response_scale", str, where)
        if scale_code is None or response_scales is None:
            continue
        if scale_code not in response_scales:
            log.add(where, f"response scale '{scale_code}' is not defined in response_scales")
            continue
        items.append(Item(number, response_scales[scale_code]))
    return items, numbers


def _parse_item_list(entry: Raw, where: str, known: set[int] | None, log: ProblemLog) -> list[int]:
    raw = log.field(entry, "items", list, where)
    if raw is None:
        return []
    if not raw:
        log.add(where, "must list at least one item")
    numbers: list[int] = []
    for number in raw:
        if not has_type(number, int):
            log.add(where, f"{number!r} is not an item number")
        elif known is not None and number not in known:
            log.add(where, f"item {number} is not an item of this instrument")
        elif number in numbers:
            log.add(where, f"item {number} is listed twice")
        else:
            numbers.append(number)
    return numbers


def _entries(top: Raw, key: str, label: str, log: ProblemLog) -> list[tuple[str, Raw]] | None:
    """(where, entry) for each entry of a list of coded mappings, e.g. "scale PF2"."""
    raw = log.field(top, key, list, "")
    if raw is None:
        return None
    if not raw:
        log.add("", f"'{key}' must list at least one entry")
    entries = []
    for index, value in enumerate(raw, start=1):
        entry = log.mapping(value, f"{key} entry {index}")
        if entry is None:
            continue
        code = entry.get("code")
        entries.append((f"{label} {code}" if code else f"{key} entry {index}", entry))
    return entries


def _parse_sections(top: Raw, known: set[int] | None, log: ProblemLog) -> list[Section]:
    entries = _entries(top, "sections", "section", log)
    if entries is None:
        return []
    sections: list[Section] = []
    section_of: dict[int, str] = {}
    for where, entry in entries:
        log.unknown_keys(entry, {"code", "items"}, where)
        code = log.field(entry, "code", str, where)
        if code is not None and any(section.code == code for section in sections):
            log.add(where, "section code is used more than once")
        numbers = _parse_item_list(entry, where, known, log)
        for number in numbers:
            if number in section_of:
                log.add(where, f"item {number} is already in section {section_of[number]}")
            else:
                section_of[number] = str(code)
        if code is not None:
            sections.append(Section(code, tuple(numbers)))
    for number in sorted(known or ()):
        if number not in section_of:
            log.add(f"item {number}", "is in no section")
    return sections


def _parse_scales(
    top: Raw, items: list[Item], known: set[int] | None, log: ProblemLog
) -> tuple[list[Scale], dict[str, ScaleKind | None] | None]:
    """The valid scales, and the kind of every scale code seen (None: no usable list)."""
    entries = _entries(top, "scales", "scale", log)
    if entries is None:
        return [], None
    item_by_number = {item.number: item for item in items}
    scales: list[Scale] = []
    kinds: dict[str, ScaleKind | None] = {}
    for where, entry in entries:
        log.unknown_keys(entry, {"code", "kind", "items", "item_range"}, where)
        code = log.field(entry, "code", str, where)
        if code is not None and any(scale.code == code for scale in scales):
            log.add(where, "scale code is used more than once")
        kind_name = log.field(entry, "kind", str, where)
        kind = _scale_kind(kind_name, where, log)
        if code is not None:
            kinds[code] = kind
        numbers = _parse_item_list(entry, where, known, log)
        item_range = log.field(entry, "item_range", int, where)
        used = {item_by_number[n].response_scale for n in numbers if n in item_by_number}
        if len(used) > 1:
            codes = ", ".join(sorted(scale.code for scale in used))
            log.add(where, f"items must share one response scale, not {codes}")
        elif used and item_range is not None:
            (response_scale,) = used
            if item_range != response_scale.range:
                log.add(
                    where,
                    f"item_range is {item_range} but response scale {response_scale.code} "
                    f"has range {response_scale.range} (max - min)",
                )
        if code is not None and kind is not None and item_range is not None:
            scales.append(Scale(code, kind, tuple(numbers), item_range))
    return scales, kinds


def _scale_kind(name: str | None, where: str, log: ProblemLog) -> ScaleKind | None:
    if name is None:
        return None
    try:
        return ScaleKind(name)
    except ValueError:
        log.add(where, f"kind '{name}' must be one of {_KINDS}")
        return None


def _parse_summary(
    top: Raw, kinds: dict[str, ScaleKind | None] | None, log: ProblemLog
) -> SummaryScore | None:
    if top.get("summary") is None:
        return None
    entry = log.mapping(top["summary"], "summary")
    if entry is None:
        return None
    code = log.field(entry, "code", str, "summary")
    where = f"summary {code}" if code else "summary"
    log.unknown_keys(entry, {"code", "scales"}, where)
    if code is not None and kinds is not None and code in kinds:
        log.add(where, "code is already used by a scale")
    raw = log.field(entry, "scales", list, where)
    if raw is not None and not raw:
        log.add(where, "must list at least one scale")
    parts: list[str] = []
    for part in raw or ():
        if not isinstance(part, str):
            log.add(where, f"{part!r} is not a scale code")
        elif part in parts:
            log.add(where, f"scale {part} is listed twice")
        elif kinds is not None and part not in kinds:
            log.add(where, f"scale {part} is not a scale of this instrument")
        elif kinds is not None and kinds[part] is ScaleKind.GLOBAL:
            log.add(where, f"scale {part} is global and cannot be part of a summary")
        else:
            parts.append(part)
    return SummaryScore(code, tuple(parts)) if code is not None else None
