"""The analyst page: who may see it, filters, every download, the compliance table and the plots
(values checked against means and intervals computed here from the stored scores)."""

from __future__ import annotations

import html
import math
import random
import re
import statistics
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext

from pro_app.exports.registry import KINDS
from pro_app.exports.writers import FORMATS
from pro_app.extensions import db
from pro_app.instruments.model import Item
from pro_app.models import (
    Answer,
    Assessment,
    AssessmentStatus,
    AuditEvent,
    Mode,
    Patient,
    Score,
    Site,
)
from pro_app.models.types import utcnow
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.scores import store_scores
from tests import factories

SVG = "{http://www.w3.org/2000/svg}"
# Exact two-sided 95% quantiles of Student's t (R: qt(0.975, df)), independent of the app's table.
T_975 = {1: 12.706204736174696, 2: 4.302652729749464, 3: 3.182446305284263}
DAYS_AGO = 200  # every window of the schedule has closed
ANALYST = "stats@example.org"
INVESTIGATOR = "investigator@mi01.example.org"

# study code → (arm, time points completed); month 6 is missed by everyone, month 3 by MI01-0003.
PATIENTS = {
    "MI01-0001": ("tae", ("baseline", "month3")),
    "MI01-0002": ("tae", ("baseline", "month3")),
    "MI01-0003": ("tae", ("baseline",)),
    "MI01-0004": ("control", ("baseline", "month3")),
    "MI01-0005": ("control", ("baseline",)),
    "RM01-0001": ("tae", ("baseline", "month3")),
}


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    low: float | None
    high: float | None


def complete(patient_id: int, timepoint: str, pick: Callable[[Item], int], at: datetime) -> None:
    """What a patient's submit stores: every item answered (pick(item)), completed, scored."""
    assessment = db.session.scalar(
        db.select(Assessment).where(
            Assessment.patient_id == patient_id, Assessment.timepoint == timepoint
        )
    )
    assert assessment is not None
    for code in trial_schedule().timepoint(timepoint).instruments:
        for item in instrument_registry().get(code).items:
            db.session.add(
                Answer(assessment=assessment, instrument=code, item=item.number, value=pick(item))
            )
    assessment.status = AssessmentStatus.COMPLETED
    assessment.mode = Mode.WEB
    assessment.started_at = at - timedelta(minutes=10)
    assessment.completed_at = at
    db.session.flush()
    store_scores(assessment, at)


def build_data(app: Flask) -> None:
    """Six patients at two sites, randomized DAYS_AGO days ago, enrolled that day."""
    rng = random.Random(6)

    def pick(item: Item) -> int:
        return rng.randint(item.response_scale.min, item.response_scale.max)

    enrolled_at = utcnow() - timedelta(days=DAYS_AGO)
    ids = {
        code: factories.enrol(app, code, site_code=code[:4], now=enrolled_at).patient_id
        for code in PATIENTS
    }
    with app.app_context():
        for code, (arm, done) in PATIENTS.items():
            patient = db.session.get(Patient, ids[code])
            assert patient is not None
            patient.arm = arm
            for timepoint in done:
                day = trial_schedule().timepoint(timepoint).target_day + 1
                complete(ids[code], timepoint, pick, enrolled_at + timedelta(days=day))
        db.session.commit()


def signed_in(app: Flask, email: str, role: str, site: str | None, language: str = "it"):  # type: ignore[no-untyped-def]
    factories.staff_user(app, email, role, site, language=language)
    client = app.test_client()
    factories.sign_in(client, email)
    return client


@pytest.fixture
def analyst(app: Flask) -> FlaskClient:
    build_data(app)
    return signed_in(app, ANALYST, "analyst", None, language="en")


