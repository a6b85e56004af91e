"""The trial's instruments with one text pack per supported locale, loaded and checked together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pro_app.instruments.loader import load_instrument
from pro_app.instruments.model import Instrument, TextPack
from pro_app.instruments.problems import QuestionnaireError, QuestionnaireProblem
from pro_app.instruments.text_packs import load_text_pack, text_pack_name

DEFAULT_LOCALES = ("it", "en")
DEMO_TEXT_DIR = "text"
# YAML files in the questionnaire directory that are not instruments (owned by other modules).
NOT_INSTRUMENTS = frozenset({"schedule.yaml", "eligibility.yaml"})


@dataclass(frozen=True, eq=False)
class InstrumentRegistry:
    """Instruments by code (in file-name order) and their text packs by (code, locale)."""

    instruments: dict[str, Instrument]
    texts: dict[tuple[str, str], TextPack]
    locales: tuple[str, ...]

    def get(self, code: str) -> Instrument:
        """The instrument with this code; KeyError naming the known codes if there is none."""
        try:
            return self.instruments[code]
        except KeyError:
            known = ", ".join(self.instruments) or "none"
            raise KeyError(f"unknown instrument '{code}' (known: {known})") from None

    def text(self, code: str, locale: str) -> TextPack:
        """The text pack for an instrument in a supported locale; KeyError otherwise."""
        self.get(code)
        try:
            return self.texts[(code, locale)]
        except KeyError:
            supported = ", ".join(self.locales)
            raise KeyError(f"locale '{locale}' is not supported (supported: {supported})") from None


def find_problems(
    questionnaire_dir: Path,
    text_pack_dir: Path | None = None,
    locales: Sequence[str] = DEFAULT_LOCALES,
) -> list[QuestionnaireProblem]:
    """Every problem of the instrument files and text packs, not only the first."""
    return _load(Path(questionnaire_dir), _optional_path(text_pack_dir), tuple(locales))[1]


def load_registry(
    questionnaire_dir: Path,
    text_pack_dir: Path | None = None,
    locales: Sequence[str] = DEFAULT_LOCALES,
) -> InstrumentRegistry:
    """Load every instrument with its text packs; QuestionnaireError lists all problems."""
    registry, problems = _load(
        Path(questionnaire_dir), _optional_path(text_pack_dir), tuple(locales)
    )
    if problems:
        raise QuestionnaireError(problems)
    return registry


def _optional_path(path: Path | None) -> Path | None:
    return None if path is None else Path(path)


def _load(
    questionnaire_dir: Path, text_pack_dir: Path | None, locales: tuple[str, ...]
) -> tuple[InstrumentRegistry, list[QuestionnaireProblem]]:
    registry = InstrumentRegistry(instruments={}, texts={}, locales=locales)
    problems: list[QuestionnaireProblem] = []
    if not locales:
        problems.append(QuestionnaireProblem("configuration", "", "no supported locales"))
    if text_pack_dir is not None and not text_pack_dir.is_dir():
        # A mistyped licensed-pack directory would silently show patients the demo wording.
        problems.append(
            QuestionnaireProblem(str(text_pack_dir), "", "text pack directory not found")
        )
        text_pack_dir = None
    if not questionnaire_dir.is_dir():
        problems.append(QuestionnaireProblem(str(questionnaire_dir), "", "directory not found"))
        return registry, problems

    files = sorted(
        path for path in questionnaire_dir.glob("*.yaml") if path.name not in NOT_INSTRUMENTS
    )
    if not files:
        problems.append(QuestionnaireProblem(str(questionnaire_dir), "", "no instrument files"))
    for path in files:
        try:
            instrument = load_instrument(path)
        except QuestionnaireError as error:
            problems.extend(error.problems)
            continue
        registry.instruments[instrument.code] = instrument
        for locale in locales:
            problems.extend(
                _load_pack(registry, instrument, locale, questionnaire_dir, text_pack_dir)
            )
    if text_pack_dir is not None:
        codes = {path.stem for path in files}
        problems.extend(_stray_packs(text_pack_dir, codes))
    return registry, problems


def _load_pack(
    registry: InstrumentRegistry,
    instrument: Instrument,
    locale: str,
    questionnaire_dir: Path,
    text_pack_dir: Path | None,
) -> list[QuestionnaireProblem]:
    """Load the licensed pack if there is one, else the demo pack; return its problems."""
    name = text_pack_name(instrument.code, locale)
    licensed = text_pack_dir / name if text_pack_dir is not None else None
    if licensed is not None and licensed.is_file():
        path, label = licensed, str(licensed)
    else:
        path, label = questionnaire_dir / DEMO_TEXT_DIR / name, f"{DEMO_TEXT_DIR}/{name}"
    if not path.is_file():
        problem = f"missing: {instrument.code} needs a text pack for locale '{locale}'"
        return [QuestionnaireProblem(label, "", problem)]
    try:
        registry.texts[(instrument.code, locale)] = load_text_pack(
            path, instrument, file_label=label
        )
    except QuestionnaireError as error:
        return error.problems
    return []


def _stray_packs(text_pack_dir: Path, instrument_codes: set[str]) -> list[QuestionnaireProblem]:
    """Licensed packs named for no instrument, which would otherwise be ignored unnoticed."""
    return [
        QuestionnaireProblem(
            str(path), "", "is not named <instrument>.<locale>.yaml for a known instrument"
        )
        for path in sorted(text_pack_dir.glob("*.yaml"))
        if path.name.removesuffix(".yaml").rpartition(".")[0] not in instrument_codes
    ]
