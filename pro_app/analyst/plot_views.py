"""Each analyst plot as an SVG file of its own (shown in a browser, or downloaded)."""

from __future__ import annotations

from flask import Response, abort, render_template, request
from flask.typing import ResponseReturnValue

from pro_app.analyst import ANALYST_ROLES, bp
from pro_app.analyst.figures import completion_figure, scale_figure
from pro_app.analyst.forms import local_now
from pro_app.analyst.plot_data import plot_axes, scale_summary
from pro_app.analyst.plots import svg_document
from pro_app.exports.outcomes import compliance_rows
from pro_app.exports.requests import ExportRequestError, parse_filters
from pro_app.services.definitions import instrument_registry
from pro_app.staff.access import staff, staff_required

SVG_TYPE = "image/svg+xml; charset=utf-8"


def _svg_response(document: str, name: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if request.args.get("download"):
        stamp = local_now().strftime("%Y%m%d-%H%M")
        headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.svg"'
    return Response(document, content_type=SVG_TYPE, headers=headers)


def _bad_filters(error: ExportRequestError) -> ResponseReturnValue:
    return render_template("analyst/bad_request.html", message=error.message), 400


@bp.get("/plots/<instrument>/<scale>.svg")
@staff_required(*ANALYST_ROLES)
def scale_plot(instrument: str, scale: str) -> ResponseReturnValue:
    """Mean with 95% CI by arm over time for one scale, with the page's filters."""
    if instrument not in instrument_registry().instruments:
        abort(404)
    user = staff()
    try:
        filters = parse_filters(request.args, user)
    except ExportRequestError as error:
        return _bad_filters(error)
    summary = scale_summary(user, filters, instrument, scale)
    if summary is None:
        abort(404)
    figure = scale_figure(summary, plot_axes(filters))
    return _svg_response(svg_document(figure.svg), f"{instrument}-{scale}")


@bp.get("/plots/completion.svg")
@staff_required(*ANALYST_ROLES)
def completion_plot() -> ResponseReturnValue:
    """Completion by time point and arm, with the page's filters."""
    user = staff()
    try:
        filters = parse_filters(request.args, user)
    except ExportRequestError as error:
        return _bad_filters(error)
    rows = compliance_rows(user, filters, local_now().date())
    figure = completion_figure(rows, plot_axes(filters))
    return _svg_response(svg_document(figure.svg), "completion")
