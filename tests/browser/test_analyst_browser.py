"""The analyst page in real Chromium, on a laptop and a phone: axe-clean, downloads work,
plots readable and printable (screenshots under tests/artifacts/screenshots/)."""

from __future__ import annotations

import random
import re
from datetime import timedelta

from flask import Flask
from playwright.sync_api import expect

from pro_app.extensions import db
from pro_app.instruments.model import Item
from pro_app.models import Patient
from pro_app.models.types import utcnow
from pro_app.services.definitions import trial_schedule
from pro_app.services.demo import DEMO_PASSWORD, load_demo
from tests import factories
from tests.browser.conftest import AXE, PHONE, SCREENSHOTS, screenshot
from tests.web.test_analyst_pages import complete

LAPTOP = {"width": 1280, "height": 900}
ANALYST = "analista@demo.invalid"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Share of each time point completed, as in a real trial: fewer forms as time goes on.
COMPLETION = {"baseline": 0.95, "month3": 0.8, "month6": 0.7}


def _axe_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG_TAGS,
    )
    return [
        f"{violation['id']}: {violation['help']} ({len(violation['nodes'])} nodes: "
        f"{violation['nodes'][0]['target']})"
        for violation in result["violations"]
    ]


def _trial_data(app: Flask) -> None:
    """The demo, plus 24 patients followed to month 6 so that every plot has something to say."""
    with app.app_context():
        for _line in load_demo(utcnow()):
            pass
        db.session.commit()
    rng = random.Random(2026)
    enrolled_at = utcnow() - timedelta(days=200)
    for number in range(1, 25):
        code = f"MI01-{number:04d}"
        patient_id = factories.enrol(app, code, now=enrolled_at).patient_id
        arm = "tae" if number % 2 else "control"
        burden = rng.uniform(0.15, 0.6)
        with app.app_context():
            patient = db.session.get(Patient, patient_id)
            assert patient is not None
            patient.arm = arm
            for timepoint in trial_schedule().timepoints:
                if rng.random() > COMPLETION[timepoint.code]:
                    continue
                # The TAE arm slowly improves; the control arm slowly worsens.
                burden = min(0.9, max(0.05, burden + (-0.06 if arm == "tae" else 0.05)))

                def pick(item: Item, level: float = burden) -> int:
                    scale = item.response_scale
                    spread = scale.max - scale.min
                    share = 1 - level if spread > 3 else level  # global items: high = good
                    value = round(scale.min + share * spread + rng.uniform(-1, 1))
                    return min(scale.max, max(scale.min, value))

                at = enrolled_at + timedelta(days=timepoint.target_day + rng.randint(-3, 5))
                complete(patient_id, timepoint.code, pick, at)
            db.session.commit()


def _sign_in(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server}/auth/sign-in")
    page.fill("#email", ANALYST)
    page.fill("#password", DEMO_PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(re.compile(r"/analyst/$"))  # analysts land on their page


def test_analyst_page_on_a_laptop_and_a_phone(  # type: ignore[no-untyped-def]
    app: Flask, live_server: str, browser
) -> None:
    _trial_data(app)
    # bypass_csp lets the test inject axe-core; the app's own pages never need it.
    laptop = browser.new_context(
        viewport=LAPTOP, locale="it-IT", bypass_csp=True, accept_downloads=True
    )
    page = laptop.new_page()
    _sign_in(page, live_server)
    expect(page.locator("h1")).to_have_text("Analisi")
    plots = page.locator("svg.analyst-plot")
    expect(plots.first).to_be_visible()
    assert plots.count() > 20
    expect(page.locator("table.compliance tr.total")).to_have_count(3)
    screenshot(page, "analyst-laptop")
    # Full-page shots are tall; these show the parts at their real size.
    page.screenshot(path=str(SCREENSHOTS / "analyst-laptop-top.png"))
    page.locator("#compliance").screenshot(path=str(SCREENSHOTS / "analyst-laptop-compliance.png"))
    page.locator("#scores-qlq_c30").screenshot(path=str(SCREENSHOTS / "analyst-laptop-c30.png"))
    assert _axe_violations(page) == []

    with page.expect_download() as scores:
        page.click("a[href^='/analyst/export/scores.csv']")
    assert re.fullmatch(r"scores-\d{8}-\d{4}\.csv", scores.value.suggested_filename)
    with page.expect_download() as plot:
        page.click("#plot-qlq_c30-QL2-figure a[download]")
    assert re.fullmatch(r"qlq_c30-QL2-\d{8}-\d{4}\.svg", plot.value.suggested_filename)

    # Filtered: one arm, and the page says which filters are applied.
    page.select_option("#arm", "tae")
    page.click(".analyst-filters button[type=submit]")
    page.wait_for_url(re.compile(r"arm=tae"))
    expect(page.locator("#arm")).to_have_value("tae")
    expect(page.locator("#plot-qlq_c30-QL2-figure .legend")).to_have_count(1)
    # Wrong filters: the message sits next to its field, and the page is still accessible.
    page.goto(f"{live_server}/analyst/?arm=placebo")
    expect(page.locator("#arm-error")).to_be_visible()
    assert _axe_violations(page) == []
    # A plot on its own, as the downloaded file shows in any browser or editor.
    page.goto(f"{live_server}/analyst/plots/qlq_gi_net21/GI.svg")
    page.screenshot(path=str(SCREENSHOTS / "analyst-plot-file.png"))  # no full page of an SVG
    page.goto(f"{live_server}/analyst/")

    page.emulate_media(media="print")
    page.set_viewport_size({"width": 1032, "height": 730})  # A4 landscape less margins, 96 dpi
    screenshot(page, "analyst-print")
    assert page.locator(".staff-nav").is_hidden()
    assert page.locator("#downloads").is_hidden()
    tops = page.eval_on_selector_all(
        "#scores-qlq_c30 figure.plot",
        "(figures) => figures.slice(0, 4).map(f => f.getBoundingClientRect().top)",
    )
    assert len(set(tops[:3])) == 1, "three plots per printed row"
    assert tops[3] > tops[0]
    laptop.close()

    phone = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="it-IT",
        bypass_csp=True,
    )
    small = phone.new_page()
    _sign_in(small, live_server)
    expect(small.locator("svg.analyst-plot").first).to_be_visible()
    fits = small.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert fits, "the page must not scroll sideways on a phone"
    screenshot(small, "analyst-phone")
    small.screenshot(path=str(SCREENSHOTS / "analyst-phone-top.png"))
    small.locator("#downloads").screenshot(path=str(SCREENSHOTS / "analyst-phone-downloads.png"))
    small.locator("#compliance").screenshot(path=str(SCREENSHOTS / "analyst-phone-compliance.png"))
    small.locator("#plot-qlq_c30-QL2-figure").screenshot(
        path=str(SCREENSHOTS / "analyst-phone-plot.png")
    )
    assert _axe_violations(small) == []
    phone.close()
