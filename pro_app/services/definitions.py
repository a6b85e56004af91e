"""The trial's definitions (questionnaires, text packs, schedule, checklist), loaded at start-up."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from pro_app.instruments.registry import InstrumentRegistry, find_problems, load_registry
from pro_app.protocol.eligibility import Checklist, find_checklist_problems, load_checklist
from pro_app.protocol.schedule import Schedule, find_schedule_problems, load_schedule

EXTENSION_KEY = "pro_app.definitions"
SCHEDULE_FILE = "schedule.yaml"
ELIGIBILITY_FILE = "eligibility.yaml"


class Definitions:
    """What the app serves: instruments with their text packs, the schedule, the checklist."""

    def __init__(
        self, instruments: InstrumentRegistry, schedule: Schedule, eligibility: Checklist
    ) -> None:
        self.instruments = instruments
        self.schedule = schedule
        self.eligibility = eligibility


def init_app(app: Flask) -> None:
    """Load and validate every definition file; a broken file stops start-up with its problems."""
    questionnaire_dir, text_pack_dir = _definition_dirs(app)
    instruments = load_registry(
        questionnaire_dir, text_pack_dir, locales=tuple(app.config["SUPPORTED_LOCALES"])
    )
    schedule = load_schedule(
        questionnaire_dir / SCHEDULE_FILE, known_instruments=set(instruments.instruments)
    )
    eligibility = load_checklist(questionnaire_dir / ELIGIBILITY_FILE)
    app.extensions[EXTENSION_KEY] = Definitions(instruments, schedule, eligibility)


def definition_problems(app: Flask) -> list[str]:
    """Every problem of the definition files, one readable line each (for `pro-app check`)."""
    questionnaire_dir, text_pack_dir = _definition_dirs(app)
    problems = [
        str(problem)
        for problem in find_problems(
            questionnaire_dir, text_pack_dir, locales=tuple(app.config["SUPPORTED_LOCALES"])
        )
    ]
    known = None
    if not problems:
        known = set(load_registry(questionnaire_dir, text_pack_dir).instruments)
    problems += [
        str(problem) for problem in find_schedule_problems(questionnaire_dir / SCHEDULE_FILE, known)
    ]
    problems += [
        str(problem) for problem in find_checklist_problems(questionnaire_dir / ELIGIBILITY_FILE)
    ]
    return problems


def _definition_dirs(app: Flask) -> tuple[Path, Path | None]:
    pack_dir = app.config.get("TEXT_PACK_DIR")
    return Path(app.config["QUESTIONNAIRE_DIR"]), Path(pack_dir) if pack_dir else None


def definitions() -> Definitions:
    """The current app's definitions."""
    loaded: Definitions = current_app.extensions[EXTENSION_KEY]
    return loaded


def instrument_registry() -> InstrumentRegistry:
    """The current app's instruments and text packs."""
    return definitions().instruments


def trial_schedule() -> Schedule:
    """The current app's schedule of time points and reminders."""
    return definitions().schedule


def eligibility_checklist() -> Checklist:
    """The current app's eligibility checklist, confirmed at enrolment."""
    return definitions().eligibility
