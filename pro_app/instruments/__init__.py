"""Questionnaire definitions, text packs and EORTC scoring: pure Python, no Flask."""

from pro_app.instruments.loader import load_instrument, load_text_pack
from pro_app.instruments.model import (
    Instrument,
    Item,
    ResponseScale,
    Scale,
    ScaleKind,
    Section,
    SectionText,
    SummaryScore,
    TextPack,
)
from pro_app.instruments.problems import QuestionnaireError, QuestionnaireProblem
from pro_app.instruments.registry import InstrumentRegistry, find_problems, load_registry
from pro_app.instruments.response_io import ResponseSetError, parse_response_set
from pro_app.instruments.scoring import (
    ScaleScore,
    ScoringInputError,
    score_instrument,
    scoring_version,
)

__all__ = [
    "Instrument",
    "InstrumentRegistry",
    "Item",
    "QuestionnaireError",
    "QuestionnaireProblem",
    "ResponseScale",
    "ResponseSetError",
    "Scale",
    "ScaleKind",
    "ScaleScore",
    "ScoringInputError",
    "Section",
    "SectionText",
    "SummaryScore",
    "TextPack",
    "find_problems",
    "load_instrument",
    "load_registry",
    "load_text_pack",
    "parse_response_set",
    "score_instrument",
    "scoring_version",
]
