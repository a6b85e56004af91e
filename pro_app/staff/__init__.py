"""The staff workspace: worklist, enrolment, patient pages, administration."""

from flask import Blueprint, Flask

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")


def init_app(app: Flask) -> None:
    # Importing the view modules attaches their routes to the blueprint.
    from pro_app.staff import (  # noqa: F401
        admin,
        audit_view,
        enrolment,
        home,
        link_pages,
        metrics,
        navigation,
        paper_entry,
        patient_actions,
        patient_page,
        tablet,
        worklist,
    )

    app.register_blueprint(bp)
