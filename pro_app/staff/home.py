"""The staff landing page."""

from __future__ import annotations

from flask import redirect, url_for
from flask.typing import ResponseReturnValue

from pro_app.staff import bp
from pro_app.staff.access import staff, staff_required


@bp.get("/")
@staff_required()
def home() -> ResponseReturnValue:
    """Each role starts where its daily work is."""
    user = staff()
    if user.has_role("admin"):
        return redirect(url_for("staff.admin_accounts"))
    if user.has_role("analyst"):
        return redirect(url_for("analyst.index"))
    return redirect(url_for("staff.worklist"))
