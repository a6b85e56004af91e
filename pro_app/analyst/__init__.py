"""The analyst pages: filters, downloads, the live compliance table and plots."""

from flask import Blueprint, Flask

bp = Blueprint("analyst", __name__, url_prefix="/analyst", template_folder="templates")

# Who may use the analyst pages; investigators and site-bound users see their own site only.
ANALYST_ROLES = ("analyst", "investigator", "admin")


def init_app(app: Flask) -> None:
    # Importing the view modules attaches their routes to the blueprint.
    from pro_app.analyst import downloads, plot_views, tokens, views  # noqa: F401

    app.register_blueprint(bp)
