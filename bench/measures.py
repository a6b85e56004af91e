"""What the benchmarks measure with: SQL statements, memory, growth verdicts, Markdown tables."""

from __future__ import annotations

import math
import re
import resource
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

# --------------------------------------------------------------------------- measuring

_SHAPE = re.compile(r"^\s*(SELECT|UPDATE|INSERT INTO|DELETE FROM|WITH)\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|UPDATE|INTO)\s+\"?(\w+)", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\s+\(?\"?([\w.]+)\"?\s*(=|IN\b|<=|>=|<|>)", re.IGNORECASE)
APP_ROOT = str(Path(__file__).resolve().parents[1] / "pro_app")


def statement_shape(sql: str) -> str:
    """`SELECT patient_link WHERE patient_link.patient_id =`: verb, table, first condition."""
    verb = _SHAPE.match(sql)
    table = _TABLE.search(sql)
    where = _WHERE.search(sql)
    parts = [verb.group(1).upper() if verb else sql.split(None, 1)[0].upper()]
    parts.append(table.group(1) if table else "?")
    if where:
        parts.append(f"WHERE {where.group(1)} {where.group(2).upper()}")
    return " ".join(parts)


def statement_origin() -> str:
    """The innermost frame in pro_app/ that led to the statement: file:line (function)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(APP_ROOT):
            return f"{filename[len(APP_ROOT) - 7 :]}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


@dataclass
class StatementCount:
    """SQL statements and commits seen on an engine; with origins, where each came from."""

    statements: int = 0
    commits: int = 0
    shapes: Counter[tuple[str, str]] = field(default_factory=Counter)


@contextmanager
def count_statements(engine: Engine, origins: bool = False) -> Iterator[StatementCount]:
    """Count what the engine executes inside the block (a before_cursor_execute listener)."""
    count = StatementCount()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        count.statements += 1
        if origins:
            count.shapes[(statement_origin(), statement_shape(statement))] += 1

    def on_commit(_conn: Any) -> None:
        count.commits += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def _proc_status_mb(field_name: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (imports included), in MB."""
    # Linux keeps ru_maxrss across fork and exec: a child started by a parent that built a big
    # database would report the parent's peak. VmHWM belongs to this program's memory only.
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident memory now, in MB (0 where /proc is not available)."""
    return _proc_status_mb("VmRSS") or 0.0


# --------------------------------------------------------------------------- verdicts


def short(n: int) -> str:
    """10000 → "10k"."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """k in value ∝ size^k between the smallest and the largest size (0 = flat, 1 = linear)."""
    if len(sizes) < 2 or sizes[0] == sizes[-1] or min(values[0], values[-1]) <= 0:
        return 0.0
    return math.log(values[-1] / values[0]) / math.log(sizes[-1] / sizes[0])


def growth_word(exponent: float) -> str:
    """How a figure grows; a shared machine's noise is allowed for (up to size^1.2 is linear)."""
    if exponent <= 0.25:
        return "flat"
    if exponent <= 0.8:
        return "sub-linear"
    if exponent <= 1.2:
        return "linear"
    return "SUPER-LINEAR"


def at_most_linear(exponent: float) -> bool:
    return exponent <= 1.2


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; columns whose header starts with a space are right-aligned."""
    line = "| " + " | ".join(h.strip() for h in headers) + " |"
    rule = "|" + "|".join("---:" if h.startswith(" ") else "---" for h in headers) + "|"
    body = ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join([line, rule, *body])
