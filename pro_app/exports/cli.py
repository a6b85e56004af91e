"""`pro-app export KIND --out PATH --format F`: the same exports as the analyst pages."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale

from pro_app.exports.registry import KINDS, build_dataset
from pro_app.exports.source import ExportFilter
from pro_app.exports.variables import Dataset
from pro_app.exports.writers import FORMATS, write_export

ISO_DATE = click.DateTime(["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.command("export")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write ('-' for standard output).",
)
@click.option("--format", "fmt", default="csv", show_default=True, type=click.Choice(list(FORMATS)))
@click.option("--site", help="Only this site (code).")
@click.option("--arm", help="Only this arm (code).")
@click.option("--timepoint", help="Only this time point (code).")
@click.option("--instrument", help="Only this questionnaire (code).")
@click.option("--randomized-from", type=ISO_DATE, help="Randomized on or after (YYYY-MM-DD).")
@click.option("--randomized-to", type=ISO_DATE, help="Randomized on or before (YYYY-MM-DD).")
@click.option("--as-of", type=ISO_DATE, help="Compliance counted on this date; default today.")
@click.option(
    "--language",
    default="it",
    show_default=True,
    type=click.Choice(["it", "en"]),
    help="Language of variable and value labels (SPSS, Stata, Excel).",
)
@with_appcontext
def export_command(
    kind: str,
    out_path: Path,
    fmt: str,
    site: str | None,
    arm: str | None,
    timepoint: str | None,
    instrument: str | None,
    randomized_from: datetime | None,
    randomized_to: datetime | None,
    as_of: datetime | None,
    language: str,
) -> None:
    """Write one export (pseudonymised: study codes only) for every site."""
    filters = ExportFilter(
        site, arm, timepoint, instrument, _day(randomized_from), _day(randomized_to)
    )
    today = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()
    dataset = build_dataset(kind, None, filters, _day(as_of) or today)
    with force_locale(language):
        _write(dataset, fmt, out_path)
    if str(out_path) != "-":
        click.echo(f"Wrote {kind} ({fmt}) to {out_path}", err=True)


def _write(dataset: Dataset, fmt: str, out_path: Path) -> None:
    if str(out_path) == "-":
        write_export(dataset, fmt, sys.stdout.buffer)
        return
    partial = out_path.with_name(out_path.name + ".part")
    try:  # a failure never leaves a half-written file under the real name
        with partial.open("wb") as handle:
            write_export(dataset, fmt, handle)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out_path)
