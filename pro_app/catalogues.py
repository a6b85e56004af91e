"""The translation catalogues: extract, update, compile (pybabel) and check completeness."""

from __future__ import annotations

import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from pro_app.config import PROJECT_ROOT

TRANSLATIONS_DIR = PROJECT_ROOT / "translations"
MAPPING_FILE = TRANSLATIONS_DIR / "babel.cfg"
TEMPLATE_FILE = TRANSLATIONS_DIR / "messages.pot"
KEYWORDS = ("_l", "lazy_gettext", "ngettext:1,2", "lazy_ngettext:1,2")
# Catalogues that must be complete: the source strings are English, so only Italian is checked.
COMPLETE_LOCALES = ("it",)


def _pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract(output: Path = TEMPLATE_FILE) -> None:
    """Collect every marked string of the code and templates into the .pot template."""
    keyword_args = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    _pybabel(
        "extract",
        "-F",
        str(MAPPING_FILE),
        *keyword_args,
        "--no-location",
        "--sort-output",
        "--project",
        "pro-app",
        "-o",
        str(output),
        str(PROJECT_ROOT / "pro_app"),
    )


def update() -> None:
    """Merge the template into every locale's catalogue: new strings appear untranslated, and
    strings the code no longer uses are dropped rather than kept as obsolete entries."""
    _pybabel(
        "update",
        "-i",
        str(TEMPLATE_FILE),
        "-d",
        str(TRANSLATIONS_DIR),
        "--no-fuzzy-matching",
        "--ignore-obsolete",
    )


def compile_catalogues() -> None:
    """Build the .mo files the app reads."""
    _pybabel("compile", "-d", str(TRANSLATIONS_DIR))


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def catalogue_problems() -> list[str]:
    """Strings of the code that a complete catalogue lacks, leaves empty or marks fuzzy."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        extract(fresh)
        wanted = [message.id for message in _read(fresh) if message.id]
    problems: list[str] = []
    for locale in COMPLETE_LOCALES:
        po_file = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
        if not po_file.exists():
            problems.append(f"{po_file.relative_to(PROJECT_ROOT)}: catalogue missing")
            continue
        catalogue = _read(po_file)
        for message_id in wanted:
            message = catalogue.get(message_id)
            label = message_id if isinstance(message_id, str) else message_id[0]
            if message is None:
                problems.append(f"{locale}: not in the catalogue: {label!r}")
            elif message.fuzzy:
                problems.append(f"{locale}: fuzzy translation: {label!r}")
            elif not message.string or (
                isinstance(message.string, tuple) and not all(message.string)
            ):
                problems.append(f"{locale}: no translation: {label!r}")
    return problems
