"""Export downloads from the analyst page: any kind in any format, with the page's filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from pro_app.analyst import ANALYST_ROLES, bp
from pro_app.analyst.forms import local_now
from pro_app.exports.registry import KINDS, build_dataset
from pro_app.exports.requests import (
    ExportRequestError,
    parse_as_of,
    parse_filters,
    parse_format,
    parse_kind,
    record_export,
)
from pro_app.exports.writers import FORMATS, csv_chunks, filename, spooled
from pro_app.extensions import db
from pro_app.staff.access import staff, staff_required

# Format names are the programs' own names, the same in every language.
FORMAT_NAMES = {"csv": "CSV", "xlsx": "Excel", "sav": "SPSS", "dta": "Stata"}


@dataclass(frozen=True)
class DownloadLink:
    fmt: str
    name: str
    url: str


@dataclass(frozen=True)
class DownloadRow:
    kind: str
    label: str
    links: list[DownloadLink]


def download_table(args: dict[str, Any]) -> list[DownloadRow]:
    """One row per export kind, one link per format, each carrying the filters."""
    return [
        DownloadRow(
            kind,
            str(label),
            [
                DownloadLink(
                    fmt,
                    FORMAT_NAMES.get(fmt, fmt),
                    url_for("analyst.export", kind=kind, fmt=fmt, **args),
                )
                for fmt in FORMATS
            ],
        )
        for kind, label in KINDS.items()
    ]


@bp.get("/export/<kind>.<fmt>")
@staff_required(*ANALYST_ROLES)
def export(kind: str, fmt: str) -> ResponseReturnValue:
    """The file, streamed; the download is in the audit trail before the first byte leaves."""
    user = staff()
    now = local_now()
    try:
        parse_kind(kind)
        parse_format(fmt)
        filters = parse_filters(request.args, user)
        as_of = parse_as_of(request.args, now.date())
    except ExportRequestError as error:
        return render_template("analyst/bad_request.html", message=error.message), 400
    dataset = build_dataset(kind, user, filters, as_of)
    record_export(user, kind, fmt, filters, "page")
    db.session.commit()
    # The file is written after the view's session has closed: load what the export reads of
    # the user now, or the expired object could not be read there.
    db.session.refresh(user)
    chunks = csv_chunks(dataset) if fmt == "csv" else spooled(dataset, fmt)
    name = filename(kind, fmt, now.strftime("%Y%m%d-%H%M"))
    return Response(
        stream_with_context(chunks),
        content_type=FORMATS[fmt][0],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