def expected_summaries(
    app: Flask, instrument: str, scale: str, site: str | None = None
) -> dict[tuple[str, str], Summary]:
    """(arm, time point) → n, mean and t-based 95% CI, straight from the score table."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    with app.app_context():
        query = (
            db.select(Patient.arm, Assessment.timepoint, Score.value)
            .join(Assessment, Score.assessment_id == Assessment.id)
            .join(Patient, Assessment.patient_id == Patient.id)
            .join(Site, Patient.site_id == Site.id)
            .where(
                Score.instrument == instrument,
                Score.scale == scale,
                Assessment.status == AssessmentStatus.COMPLETED,
                Score.value.is_not(None),
            )
        )
        if site:
            query = query.where(Site.code == site)
        for arm, timepoint, value in db.session.execute(query):
            values[(arm, timepoint)].append(value)
    found = {}
    for key, scores in values.items():
        mean = statistics.fmean(scores)
        if len(scores) < 2:
            found[key] = Summary(1, mean, None, None)
            continue
        half = T_975[len(scores) - 1] * statistics.stdev(scores) / math.sqrt(len(scores))
        found[key] = Summary(len(scores), mean, mean - half, mean + half)
    return found


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - SVG this app just generated, not outside input


def points(svg: ET.Element, series: int) -> list[ET.Element]:
    return [
        g
        for g in svg.iter(f"{SVG}g")
        if g.get("class", "").split() == ["point", f"series-{series}"]
    ]


def audit_downloads(app: Flask) -> list[dict[str, object]]:
    with app.app_context():
        events = db.session.scalars(
            db.select(AuditEvent)
            .where(AuditEvent.action == "export.download")
            .order_by(AuditEvent.id)
        )
        return [dict(event.after or {}) for event in events]


def in_language(app: Flask, locale: str, message: str) -> str:
    with app.test_request_context(), force_locale(locale):
        return gettext(message)


def test_roles(app: Flask) -> None:
    build_data(app)
    anonymous = app.test_client().get("/analyst/")
    assert anonymous.status_code == 302
    assert "/auth/sign-in" in anonymous.headers["Location"]
    nurse = signed_in(app, "nurse@mi01.example.org", "nurse", "MI01")
    for url in ("/analyst/", "/analyst/export/scores.csv", "/analyst/plots/completion.svg"):
        assert nurse.get(url).status_code == 403
    assert nurse.get("/analyst/plots/qlq_c30/PF2.svg").status_code == 403
    assert audit_downloads(app) == []
    analyst = signed_in(app, ANALYST, "analyst", None)
    landing = analyst.get("/staff/")
    assert landing.headers["Location"].endswith("/analyst/")
    page = analyst.get("/analyst/")
    assert page.status_code == 200
    assert 'href="/analyst/" aria-current="page"' in page.text  # the menu entry
    admin = signed_in(app, "admin@example.org", "admin", None)
    assert admin.get("/analyst/").status_code == 200


def test_investigator_sees_only_own_site(app: Flask) -> None:
    build_data(app)
    client = signed_in(app, INVESTIGATOR, "investigator", "MI01")
    page = client.get("/analyst/")
    assert page.status_code == 200
    # Baseline, arm TAE: MI01 has three completed forms (RM01's fourth is not counted).
    table = page.text[page.text.index('class="compliance"') :]
    baseline = table[: table.index("</tbody>")]
    cells = [int(n) for n in re.findall(r'<td class="number">(\d+)</td>', baseline)]
    assert cells[:2] == [3, 3]  # expected, received in the first row (TAE)
    assert cells[16:18] == [5, 5]  # all arms at baseline: MI01's five patients
    assert "RM01" not in page.text
    download = client.get("/analyst/export/scores.csv")
    assert download.status_code == 200
    assert "MI01-0001" in download.text
    assert "RM01-0001" not in download.text
    other_site = client.get("/analyst/", query_string={"site": "RM01"})
    assert other_site.status_code == 400
    assert client.get("/analyst/export/scores.csv?site=RM01").status_code == 400
    expected = expected_summaries(app, "qlq_c30", "QL2", site="MI01")
    plot = parse(client.get("/analyst/plots/qlq_c30/QL2.svg").text)
    means = [float(g.get("data-mean", "")) for g in points(plot, 0)]
    assert means == pytest.approx(
        [expected[("tae", "baseline")].mean, expected[("tae", "month3")].mean]
    )


@pytest.mark.parametrize(
    ("language", "message"),
    [("it", None), ("en", "There is no such arm.")],
)
def test_unknown_arm_is_refused_in_the_user_language(
    app: Flask, language: str, message: str | None
) -> None:
    client = signed_in(app, ANALYST, "analyst", None, language=language)
    expected = message or in_language(app, "it", "There is no such arm.")
    if language == "it":
        assert expected != "There is no such arm.", "the Italian catalogue lacks this message"
    page = client.get("/analyst/", query_string={"arm": "placebo"})
    assert page.status_code == 400
    text = html.unescape(page.text)
    assert f'<html lang="{language}">' in text
    field = text[text.index('id="arm"') - 200 :]
    assert 'aria-invalid="true"' in field[:400]
    assert f'<span class="field-error" id="arm-error">{expected}</span>' in text
    assert 'class="download-list"' not in text  # nothing is shown for filters that are wrong
    download = client.get("/analyst/export/scores.csv?arm=placebo")
    assert download.status_code == 400
    assert expected in html.unescape(download.text)
    assert client.get("/analyst/plots/completion.svg?arm=placebo").status_code == 400


def test_bad_dates_are_refused_next_to_their_field(app: Flask) -> None:
    client = signed_in(app, ANALYST, "analyst", None, language="en")
    bad = client.get("/analyst/", query_string={"randomized_from": "24/11/2026"})
    assert bad.status_code == 400
    assert (
        '<span class="field-error" id="randomized_from-error">Enter dates as YYYY-MM-DD.'
        in bad.text
    )
    assert 'value="24/11/2026"' in bad.text  # what was typed stays, to be corrected
    backwards = client.get(
        "/analyst/", query_string={"randomized_from": "2026-05-02", "randomized_to": "2026-05-01"}
    )
    assert backwards.status_code == 400
    assert 'id="randomized_to-error">The end date is before the start date.' in backwards.text


def test_unknown_kind_or_format_is_a_400_page(app: Flask, analyst: FlaskClient) -> None:
    for url in ("/analyst/export/everything.csv", "/analyst/export/scores.pdf"):
        response = analyst.get(url)
        assert response.status_code == 400
        assert 'role="alert"' in response.text
    assert audit_downloads(app) == []


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_format_of_every_kind_downloads_and_is_audited(
    app: Flask, analyst: FlaskClient, kind: str
) -> None:
    for fmt, (content_type, extension) in FORMATS.items():
        response = analyst.get(f"/analyst/export/{kind}.{fmt}", query_string={"arm": "tae"})
        assert response.status_code == 200, (kind, fmt)
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Cache-Control"] == "no-store"
        disposition = response.headers["Content-Disposition"]
        assert re.fullmatch(
            rf'attachment; filename="{re.escape(kind)}-\d{{8}}-\d{{4}}\.{extension}"', disposition
        ), disposition
        assert len(response.data) > 0
        if fmt == "csv":
            assert response.data.decode("utf-8").split("\r\n")[0].count(",") >= 1
    downloads = audit_downloads(app)
    assert [(d["kind"], d["format"], d["via"]) for d in downloads] == [
        (kind, fmt, "page") for fmt in FORMATS
    ]
    assert all(d["filters"] == {"arm": "tae"} for d in downloads)


def test_page_links_carry_the_filters(analyst: FlaskClient) -> None:
    page = analyst.get("/analyst/", query_string={"arm": "control", "timepoint": "baseline"})
    assert page.status_code == 200
    links = re.findall(r'href="(/analyst/export/[^"]+)"', page.text)
    assert len(links) == len(KINDS) * len(FORMATS)
    assert all(html.unescape(link).endswith("?arm=control&timepoint=baseline") for link in links)
    assert (
        "/analyst/plots/qlq_c30/PF2.svg?download=1&amp;arm=control&amp;timepoint=baseline"
        in page.text
    )
    assert "UTF-8" in page.text


def test_scale_plot_shows_means_and_intervals_of_the_stored_scores(
    app: Flask, analyst: FlaskClient
) -> None:
    response = analyst.get("/analyst/plots/qlq_c30/PF2.svg")
    assert response.status_code == 200
    assert response.content_type.startswith("image/svg+xml")
    assert "Content-Disposition" not in response.headers
    svg = parse(response.text)
    assert svg.get("role") == "img"
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.text is not None
    assert title.text.endswith("(PF2)")
    expected = expected_summaries(app, "qlq_c30", "PF2")
    with app.app_context():
        timepoints = [tp.code for tp in trial_schedule().timepoints]
    for series, arm in enumerate(("tae", "control")):
        drawn = points(svg, series)
        scored = [tp for tp in timepoints if (arm, tp) in expected]
        assert len(drawn) == len(scored)  # month 6: nobody, so no point
        for point, timepoint in zip(drawn, scored, strict=True):
            want = expected[(arm, timepoint)]
            assert float(point.get("data-mean", "")) == pytest.approx(want.mean)
            interval = point.find(f"{SVG}g")
            if want.low is None:
                assert interval is None
            else:
                assert interval is not None
                assert float(interval.get("data-low", "")) == pytest.approx(want.low, abs=0.02)
                assert float(interval.get("data-high", "")) == pytest.approx(want.high, abs=0.02)
            tooltip = point.find(f"{SVG}title")
            assert tooltip is not None
            assert f"n = {want.n}" in (tooltip.text or "")
    download = analyst.get("/analyst/plots/qlq_c30/PF2.svg?download=1")
    assert re.fullmatch(
        r'attachment; filename="qlq_c30-PF2-\d{8}-\d{4}\.svg"',
        download.headers["Content-Disposition"],
    )
    assert analyst.get("/analyst/plots/qlq_c30/NOPE.svg").status_code == 404
    assert analyst.get("/analyst/plots/nope/PF2.svg").status_code == 404


def test_plots_follow_the_filters_and_mark_provisional_scoring(
    app: Flask, analyst: FlaskClient
) -> None:
    one_arm = parse(analyst.get("/analyst/plots/qlq_c30/FA.svg?arm=control").text)
    assert points(one_arm, 0)
    assert points(one_arm, 1) == []
    gi = analyst.get("/analyst/plots/qlq_gi_net21/GI.svg").text
    assert "plot-note" in gi  # GI.NET21's scale map is not verified
    assert "plot-note" not in analyst.get("/analyst/plots/qlq_c30/FA.svg").text
    page = analyst.get("/analyst/", query_string={"instrument": "qlq_gi_net21"})
    plots = re.findall(r"<svg .*?</svg>", page.text, flags=re.S)
    with app.app_context():
        gi_scales = instrument_registry().get("qlq_gi_net21").scale_codes
    assert len(plots) == len(gi_scales) + 1  # and the completion plot
    for markup in plots:
        parsed = parse(markup)  # every inline plot is well-formed XML
        assert parsed.get("role") == "img"
        assert parsed.get("aria-labelledby")


def test_whole_page_has_every_plot_with_its_numbers(app: Flask, analyst: FlaskClient) -> None:
    page = analyst.get("/analyst/")
    with app.app_context():
        scales = sum(len(i.scale_codes) for i in instrument_registry().instruments.values())
    assert page.text.count('class="analyst-plot"') == scales + 1
    assert page.text.count("<details>") == scales + 1
    assert "Content-Security-Policy" in page.headers
    assert " style=" not in page.text  # the page's CSP forbids inline styles


def test_completion_plot_and_table(app: Flask, analyst: FlaskClient) -> None:
    svg = parse(analyst.get("/analyst/plots/completion.svg").text)
    bars = [g for g in svg.iter(f"{SVG}g") if g.get("class", "").startswith("bar ")]
    # Baseline and month 3 in both arms (month 6 expected too: everyone missed it, 0 %).
    assert len(bars) == 6
    tips = [(g.find(f"{SVG}title").text or "") for g in bars]  # type: ignore[union-attr]
    assert any(tip.endswith("100.0% (4 received of 4 expected)") for tip in tips), tips
    page = analyst.get("/analyst/").text
    with app.app_context():
        assert page.count('class="total"') == len(trial_schedule().timepoints)


def test_month3_compliance_counts(app: Flask) -> None:
    build_data(app)
    client = signed_in(app, ANALYST, "analyst", None, language="en")
    page = client.get("/analyst/", query_string={"timepoint": "month3"})
    table = page.text[page.text.index('class="compliance"') :]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table[: table.index("</table>")], flags=re.S)[1:]
    cells = [re.findall(r'<td class="number">([^<]+)</td>', row) for row in rows]
    # TAE: 4 expected, 3 received; control: 2 and 1; all: 6 and 4 (rate 66.7 %).
    assert [row[:2] for row in cells] == [["4", "3"], ["2", "1"], ["6", "4"]]
    assert cells[2][-1] == "66.7%"
    assert cells[0][5] == "1"  # TAE missed
