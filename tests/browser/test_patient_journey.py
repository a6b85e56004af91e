"""A patient on a phone: open the link, answer, leave, resume elsewhere, submit; offline taps."""

from __future__ import annotations

import re

from flask import Flask
from playwright.sync_api import expect

from pro_app.extensions import db
from pro_app.models import Answer, Assessment, Score
from tests import factories
from tests.browser.conftest import screenshot


def _stored(app: Flask) -> dict[str, int | None]:
    with app.app_context():
        return {f"{a.instrument}-{a.item}": a.value for a in db.session.scalars(db.select(Answer))}


def _value_for(item: int) -> int:
    """A varied but predictable answer for each item (1–4, or 1–7 for the two global items)."""
    return (item * 5) % 7 + 1 if item in (29, 30) else item % 4 + 1


def _answer_visible_items(page) -> list[str]:  # type: ignore[no-untyped-def]
    names = sorted(
        set(page.eval_on_selector_all("input[type=radio]", "els => els.map(e => e.name)"))
    )
    for name in names:
        item = int(name.rsplit("-", 1)[1])
        page.locator(f"input[name='{name}'][value='{_value_for(item)}']").check()
    return names


def test_patient_answers_leaves_resumes_and_submits(app, live_server, phone, browser) -> None:  # type: ignore[no-untyped-def]
    enrolled = factories.enrol(app)
    page = phone.new_page()
    page.goto(live_server + enrolled.path)
    screenshot(page, "patient-01-welcome-it")
    page.click("button[name=action][value=start]")
    page.wait_for_url(re.compile(r"/q/page/1$"))
    assert enrolled.token not in page.url
    screenshot(page, "patient-02-first-page")

    tapped: list[str] = []
    for _ in range(3):  # three pages, then the patient stops
        tapped += _answer_visible_items(page)
        page.click("button[name=action][value=next]")
        page.wait_for_load_state()
    page.close()
    assert set(_stored(app)) == set(tapped)

    # Another phone (or the same one days later): the link resumes on the first unanswered page.
    other = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="it-IT"
    )
    resumed = other.new_page()
    resumed.goto(live_server + enrolled.path)
    resumed.click("button[name=action][value=start]")
    resumed.wait_for_url(re.compile(r"/q/page/4$"))
    screenshot(resumed, "patient-03-resumed")
    resumed.click("button[name=action][value=back]")
    resumed.wait_for_url(re.compile(r"/q/page/3$"))
    checked = resumed.eval_on_selector_all(
        "input:checked", "els => els.map(e => [e.name, Number(e.value)])"
    )
    assert sorted(checked) == [[f"qlq_c30-{n}", _value_for(n)] for n in range(11, 16)]
    resumed.click("button[name=action][value=next]")
    resumed.wait_for_url(re.compile(r"/q/page/4$"))

    while "/q/review" not in resumed.url:
        tapped += _answer_visible_items(resumed)
        if "qlq_c30-29" in tapped[-2:]:
            screenshot(resumed, "patient-04-global-items")
        resumed.click("button[name=action][value=next]")
        resumed.wait_for_load_state()
    screenshot(resumed, "patient-05-review")
    resumed.click("button[name=action][value=submit]")
    resumed.wait_for_url(re.compile(r"/q$"))
    assert "Grazie!" in resumed.content()
    screenshot(resumed, "patient-06-thanks")
    other.close()

    stored = _stored(app)
    assert len(stored) == 51
    for name, value in stored.items():
        assert value == _value_for(int(name.rsplit("-", 1)[1])), name
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(Assessment.timepoint == "baseline")
        )
        assert assessment is not None
        assert assessment.status == "completed"
        scores = {s.scale: s.value for s in db.session.scalars(db.select(Score))}
    from pro_app.instruments.scoring import score_instrument
    from tests.unit.test_scoring_properties import INSTRUMENTS

    expected = score_instrument(INSTRUMENTS["qlq_c30"], {n: _value_for(n) for n in range(1, 31)})
    for scale, result in expected.items():
        assert scores[scale] == result.value


def test_taps_while_offline_are_saved_when_the_connection_returns(app, live_server, phone) -> None:  # type: ignore[no-untyped-def]
    enrolled = factories.enrol(app)
    page = phone.new_page()
    page.goto(live_server + enrolled.path)
    page.click("button[name=action][value=start]")
    page.wait_for_url(re.compile(r"/q/page/1$"))
    page.locator("input[name='qlq_c30-1'][value='2']").check()
    expect(page.locator("#save-state")).to_have_text("Salvato")

    phone.set_offline(True)
    page.locator("input[name='qlq_c30-2'][value='3']").check()
    page.locator("input[name='qlq_c30-3'][value='4']").check()
    expect(page.locator("#save-state")).to_contain_text("Connessione assente")
    screenshot(page, "patient-07-offline")
    assert _stored(app) == {"qlq_c30-1": 2}

    phone.set_offline(False)
    expect(page.locator("#save-state")).to_have_text("Salvato", timeout=15000)
    screenshot(page, "patient-08-back-online")
    assert _stored(app) == {"qlq_c30-1": 2, "qlq_c30-2": 3, "qlq_c30-3": 4}
