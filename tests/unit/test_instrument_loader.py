"""Loading and checking instrument files and text packs, shipped and deliberately broken."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pro_app.instruments.loader import (
    QuestionnaireError,
    QuestionnaireProblem,
    load_instrument,
    load_text_pack,
)
from pro_app.instruments.model import ScaleKind
from pro_app.instruments.registry import find_problems, load_registry

QUESTIONNAIRES = Path(__file__).resolve().parents[2] / "questionnaires"
C30_FILE = QUESTIONNAIRES / "qlq_c30.yaml"
C30_IT_FILE = QUESTIONNAIRES / "text" / "qlq_c30.it.yaml"

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def questionnaire_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped questionnaires."""
    return Path(shutil.copytree(QUESTIONNAIRES, tmp_path / "questionnaires"))


def edited(source: Path, target: Path, edit: Edit) -> Path:
    """Write source's YAML, changed by edit, to target."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    edit(data)
    target.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def instrument_problems(tmp_path: Path, edit: Edit) -> list[str]:
    path = edited(C30_FILE, tmp_path / "qlq_c30.yaml", edit)
    with pytest.raises(QuestionnaireError) as raised:
        load_instrument(path)
    return [str(problem) for problem in raised.value.problems]


def pack_problems(tmp_path: Path, edit: Edit, name: str = "qlq_c30.it.yaml") -> list[str]:
    path = edited(C30_IT_FILE, tmp_path / name, edit)
    with pytest.raises(QuestionnaireError) as raised:
        load_text_pack(path, load_instrument(C30_FILE))
    return [str(problem) for problem in raised.value.problems]


def scale(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(entry for entry in data["scales"] if entry["code"] == code)


# --- shipped files -------------------------------------------------------------------------


def test_shipped_files_have_no_problems() -> None:
    assert find_problems(QUESTIONNAIRES, None, locales=("it", "en")) == []


def test_shipped_registry() -> None:
    registry = load_registry(QUESTIONNAIRES)
    assert list(registry.instruments) == ["qlq_c30", "qlq_gi_net21"]
    assert registry.locales == ("it", "en")
    c30, gi = registry.get("qlq_c30"), registry.get("qlq_gi_net21")
    assert c30.item_numbers == tuple(range(1, 31))
    assert gi.item_numbers == tuple(range(31, 52))
    assert (c30.verified, gi.verified) == (True, False)
    assert c30.item(29).response_scale.max == 7
    assert c30.scale("SF").kind is ScaleKind.FUNCTIONAL
    assert gi.scale("SOC").kind is ScaleKind.FUNCTIONAL
    assert gi.summary is None
    for code in registry.instruments:
        for locale in registry.locales:
            pack = registry.text(code, locale)
            assert pack.is_demo
            assert pack.identity == "demo 2026.1"
            assert pack.notice
            assert list(pack.items) == list(registry.get(code).item_numbers)


def test_registry_lookups_fail_clearly() -> None:
    registry = load_registry(QUESTIONNAIRES)
    with pytest.raises(KeyError, match="unknown instrument 'qlq_x'"):
        registry.get("qlq_x")
    with pytest.raises(KeyError, match="locale 'de' is not supported"):
        registry.text("qlq_c30", "de")


def test_schedule_file_is_not_an_instrument(questionnaire_dir: Path) -> None:
    (questionnaire_dir / "schedule.yaml").write_text("time_points: [baseline]\n")
    assert find_problems(questionnaire_dir, None) == []


# --- broken instrument files ---------------------------------------------------------------


def test_missing_key(tmp_path: Path) -> None:
    assert instrument_problems(tmp_path, lambda d: d.pop("scales")) == [
        "qlq_c30.yaml: missing required key 'scales'"
    ]


def test_duplicate_item(tmp_path: Path) -> None:
    problems = instrument_problems(
        tmp_path, lambda d: d["items"].append({"number": 12, "response_scale": "four_point"})
    )
    assert problems == ["qlq_c30.yaml: item 12: is listed more than once"]


def test_scale_with_unknown_item(tmp_path: Path) -> None:
    assert instrument_problems(tmp_path, lambda d: scale(d, "PF2")["items"].append(31)) == [
        "qlq_c30.yaml: scale PF2: item 31 is not an item of this instrument"
    ]


def test_wrong_item_range(tmp_path: Path) -> None:
    assert instrument_problems(tmp_path, lambda d: scale(d, "QL2").update(item_range=3)) == [
        "qlq_c30.yaml: scale QL2: item_range is 3 but response scale seven_point has range 6 "
        "(max - min)"
    ]


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "qlq_c30.yaml"
    path.write_text("code: qlq_c30\nitems: [1, 2\n")
    with pytest.raises(QuestionnaireError) as raised:
        load_instrument(path)
    (problem,) = raised.value.problems
    assert problem.file == "qlq_c30.yaml"
    assert str(problem).startswith("qlq_c30.yaml: is not valid YAML: ")
    assert "line 3" in str(problem)
    assert "\n" not in str(problem)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "qlq_c30.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(QuestionnaireError, match=r"^qlq_c30\.yaml: is empty$"):
        load_instrument(path)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d.update(code="qlq_c31"),
            "qlq_c30.yaml: code 'qlq_c31' does not match the file name (expected 'qlq_c30')",
        ),
        (
            lambda d: d.update(verified="maybe"),
            "qlq_c30.yaml: 'verified' must be true or false, not a string ('maybe')",
        ),
        (
            lambda d: d.update(version=3.0),
            "qlq_c30.yaml: 'version' must be a string, not a number (3.0)",
        ),
        (lambda d: d.update(scoring="x"), "qlq_c30.yaml: unknown key 'scoring'"),
        (
            lambda d: d["items"][0].update(response_scale="five_point"),
            "qlq_c30.yaml: item 1: response scale 'five_point' is not defined in response_scales",
        ),
        (
            lambda d: d["sections"][0]["items"].append(6),
            "qlq_c30.yaml: section past_week: item 6 is already in section physical",
        ),
        (lambda d: d["sections"][0]["items"].remove(5), "qlq_c30.yaml: item 5: is in no section"),
        (
            lambda d: scale(d, "FA").update(kind="fatigue"),
            "qlq_c30.yaml: scale FA: kind 'fatigue' must be one of functional, symptom, global",
        ),
        (
            lambda d: scale(d, "PF2")["items"].append(29),
            "qlq_c30.yaml: scale PF2: items must share one response scale, not four_point, "
            "seven_point",
        ),
        (
            lambda d: scale(d, "FI").update(code="CO"),
            "qlq_c30.yaml: scale CO: scale code is used more than once",
        ),
        (
            lambda d: d["summary"]["scales"].append("QL2"),
            "qlq_c30.yaml: summary SUMSC: scale QL2 is global and cannot be part of a summary",
        ),
        (
            lambda d: d["summary"]["scales"].append("XX"),
            "qlq_c30.yaml: summary SUMSC: scale XX is not a scale of this instrument",
        ),
        (
            lambda d: d["response_scales"].update(five_point={"min": 1, "max": 5}),
            "qlq_c30.yaml: response scale five_point: is not used by any item",
        ),
    ],
)
def test_instrument_problem(tmp_path: Path, edit: Edit, expected: str) -> None:
    assert instrument_problems(tmp_path, edit) == [expected]


def test_gap_in_item_numbers(tmp_path: Path) -> None:
    # Item 6 is gone, so the section and the scale that list it are wrong too.
    assert instrument_problems(tmp_path, lambda d: d["items"].pop(5)) == [
        "qlq_c30.yaml: item 7: expected item 6 here (numbers must be consecutive, in order)",
        "qlq_c30.yaml: section past_week: item 6 is not an item of this instrument",
        "qlq_c30.yaml: scale RF2: item 6 is not an item of this instrument",
    ]


def test_all_problems_of_a_file_are_reported(tmp_path: Path) -> None:
    def break_twice(data: dict[str, Any]) -> None:
        data.pop("name")
        scale(data, "PF2")["item_range"] = 4

    assert len(instrument_problems(tmp_path, break_twice)) == 2


def test_problem_parts() -> None:
    problem = QuestionnaireProblem("qlq_c30.yaml", "scale PF2", "item 31 is not an item")
    assert str(problem) == "qlq_c30.yaml: scale PF2: item 31 is not an item"
    assert str(QuestionnaireProblem("x.yaml", "", "is empty")) == "x.yaml: is empty"


# --- broken text packs ---------------------------------------------------------------------


def test_text_pack_missing_an_item(tmp_path: Path) -> None:
    assert pack_problems(tmp_path, lambda d: d["items"].pop(12)) == [
        "qlq_c30.it.yaml: item 12: has no text"
    ]


def test_option_label_out_of_range(tmp_path: Path) -> None:
    assert pack_problems(tmp_path, lambda d: d["options"]["four_point"].update({5: "Troppo"})) == [
        "qlq_c30.it.yaml: options four_point: option 5 is outside the scale (1-4)"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["items"].update({31: "x"}), "item 31: is not part of this instrument"),
        (
            lambda d: d["items"].update({"3": "x"}),
            "item '3' (write numbers without quotes): is not part of this instrument",
        ),
        (lambda d: d["sections"].pop("global"), "section global: has no text"),
        (lambda d: d["scales"].pop("SUMSC"), "scale SUMSC: has no text"),
        (lambda d: d["items"].update({3: ""}), "item 3: text must be a non-empty string"),
        (
            lambda d: d["options"]["seven_point"].pop(7),
            "options seven_point: option 7 needs a label (both ends of the scale are labelled)",
        ),
        (lambda d: d["options"].pop("four_point"), "options four_point: has no labels"),
        (lambda d: d.pop("notice"), "missing required key 'notice'"),
        (
            lambda d: d.update(locale="en"),
            "locale 'en' does not match the file name (expected 'it')",
        ),
        (
            lambda d: d.update(instrument="qlq_gi_net21"),
            "instrument 'qlq_gi_net21' does not match 'qlq_c30'",
        ),
    ],
)
def test_text_pack_problem(tmp_path: Path, edit: Edit, expected: str) -> None:
    assert pack_problems(tmp_path, edit) == [f"qlq_c30.it.yaml: {expected}"]


def test_licensed_pack_needs_no_notice(tmp_path: Path) -> None:
    def licensed(data: dict[str, Any]) -> None:
        data.update(pack="licensed-study", version="4", is_demo=False)
        data.pop("notice")

    path = edited(C30_IT_FILE, tmp_path / "qlq_c30.it.yaml", licensed)
    pack = load_text_pack(path, load_instrument(C30_FILE))
    assert (pack.is_demo, pack.notice, pack.identity) == (False, None, "licensed-study 4")


# --- registry: all files, licensed packs ---------------------------------------------------


def test_problems_of_all_files_are_collected(questionnaire_dir: Path) -> None:
    edited(
        questionnaire_dir / "qlq_gi_net21.yaml",
        questionnaire_dir / "qlq_gi_net21.yaml",
        lambda d: d.pop("source"),
    )
    (questionnaire_dir / "text" / "qlq_c30.en.yaml").unlink()
    edited(
        questionnaire_dir / "text" / "qlq_c30.it.yaml",
        questionnaire_dir / "text" / "qlq_c30.it.yaml",
        lambda d: d["items"].pop(1),
    )
    assert [str(p) for p in find_problems(questionnaire_dir, None)] == [
        "text/qlq_c30.it.yaml: item 1: has no text",
        "text/qlq_c30.en.yaml: missing: qlq_c30 needs a text pack for locale 'en'",
        "qlq_gi_net21.yaml: missing required key 'source'",
    ]
    with pytest.raises(QuestionnaireError) as raised:
        load_registry(questionnaire_dir)
    assert len(raised.value.problems) == 3


def test_every_locale_needs_a_pack() -> None:
    problems = [str(p) for p in find_problems(QUESTIONNAIRES, None, locales=("it", "de"))]
    assert problems == [
        "text/qlq_c30.de.yaml: missing: qlq_c30 needs a text pack for locale 'de'",
        "text/qlq_gi_net21.de.yaml: missing: qlq_gi_net21 needs a text pack for locale 'de'",
    ]


def test_licensed_pack_overrides_demo_pack(tmp_path: Path) -> None:
    licensed_dir = tmp_path / "licensed"
    licensed_dir.mkdir()

    def licensed(data: dict[str, Any]) -> None:
        data.update(pack="eortc-licensed", version="2025-06", is_demo=False, notice=None)
        data["items"][1] = "Licensed wording placeholder"

    edited(C30_IT_FILE, licensed_dir / "qlq_c30.it.yaml", licensed)
    registry = load_registry(QUESTIONNAIRES, licensed_dir)
    pack = registry.text("qlq_c30", "it")
    assert (pack.identity, pack.is_demo) == ("eortc-licensed 2025-06", False)
    assert pack.items[1] == "Licensed wording placeholder"
    # Other instruments and locales keep their demo packs.
    assert registry.text("qlq_c30", "en").is_demo
    assert registry.text("qlq_gi_net21", "it").is_demo


def test_broken_licensed_pack_is_named_by_its_path(tmp_path: Path) -> None:
    licensed_dir = tmp_path / "licensed"
    licensed_dir.mkdir()
    path = edited(C30_IT_FILE, licensed_dir / "qlq_c30.it.yaml", lambda d: d["items"].pop(30))
    assert [str(p) for p in find_problems(QUESTIONNAIRES, licensed_dir)] == [
        f"{path}: item 30: has no text"
    ]


def test_misnamed_or_missing_licensed_packs_are_reported(tmp_path: Path) -> None:
    licensed_dir = tmp_path / "licensed"
    licensed_dir.mkdir()
    (licensed_dir / "QLQ-C30.it.yaml").write_text("{}\n")
    problems = [str(p) for p in find_problems(QUESTIONNAIRES, licensed_dir)]
    assert problems == [
        f"{licensed_dir / 'QLQ-C30.it.yaml'}: is not named <instrument>.<locale>.yaml for a "
        "known instrument"
    ]
    missing = tmp_path / "nowhere"
    assert [str(p) for p in find_problems(QUESTIONNAIRES, missing)] == [
        f"{missing}: text pack directory not found"
    ]
