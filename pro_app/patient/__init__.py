"""The patient's pages: personal link, questionnaire pages, review, thank-you."""

from flask import Flask

from pro_app.patient.views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
