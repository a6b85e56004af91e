"""`make bench`: every benchmark at its default size, one after the other, in one run.

Prints the date, the machine (CPUs, memory, Python, SQLite and PostgreSQL versions, load
average before and after) and each benchmark's own output with its wall time, ready to paste
into docs/performance.md. PostgreSQL figures are included when PRO_BENCH_POSTGRES_URI names a
scratch database (its `public` schema is dropped and created again by each benchmark).

    .venv/bin/python bench/run_all.py [--only NAME ...]

bench/token_guessing.py is not run here: it attacks a server you start yourself (its docstring
says how).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# (script, arguments): the sizes issue 8 asks for; about 21 minutes in all on 2 CPUs.
BENCHMARKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("patient_throughput.py", ("--profile",)),
    ("page_weight.py", ()),
    ("worklist_scale.py", ()),
    ("dispatch_pass.py", ("--sizes", "10000,100000")),
    # Every kind in every format at 1,000 patients (issue 6's target), then growth to 10,000
    # without Excel, which takes minutes per kind there and streams like CSV (see the first).
    ("export_size.py", ()),
    ("export_size.py", ("--sizes", "1000,10000", "--formats", "csv", "sav", "dta")),
    ("load_patients.py", ()),
    ("idempotency.py", ()),
    ("backup_restore.py", ()),
)


def machine() -> list[str]:
    """What the figures were measured on."""
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    lines = [
        f"date: {date.today().isoformat()}",
        f"machine: {os.cpu_count()} CPUs, {memory_kb / 1024 / 1024:.0f} GiB, "
        f"{platform.system()} {platform.release()}",
        f"python: {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}",
    ]
    postgres = os.environ.get("PRO_BENCH_POSTGRES_URI")
    if postgres:
        lines.append(f"PostgreSQL: {postgres_version(postgres)}")
    else:
        lines.append("PostgreSQL: not measured (set PRO_BENCH_POSTGRES_URI)")
    return lines


def postgres_version(uri: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(uri)
    with engine.connect() as connection:
        version = str(connection.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="*", help="benchmark file names to run (default: all)")
    args = parser.parse_args()
    print("\n".join(machine()), flush=True)
    failed = []
    for script, arguments in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        print(f"\n## {script} {' '.join(arguments)}\n", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(BENCH_DIR / script), *arguments])  # noqa: S603
        print(f"\n({script}: {time.monotonic() - started:.0f} s, exit {result.returncode})")
        if result.returncode != 0:
            failed.append(script)
    print(f"\nload average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if failed:
        sys.exit(f"benchmarks that failed or missed their target: {', '.join(failed)}")


if __name__ == "__main__":
    main()
