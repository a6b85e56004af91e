"""The shipped eligibility checklist matches PROTOCOL.md; broken ones are reported precisely."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pro_app.protocol.eligibility import (
    EligibilityError,
    find_checklist_problems,
    load_checklist,
)

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires" / "eligibility.yaml"


def shipped_data() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def problems_after(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> list[str]:
    """Problems of the shipped checklist after `change` edits a copy of it."""
    data = copy.deepcopy(shipped_data())
    change(data)
    path = tmp_path / "eligibility.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return [str(problem) for problem in find_checklist_problems(path)]


def test_shipped_checklist_loads() -> None:
    assert find_checklist_problems(SHIPPED) == []
    checklist = load_checklist(SHIPPED)
    inclusion = checklist.of_kind("inclusion")
    exclusion = checklist.of_kind("exclusion")
    assert len(inclusion) == 10
    assert len(exclusion) == 5
    assert [c.number for c in inclusion] == list(range(1, 11))
    assert [c.number for c in exclusion] == list(range(1, 6))
    assert "Ki67" in inclusion[7].text("it")
    assert inclusion[7].text("en") == "Ki67 of no more than 20%."
    assert exclusion[1].text("en_GB") == "Poorly differentiated histology."
    assert exclusion[1].text("de") == exclusion[1].text("it")  # Italian when a locale is missing


def test_eligible_answers_are_yes_to_inclusions_and_no_to_exclusions() -> None:
    checklist = load_checklist(SHIPPED)
    answers = {c.code: c.kind == "inclusion" for c in checklist.criteria}
    assert checklist.failed(answers) == []
    assert checklist.unanswered(answers) == []

    answers["ki67_max_20"] = False
    answers["only_extrahepatic_lesions"] = True
    del answers["age_18_to_79"]
    assert [c.code for c in checklist.failed(answers)] == [
        "ki67_max_20",
        "only_extrahepatic_lesions",
    ]
    assert [c.code for c in checklist.unanswered(answers)] == ["age_18_to_79"]


def first(data: dict[str, Any]) -> dict[str, Any]:
    criterion: dict[str, Any] = data["criteria"][0]
    return criterion


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d.pop("criteria"),
            ["eligibility.yaml: missing required key 'criteria'"],
        ),
        (
            lambda d: d.update(criteria=[]),
            ["eligibility.yaml: criteria: must be a non-empty list, not a list"],
        ),
        (
            lambda d: d.update(version=0),
            ["eligibility.yaml: version: version must be at least 1, not 0"],
        ),
        (
            lambda d: d.update(criterion=[]),
            ["eligibility.yaml: unknown key 'criterion'"],
        ),
        (
            lambda d: first(d).update(kind="inclusive"),
            [
                "eligibility.yaml: criterion net_primary_origin: kind must be inclusion or "
                "exclusion, not 'inclusive'"
            ],
        ),
        (
            lambda d: first(d).pop("en"),
            ["eligibility.yaml: criterion net_primary_origin: missing required key 'en'"],
        ),
        (
            lambda d: first(d).update(it="  "),
            ["eligibility.yaml: criterion net_primary_origin: it text is empty"],
        ),
        (
            lambda d: first(d).update(en=["a", "list"]),
            ["eligibility.yaml: criterion net_primary_origin: en text must be text, not a list"],
        ),
        (
            lambda d: first(d).update(code="Net-Origin"),
            [
                "eligibility.yaml: criterion Net-Origin: code must be lowercase letters, digits "
                "and _, not 'Net-Origin'"
            ],
        ),
        (
            lambda d: first(d).pop("code"),
            ["eligibility.yaml: criteria[1]: missing required key 'code'"],
        ),
        (
            lambda d: d["criteria"][1].update(code="net_primary_origin"),
            ["eligibility.yaml: criterion net_primary_origin: duplicate code 'net_primary_origin'"],
        ),
        (
            lambda d: first(d).update(text="typo"),
            ["eligibility.yaml: criterion net_primary_origin: unknown key 'text'"],
        ),
        (
            lambda d: d["criteria"].append("age over 18"),
            ["eligibility.yaml: criteria[16]: must be a mapping, not text"],
        ),
    ],
)
def test_broken_checklist_names_file_criterion_and_problem(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], expected: list[str]
) -> None:
    assert problems_after(tmp_path, change) == expected


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    data = shipped_data()
    first(data).update(kind="maybe")
    data["criteria"][2].pop("it")
    path = tmp_path / "eligibility.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(EligibilityError) as raised:
        load_checklist(path)
    assert len(raised.value.problems) == 2
    assert str(raised.value).splitlines()[1] == (
        "eligibility.yaml: criterion liver_involvement_max_50: missing required key 'it'"
    )


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    missing = find_checklist_problems(tmp_path / "eligibility.yaml")
    assert str(missing[0]).startswith("eligibility.yaml: cannot be read")
    broken = tmp_path / "eligibility.yaml"
    broken.write_text("criteria: [\n", encoding="utf-8")
    assert str(find_checklist_problems(broken)[0]).startswith("eligibility.yaml: line ")
    broken.write_text("", encoding="utf-8")
    assert [str(p) for p in find_checklist_problems(broken)] == ["eligibility.yaml: is empty"]
