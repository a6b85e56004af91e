"""Every export read back with the readers analysts use (pandas, pyreadstat, openpyxl) and
checked against scores computed independently from the stored answers."""

from __future__ import annotations

import io
import math
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
from flask import Flask
from flask_babel import force_locale
from openpyxl import load_workbook

from pro_app.exports.registry import KINDS, build_dataset
from pro_app.exports.source import ExportFilter
from pro_app.exports.writers import FORMATS, write_export
from tests.trial_data import FORMULA_REASON, TODAY, Trial, build_trial
from tests.unit.reference_scoring import REFERENCES

SCALE_DIRECTION = {"symptom": True}  # higher is worse; every other kind: lower is worse


@pytest.fixture
def trial(app: Flask) -> Trial:
    return build_trial(app)


def export_bytes(app: Flask, kind: str, fmt: str, filters: ExportFilter | None = None) -> bytes:
    with app.app_context(), force_locale("it"):  # the command line's default
        out = io.BytesIO()
        write_export(build_dataset(kind, None, filters or ExportFilter(), TODAY), fmt, out)
        return out.getvalue()


def read_csv(app: Flask, kind: str, filters: ExportFilter | None = None) -> pd.DataFrame:
    data = export_bytes(app, kind, "csv", filters)
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])


def read_stats(app: Flask, kind: str, fmt: str, tmp_path: Path) -> tuple[pd.DataFrame, Any]:
    path = tmp_path / f"{kind}.{fmt}"
    path.write_bytes(export_bytes(app, kind, fmt))
    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    return reader(str(path))


def reference_scores(
    trial: Trial, code: str, timepoint: str
) -> dict[tuple[str, str], float | None]:
    answers = trial.answers[(code, timepoint)]
    found: dict[tuple[str, str], float | None] = {}
    for instrument, scorer in REFERENCES.items():
        given = {item: value for (inst, item), value in answers.items() if inst == instrument}
        for scale, value in scorer(given).items():
            found[(instrument, scale)] = value
    return found


def same(a: Any, b: Any) -> bool:
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    return abs(float(a) - float(b)) < 1e-9


def test_scores_match_an_independent_scoring_of_the_stored_answers(
    app: Flask, trial: Trial
) -> None:
    frame = read_csv(app, "scores")
    completed = frame[frame.assessment_status == "completed"]
    assert {(r.study_code, r.timepoint) for r in completed.itertuples()} == set(trial.answers)
    for row in completed.itertuples():
        expected = reference_scores(trial, row.study_code, row.timepoint)[
            (row.instrument, row.scale)
        ]
        assert same(row.score, expected), (row.study_code, row.timepoint, row.scale)
        assert row.score_status == ("scored" if expected is not None else "insufficient_items")
    waiting = frame[frame.assessment_status != "completed"]
    assert waiting.score.isna().all()
    assert set(waiting.score_status) == {"not_completed"}
    # Every patient × time point × scale is there, scored or not: 5 × 3 × (16 + 10).
    assert len(frame) == 5 * 3 * 26
    assert set(frame[frame.instrument == "qlq_gi_net21"].scoring_verified) == {0}
    assert set(frame[frame.instrument == "qlq_c30"].scoring_verified) == {1}


def test_scores_say_when_and_how_each_form_was_filled_in(app: Flask, trial: Trial) -> None:
    frame = read_csv(app, "scores")
    first = frame[(frame.study_code == "MI01-0001") & (frame.scale == "PF2")].set_index("timepoint")
    assert first.loc["baseline", "days_from_randomization"] == 2
    assert first.loc["baseline", "timing"] == "in_window"
    assert first.loc["baseline", "mode"] == "web"
    assert first.loc["month3", "mode"] == "paper"
    assert first.loc["month3", "completed_on"] == "2026-08-19"  # day 110, the paper's own date
    assert first.loc["month3", "days_from_randomization"] == 110
    assert first.loc["month3", "timing"] == "late"
    assert first.loc["month3", "target_day"] == 91
    assert first.loc["month6", "arm"] == "tae"
    assert first.loc["baseline", "text_pack"] == "demo 2026.1"


def test_wide_is_the_long_export_pivoted(app: Flask, trial: Trial) -> None:
    long = read_csv(app, "scores")
    wide = read_csv(app, "scores-wide").set_index(["study_code", "timepoint"])
    assert len(wide) == 15
    assert "QLQC30_PF2" in wide.columns
    assert "QLQGINET21_ED" in wide.columns
    for row in long.itertuples():
        prefix = "QLQC30" if row.instrument == "qlq_c30" else "QLQGINET21"
        assert same(wide.loc[(row.study_code, row.timepoint), f"{prefix}_{row.scale}"], row.score)


