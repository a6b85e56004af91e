"""axe-core finds no WCAG 2.1 A/AA violation on any patient page, in Italian and in English."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import Flask

from pro_app.extensions import db
from pro_app.models import Patient
from tests import factories
from tests.browser.conftest import AXE, PHONE, screenshot

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


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


def _no_horizontal_scroll_at_200_percent_text(page) -> bool:  # type: ignore[no-untyped-def]
    page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    fits = page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
    return bool(fits)


@pytest.fixture
def checked_context(browser):  # type: ignore[no-untyped-def]
    def make(locale: str):  # type: ignore[no-untyped-def]
        # bypass_csp lets the test inject axe-core; the app's own pages never need it.
        return browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, locale=locale, bypass_csp=True
        )

    return make


@pytest.mark.parametrize("language", ["it", "en"])
def test_every_patient_page_passes_axe(  # type: ignore[no-untyped-def]
    app: Flask, live_server: str, checked_context, language: str
) -> None:
    context = checked_context("it-IT" if language == "it" else "en-GB")
    page = context.new_page()
    seen: dict[str, list[str]] = {}
    too_wide: list[str] = []

    def check(name: str) -> None:
        page.wait_for_load_state()
        seen[name] = _axe_violations(page)
        if not _no_horizontal_scroll_at_200_percent_text(page):
            too_wide.append(name)
        screenshot(page, f"a11y-{language}-{name}")

    answering = factories.enrol(app, f"MI01-{language.upper()}01", language=language)
    page.goto(live_server + answering.path)
    check("welcome")
    page.click("button[name=action][value=start]")
    page.wait_for_url(re.compile(r"/q/page/1$"))
    check("page")
    page.locator("input[name='qlq_c30-1'][value='2']").check()
    page.click("button[name=action][value=next]")
    check("blank-warning")
    page.click("button[name=action][value=save]")
    check("saved")
    page.goto(live_server + "/q/page/1")
    context.clear_cookies()
    page.click("button[name=action][value=next]")
    assert page.locator("p[role=alert]").count() == 1  # "your answers on this page are kept"
    check("session-restored")
    page.goto(live_server + "/q/review")
    check("review")
    page.click("button[name=action][value=submit]")
    page.wait_for_url(re.compile(r"/q$"))
    check("thanks")
    page.click("form.leave button")
    check("left")
    page.goto(live_server + "/q")
    check("session-needed")
    page.goto(live_server + "/p/unknown-token")
    page.click("button[name=action][value=start]")
    check("link-invalid")

    waiting = factories.enrol(
        app, f"MI01-{language.upper()}02", language=language, days_since_randomization=30
    )
    page.goto(live_server + waiting.path)
    page.click("button[name=action][value=start]")
    check("waiting")

    ended = factories.enrol(app, f"MI01-{language.upper()}03", language=language)
    with app.app_context():
        patient = db.session.get(Patient, ended.patient_id)
        assert patient is not None
        patient.status, patient.withdrawn_on = "withdrawn", date.today()
        db.session.commit()
    page.goto(live_server + ended.path)
    page.click("button[name=action][value=start]")
    check("finished")
    context.close()

    assert {name: found for name, found in seen.items() if found} == {}
    assert too_wide == []
    assert len(seen) == 12
