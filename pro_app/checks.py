"""`pro-app check`: everything that would make the app wrong or unsafe to run, in one list."""

from __future__ import annotations

from flask import Flask

from pro_app.catalogues import catalogue_problems
from pro_app.config import configuration_problems, load_config
from pro_app.instruments.problems import QuestionnaireError
from pro_app.protocol.schedule import ScheduleError
from pro_app.services.definitions import definition_problems


def configured_app() -> Flask:
    """An app with the configuration loaded but not yet judged, so that check can report it."""
    app = Flask("pro_app", instance_relative_config=True)
    load_config(app, None)
    return app


def all_problems(app: Flask) -> list[str]:
    """Problems of configuration, definition files and translations, one readable line each."""
    problems = [f"configuration: {problem}" for problem in configuration_problems(app.config)]
    try:
        problems += definition_problems(app)
    except (QuestionnaireError, ScheduleError) as error:  # pragma: no cover - defensive
        problems.append(str(error))
    problems += [f"translations: {problem}" for problem in catalogue_problems()]
    return problems