def test_items_explain_every_cell_and_keep_corrections(app: Flask, trial: Trial) -> None:
    frame = read_csv(app, "items")
    assert len(frame) == 5 * 3 * 51
    by_key = frame.set_index(["study_code", "timepoint", "instrument", "item"])
    for (code, timepoint), answers in trial.answers.items():
        for (instrument, item), value in answers.items():
            row = by_key.loc[(code, timepoint, instrument, item)]
            assert same(row.value, value)
            assert row.status == ("answered" if value is not None else "skipped")
    assert set(by_key.loc[("MI01-0002", "month3")].status) == {"pending"}  # status not advanced
    assert set(by_key.loc[("MI01-0005", "month3")].status) == {"pending"}
    corrected = frame[frame.correction_count > 0]
    assert len(corrected) == 1
    row = corrected.iloc[0]
    assert (row.study_code, row.timepoint, row["item"]) == ("MI01-0001", "month3", 1)
    assert row.original_value != row.value
    assert row.correction_reason == "'" + FORMULA_REASON  # neutralised: never a formula
    assert pd.isna(frame[frame.correction_count == 0].original_value).all()


def test_missed_time_points_say_so_in_the_items(app: Flask, trial: Trial) -> None:
    from pro_app.services.assessment_states import advance_assessment_states
    from tests.trial_data import NOW

    with app.app_context():
        advance_assessment_states(NOW)
        from pro_app.extensions import db

        db.session.commit()
    frame = read_csv(app, "items").set_index(["study_code", "timepoint"])
    assert set(frame.loc[("MI01-0002", "month3")].status) == {"missed"}
    assert set(frame.loc[("MI01-0002", "month3")].assessment_status) == {"missed"}
    assert frame.loc[("MI01-0002", "month3")].value.isna().all()


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_files_hold_the_same_values_with_labels(
    app: Flask, trial: Trial, fmt: str, tmp_path: Path
) -> None:
    csv_frame = read_csv(app, "scores")
    frame, meta = read_stats(app, "scores", fmt, tmp_path)
    assert list(frame.columns) == list(csv_frame.columns)
    assert len(frame) == len(csv_frame)
    for ours, theirs in zip(frame.score, csv_frame.score, strict=True):
        assert same(ours, theirs)
    labels = meta.column_names_to_labels
    assert all(labels[name] for name in frame.columns), "every variable has a label"
    assert labels["study_code"] == "Codice studio del paziente (pseudonimo)"
    assert meta.variable_value_labels["scoring_verified"] == {0.0: "provvisorio", 1.0: "verificato"}
    assert (
        frame.randomized_on.iloc[0] == date(2026, 5, 1)
        or str(frame.randomized_on.iloc[0])[:10] == "2026-05-01"
    )
    assert frame.score.isna().sum() == csv_frame.score.isna().sum()  # system-missing, not 0


def test_deterioration_file_has_value_labels(app: Flask, trial: Trial, tmp_path: Path) -> None:
    frame, meta = read_stats(app, "deterioration", "dta", tmp_path)
    assert meta.variable_value_labels["event"] == {0.0: "censurato", 1.0: "peggiorato"}
    assert set(frame.outcome) == {"event", "censored", "no_baseline"}


def test_excel_cells_are_never_formulas(app: Flask, trial: Trial) -> None:
    workbook = load_workbook(io.BytesIO(export_bytes(app, "items", "xlsx")))
    sheet = workbook["data"]
    header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    reason_column = header.index("correction_reason")
    reasons = []
    for row in sheet.iter_rows(min_row=2):
        assert all(cell.data_type != "f" for cell in row)
        if row[reason_column].value:
            reasons.append(row[reason_column].value)
    assert reasons == ["'" + FORMULA_REASON]
    assert [cell.value for cell in workbook["variables"]["A"]][:3] == [
        "variable",
        "study_code",
        "site",
    ]


