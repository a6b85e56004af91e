"""Writing a dataset as CSV, Excel, SPSS or Stata.

CSV and Excel stream row by row (constant memory). SPSS and Stata files are written by
pyreadstat from a column table, so those two hold one export in memory while writing.
Text cells that a spreadsheet would run as a formula are neutralised in CSV and Excel.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from pro_app.exports.variables import Dataset, Variable, VarType
from pro_app.services.audit_trail import neutralised

FORMATS = {
    "csv": ("text/csv; charset=utf-8; header=present", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "sav": ("application/x-spss-sav", "sav"),
    "dta": ("application/x-stata-dta", "dta"),
}
CSV_DELIMITER = ","
STATA_STRING_MAX = 2045  # longest string a Stata 15 .dta column holds
LABEL_MAX = 80  # bytes of a Stata variable label (SPSS allows more; one rule keeps them equal)
SPSS_NOTE_WIDTH = 70  # an SPSS document line is 80 bytes; accented letters take two
BATCH = 1000


def csv_cell(value: Any) -> str:
    """How a value reads in CSV: ISO dates, full-precision numbers, empty for missing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    return neutralised(value)


def csv_chunks(dataset: Dataset) -> Iterator[bytes]:
    """The CSV file a batch of rows at a time: UTF-8, comma-delimited, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow(dataset.names)
    pending = 0
    for row in dataset.rows:
        writer.writerow([csv_cell(value) for value in row])
        pending += 1
        if pending >= BATCH:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode("utf-8")


def write_export(dataset: Dataset, fmt: str, out: IO[bytes]) -> None:
    """Write the dataset in a format (csv, xlsx, sav, dta) to a binary file object."""
    if fmt == "csv":
        for chunk in csv_chunks(dataset):
            out.write(chunk)
    elif fmt == "xlsx":
        _write_xlsx(dataset, out)
    elif fmt in ("sav", "dta"):
        _write_stats_file(dataset, fmt, out)
    else:
        raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")


def spooled(dataset: Dataset, fmt: str) -> Iterator[bytes]:
    """The written file in blocks, for a streamed download of a format that needs a file."""
    with tempfile.TemporaryFile() as handle:
        write_export(dataset, fmt, handle)
        handle.seek(0)
        while block := handle.read(64 * 1024):
            yield block


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # Excel has no time zones: the column says UTC
    if isinstance(value, str):
        return neutralised(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _write_xlsx(dataset: Dataset, out: IO[bytes]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append(list(dataset.names))
    # Plain values: openpyxl gives dates a date format, and no text can start a formula because
    # _xlsx_cell neutralises every text that would (a per-cell object would be 10x slower).
    for row in dataset.rows:
        sheet.append([_xlsx_cell(value) for value in row])
    labels = workbook.create_sheet("variables")
    labels.append(["variable", "label", "type"])
    for variable in dataset.variables:
        labels.append([variable.name, neutralised(str(variable.label)), str(variable.type)])
    if dataset.note:
        labels.append([])
        labels.append(["note", neutralised(str(dataset.note))])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.xlsx"
        workbook.save(path)
        with path.open("rb") as written:
            shutil.copyfileobj(written, out)


def _column(variable: Variable, values: list[Any], fmt: str) -> Any:
    import pandas as pd

    if variable.type in (VarType.INTEGER, VarType.NUMBER):
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if variable.type == VarType.DATE:
        return pd.Series(pd.to_datetime(pd.Series(values, dtype="object")), dtype="datetime64[ns]")
    if variable.type == VarType.DATETIME:
        naive = [None if v is None else v.replace(tzinfo=None) for v in values]
        return pd.Series(pd.to_datetime(pd.Series(naive, dtype="object")), dtype="datetime64[ns]")
    limit = STATA_STRING_MAX if fmt == "dta" else None
    texts = ["" if v is None else str(v) for v in values]
    if limit:
        texts = [_fit(text, limit) for text in texts]
    return pd.Series(texts, dtype="object")


def _fit(text: str, limit: int) -> str:
    """The text cut to at most limit UTF-8 bytes, marked with "..." where it was cut."""
    if len(text.encode()) <= limit:
        return text
    return text.encode()[: limit - 3].decode(errors="ignore") + "..."


def _write_stats_file(dataset: Dataset, fmt: str, out: IO[bytes]) -> None:
    import pandas as pd
    import pyreadstat

    columns: list[list[Any]] = [[] for _ in dataset.variables]
    for row in dataset.rows:  # column lists, not a list of rows: half the memory
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    frame = pd.DataFrame(
        {
            variable.name: _column(variable, values, fmt)
            for variable, values in zip(dataset.variables, columns, strict=True)
        }
    )
    del columns
    labels: dict[str, str | None] = {
        variable.name: _fit(str(variable.label), LABEL_MAX) for variable in dataset.variables
    }
    value_labels = {
        variable.name: {float(code): str(label) for code, label in variable.values.items()}
        for variable in dataset.variables
        if variable.type == VarType.INTEGER
        and variable.values
        and all(isinstance(code, int) for code in variable.values)
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"export.{fmt}"
        if fmt == "sav":
            pyreadstat.write_sav(
                frame,
                path,
                file_label=dataset.kind,
                column_labels=labels,
                variable_value_labels=value_labels,
                note=textwrap.wrap(str(dataset.note), SPSS_NOTE_WIDTH) if dataset.note else None,
            )
        else:
            pyreadstat.write_dta(
                frame,
                path,
                file_label=dataset.kind,
                column_labels=labels,
                variable_value_labels=value_labels,
            )
        with path.open("rb") as written:
            shutil.copyfileobj(written, out)


def filename(kind: str, fmt: str, stamp: str) -> str:
    """e.g. scores-20261124-1030.sav"""
    return f"{kind}-{stamp}.{FORMATS[fmt][1]}"
