"""An independent reading of the EORTC scoring manual, to check pro_app's scoring against.

Deliberately written apart from pro_app: the scale table is typed in from SCORING.md (not read
from the YAML files), arithmetic is exact (fractions), and each kind has its own formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

# code: (kind, items, item range) - the table of SCORING.md, QLQ-C30 version 3.0.
QLQ_C30_SCALES: dict[str, tuple[str, tuple[int, ...], int]] = {
    "QL2": ("global", (29, 30), 6),
    "PF2": ("functional", (1, 2, 3, 4, 5), 3),
    "RF2": ("functional", (6, 7), 3),
    "EF": ("functional", (21, 22, 23, 24), 3),
    "CF": ("functional", (20, 25), 3),
    "SF": ("functional", (26, 27), 3),
    "FA": ("symptom", (10, 12, 18), 3),
    "NV": ("symptom", (14, 15), 3),
    "PA": ("symptom", (9, 19), 3),
    "DY": ("symptom", (8,), 3),
    "SL": ("symptom", (11,), 3),
    "AP": ("symptom", (13,), 3),
    "CO": ("symptom", (16,), 3),
    "DI": ("symptom", (17,), 3),
    "FI": ("symptom", (28,), 3),
}
SUMSC_FUNCTIONAL = ("PF2", "RF2", "EF", "CF", "SF")
SUMSC_SYMPTOMS = ("FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI")

# The provisional GI.NET21 map from the project brief (not confirmed against the licensed sheet).
QLQ_GI_NET21_SCALES: dict[str, tuple[str, tuple[int, ...], int]] = {
    "ED": ("symptom", (31, 32, 33), 3),
    "GI": ("symptom", (34, 35, 36, 37, 38), 3),
    "TR": ("symptom", (39, 40), 3),
    "WG": ("symptom", (41,), 3),
    "SOC": ("functional", (42, 43, 44), 3),
    "DRW": ("symptom", (45, 46, 47), 3),
    "MBP": ("symptom", (48,), 3),
    "SX": ("symptom", (49,), 3),
    "INF": ("symptom", (50,), 3),
    "BI": ("symptom", (51,), 3),
}


def raw_score(answers: Mapping[int, int | None], items: tuple[int, ...]) -> Fraction | None:
    """Mean of the answered items, or None when fewer than half are answered."""
    given = [value for i in items if (value := answers.get(i)) is not None]
    minimum_needed = (len(items) + 1) // 2  # ceil(n / 2): 3 of 5, 2 of 4, 2 of 3, 1 of 2, 1 of 1
    if len(given) < minimum_needed:
        return None
    return Fraction(sum(given), len(given))


def functional_score(rs: Fraction, item_range: int) -> Fraction:
    """Functional scales: higher = better functioning."""
    return (1 - (rs - 1) / item_range) * 100


def symptom_score(rs: Fraction, item_range: int) -> Fraction:
    """Symptom scales and single items: higher = more symptoms."""
    return (rs - 1) / item_range * 100


def global_score(rs: Fraction, item_range: int) -> Fraction:
    """Global health status: higher = better, not reversed."""
    return (rs - 1) / item_range * 100


FORMULAS = {"functional": functional_score, "symptom": symptom_score, "global": global_score}


def score_table(
    table: Mapping[str, tuple[str, tuple[int, ...], int]], answers: Mapping[int, int | None]
) -> dict[str, float | None]:
    """Scores of every scale in the table, None when missing."""
    scores: dict[str, float | None] = {}
    for code, (kind, items, item_range) in table.items():
        rs = raw_score(answers, items)
        scores[code] = None if rs is None else float(FORMULAS[kind](rs, item_range))
    return scores


def sumsc(scores: Mapping[str, float | None]) -> float | None:
    """Giesinger 2016 summary score: only when all 13 components are present."""
    functional = [Fraction(v) for code in SUMSC_FUNCTIONAL if (v := scores[code]) is not None]
    symptoms = [Fraction(v) for code in SUMSC_SYMPTOMS if (v := scores[code]) is not None]
    if len(functional) + len(symptoms) < 13:
        return None
    return float((sum(functional) + sum(100 - v for v in symptoms)) / 13)


def score_qlq_c30(answers: Mapping[int, int | None]) -> dict[str, float | None]:
    """Every QLQ-C30 score and SUMSC."""
    scores = score_table(QLQ_C30_SCALES, answers)
    scores["SUMSC"] = sumsc(scores)
    return scores


def score_qlq_gi_net21(answers: Mapping[int, int | None]) -> dict[str, float | None]:
    """Every QLQ-GI.NET21 score under the provisional map."""
    return score_table(QLQ_GI_NET21_SCALES, answers)


REFERENCES = {"qlq_c30": score_qlq_c30, "qlq_gi_net21": score_qlq_gi_net21}