def test_codebook_covers_every_column_of_every_export(app: Flask, trial: Trial) -> None:
    codebook = read_csv(app, "codebook")
    for kind in KINDS:
        columns = list(read_csv(app, kind).columns)
        documented = codebook[codebook.export == kind].sort_values("position")
        assert list(documented.variable) == columns, kind
    assert codebook.label_it.notna().all()
    assert codebook.label_en.notna().all()
    assert (codebook.label_it != codebook.label_en).sum() > len(codebook) * 0.9, "translated"
    score = codebook[(codebook.export == "scores") & (codebook.variable == "score")].iloc[0]
    assert "EORTC" in score.reference
    assert "never 0" in score.missing_en
    arm = codebook[(codebook.export == "scores") & (codebook.variable == "arm")].iloc[0]
    assert arm.values_it == "tae = Terapia sistemica + TAE; control = Solo terapia sistemica"
    status = codebook[(codebook.export == "items") & (codebook.variable == "status")].iloc[0]
    for code in ("answered", "skipped", "not_shown", "missed", "pending"):
        assert f"{code} = " in status.values_en


def _all_text(app: Flask, kind: str, fmt: str, tmp_path: Path) -> str:
    data = export_bytes(app, kind, fmt)
    if fmt == "xlsx":
        workbook = load_workbook(io.BytesIO(data))
        return "\n".join(
            str(cell.value) for sheet in workbook for row in sheet.iter_rows() for cell in row
        )
    if fmt in ("sav", "dta"):
        frame, meta = read_stats(app, kind, fmt, tmp_path)
        return frame.to_csv() + str(meta.column_names_to_labels) + data.decode("latin-1")
    return data.decode("utf-8")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_no_export_contains_contact_details_or_link_tokens(
    app: Flask, trial: Trial, fmt: str, tmp_path: Path
) -> None:
    for kind in KINDS:
        text = _all_text(app, kind, fmt, tmp_path).lower()
        for secret in (*trial.contacts, *trial.tokens):
            assert secret.lower() not in text, (kind, fmt)
        assert "@example.org" not in text


def test_compliance_table_worked_out_by_hand(app: Flask, trial: Trial) -> None:
    frame = read_csv(app, "compliance").set_index(["timepoint", "arm"])
    columns = ["expected", "received", "on_time", "early", "late", "missed", "pending", "off_study"]
    expected = {
        # baseline: everyone but MI01-0005 (missed) answered in the window.
        ("baseline", "tae"): [2, 2, 2, 0, 0, 0, 0, 0],
        ("baseline", "control"): [3, 2, 2, 0, 0, 1, 0, 0],
        ("baseline", "all"): [5, 4, 4, 0, 0, 1, 0, 0],
        # month 3: 0001 late on paper, 0002 missed | 0003 withdrew day 80, 0004 on time,
        # 0005 inside its window today.
        ("month3", "tae"): [2, 1, 0, 0, 1, 1, 0, 0],
        ("month3", "control"): [1, 1, 1, 0, 0, 0, 1, 1],
        ("month3", "all"): [3, 2, 1, 0, 1, 1, 1, 1],
        # month 6: 0001 on time, 0002 missed | 0003 withdrawn, 0004 died day 150, 0005 not due.
        ("month6", "tae"): [2, 1, 1, 0, 0, 1, 0, 0],
        ("month6", "control"): [0, 0, 0, 0, 0, 0, 1, 2],
        ("month6", "all"): [2, 1, 1, 0, 0, 1, 1, 2],
    }
    assert len(frame) == len(expected)
    for key, counts in expected.items():
        assert list(frame.loc[key, columns]) == counts, key
        rate = frame.loc[key, "compliance_rate"]
        assert same(rate, 100 * counts[1] / counts[0] if counts[0] else None), key
    assert set(frame.as_of) == {"2026-11-24"}


def independent_deterioration(trial: Trial, threshold: float = 10) -> dict[tuple[str, str], Any]:
    """(study code, scale) → (outcome, days) from the reference scores and known dates."""
    days = {
        ("MI01-0001", "baseline"): 2, ("MI01-0001", "month3"): 110,
        ("MI01-0001", "month6"): 182, ("MI01-0002", "baseline"): 0,
        ("MI01-0003", "baseline"): 5, ("MI01-0004", "baseline"): 1,
        ("MI01-0004", "month3"): 90,
    }  # fmt: skip
    kinds = {"symptom": True}
    from tests.unit.reference_scoring import QLQ_C30_SCALES, QLQ_GI_NET21_SCALES

    scale_kind = {
        **{("qlq_c30", s): k for s, (k, _i, _r) in QLQ_C30_SCALES.items()},
        **{("qlq_gi_net21", s): k for s, (k, _i, _r) in QLQ_GI_NET21_SCALES.items()},
        ("qlq_c30", "SUMSC"): "summary",
    }
    results = {}
    for code in ("MI01-0001", "MI01-0002", "MI01-0003", "MI01-0004", "MI01-0005"):
        for key, kind in scale_kind.items():
            worse_if_higher = kinds.get(kind, False)
            series = [
                (days[(code, tp)], reference_scores(trial, code, tp)[key])
                for tp in ("baseline", "month3", "month6")
                if (code, tp) in trial.answers
            ]
            if (code, "baseline") not in trial.answers or series[0][1] is None:
                results[(code, key[1], key[0])] = ("no_baseline", None)
                continue
            base = series[0][1]
            outcome, at = "censored", series[0][0]
            for day, score in series[1:]:
                if score is None:
                    continue
                at = day
                change = score - base if worse_if_higher else base - score
                if change >= threshold - 1e-9:
                    outcome = "event"
                    break
            results[(code, key[1], key[0])] = (outcome, at)
    return results


