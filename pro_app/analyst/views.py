"""The analyst page: filters, download buttons, the live compliance table and the plots."""

from __future__ import annotations

from flask import render_template, url_for
from flask.typing import ResponseReturnValue

from pro_app.analysis.compliance import ComplianceRow
from pro_app.analyst import ANALYST_ROLES, bp
from pro_app.analyst.downloads import download_table
from pro_app.analyst.figures import arm_label, completion_figure, rate_text, scale_figure
from pro_app.analyst.figures import timepoint_label as tp_label
from pro_app.analyst.forms import filter_args, local_now, read_filters
from pro_app.analyst.plot_data import plot_axes, plotted_instruments, scale_summaries
from pro_app.exports.outcomes import compliance_rows
from pro_app.staff.access import staff, staff_required


@bp.get("/")
@staff_required(*ANALYST_ROLES)
def index() -> ResponseReturnValue:
    """Everything on one page, for the filters in the query string."""
    user = staff()
    form, filters = read_filters(user)
    if filters is None:
        return render_template("analyst/index.html", form=form, ready=False), 400
    as_of = local_now().date()
    axes = plot_axes(filters)
    compliance = compliance_rows(user, filters, as_of)
    summaries = scale_summaries(user, filters)
    args = filter_args()
    # A scale plot names its questionnaire in the path; the filter would only repeat it.
    plot_args = {name: value for name, value in args.items() if name != "instrument"}
    instruments = [
        (
            instrument,
            [
                (
                    scale_figure(s, axes),
                    url_for(
                        "analyst.scale_plot",
                        instrument=instrument.code,
                        scale=s.scale,
                        download=1,
                        **plot_args,
                    ),
                )
                for s in summaries
                if s.instrument is instrument
            ],
        )
        for instrument in plotted_instruments(filters)
    ]
    return render_template(
        "analyst/index.html",
        form=form,
        ready=True,
        as_of=as_of,
        downloads=download_table(args),
        compliance=_compliance_groups(compliance),
        completion=completion_figure(compliance, axes),
        completion_url=url_for("analyst.completion_plot", download=1, **args),
        instruments=instruments,
    )


def _compliance_groups(rows: list[ComplianceRow]) -> list[tuple[str, list[dict[str, object]]]]:
    """The table's rows grouped by time point, in schedule order (each arm, then all arms)."""
    groups: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault(row.timepoint, []).append(_compliance_cells(row))
    return [(tp_label(code), cells) for code, cells in groups.items()]


def _compliance_cells(row: ComplianceRow) -> dict[str, object]:
    return {
        "arm": arm_label(row.arm),
        "is_total": row.arm is None,
        "counts": row.counts,
        "rate": rate_text(row.rate),
    }