def test_deterioration_agrees_with_an_independent_computation(app: Flask, trial: Trial) -> None:
    frame = read_csv(app, "deterioration")
    expected = independent_deterioration(trial)
    assert len(frame) == len(expected)
    for row in frame.itertuples():
        outcome, days = expected[(row.study_code, row.scale, row.instrument)]
        assert row.outcome == outcome, (row.study_code, row.scale)
        assert same(row.days, days), (row.study_code, row.scale)
        assert same(row.event, {"event": 1, "censored": 0}.get(outcome))
    assert "event" in set(frame.outcome)  # the random story does include deteriorations
    no_baseline = frame[frame.study_code == "MI01-0005"]
    assert set(no_baseline.outcome) == {"no_baseline"}
    assert no_baseline.baseline_score.isna().all()
    assert no_baseline.days.isna().all()


def test_deterioration_threshold_is_configurable(app: Flask, trial: Trial) -> None:
    app.config["DETERIORATION_THRESHOLD"] = 5
    frame = read_csv(app, "deterioration")
    expected = independent_deterioration(trial, threshold=5)
    assert set(frame.threshold) == {5.0}
    for row in frame.itertuples():
        assert row.outcome == expected[(row.study_code, row.scale, row.instrument)][0]


def test_filters_narrow_every_export(app: Flask, trial: Trial) -> None:
    only = ExportFilter(arm="tae", timepoint="month3", instrument="qlq_c30")
    frame = read_csv(app, "scores", only)
    assert set(frame.arm) == {"tae"}
    assert set(frame.timepoint) == {"month3"}
    assert set(frame.instrument) == {"qlq_c30"}
    assert len(frame) == 2 * 16
    cohort = ExportFilter(randomized_from=date(2026, 5, 2), randomized_to=date(2026, 5, 3))
    assert set(read_csv(app, "items", cohort).study_code) == {"MI01-0002", "MI01-0003"}
    compliance = read_csv(app, "compliance", ExportFilter(arm="control"))
    assert set(compliance.arm) == {"control", "all"}
    assert list(compliance[compliance.arm == "all"].expected) == [3, 1, 0]


def test_site_scoping_for_an_investigator(app: Flask, trial: Trial) -> None:
    from pro_app.extensions import db
    from pro_app.models import StaffUser
    from tests.factories import enrol, staff_user

    enrol(app, "RM01-0001", site_code="RM01")
    other_id = staff_user(app, "inv@rm01.example.org", "investigator", "RM01")
    with app.app_context():
        other = db.session.get(StaffUser, other_id)
        for kind in ("scores", "items", "deterioration"):
            rows = list(build_dataset(kind, other, ExportFilter(), TODAY).records())
            assert {row["study_code"] for row in rows} == {"RM01-0001"}, kind
        audit_rows = list(build_dataset("audit", other, ExportFilter(), TODAY).records())
        assert all(row["study_code"] in (None, "RM01-0001") for row in audit_rows)
        assert audit_rows, "the other site's own events are there"


def test_command_line_export(app: Flask, trial: Trial, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    out = tmp_path / "scores.sav"
    result = runner.invoke(
        args=["export", "scores", "--out", str(out), "--format", "sav", "--arm", "tae"]
    )
    assert result.exit_code == 0, result.output
    frame, _meta = pyreadstat.read_sav(str(out))
    assert set(frame.arm) == {"tae"}
    assert not (tmp_path / "scores.sav.part").exists()
    bad = runner.invoke(args=["export", "everything", "--out", str(out)])
    assert bad.exit_code == 2
    assert "everything" in bad.output
    stdout = runner.invoke(args=["export", "compliance", "--out", "-", "--as-of", "2026-11-24"])
    assert stdout.exit_code == 0
    assert stdout.output.startswith("timepoint,arm,as_of")
