"""Answering through the test client: save on every move, blanks, resume, submit, forged input."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func

from pro_app.extensions import db
from pro_app.models import Answer, Assessment, AuditEvent, Score
from tests import factories
from tests.factories import csrf_token, form_key


def _answers(app: Flask) -> dict[str, int | None]:
    with app.app_context():
        return {f"{a.instrument}-{a.item}": a.value for a in db.session.scalars(db.select(Answer))}


def _baseline(app: Flask) -> Assessment:
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(Assessment.timepoint == "baseline")
        )
        assert assessment is not None
        db.session.expunge(assessment)
        return assessment


def _post_page(
    client: FlaskClient,
    html: str,
    number: int,
    answers: dict[str, str],
    action: str = "next",
    **extra: str,
):  # type: ignore[no-untyped-def]
    data = {**factories.hidden_fields(html), "action": action}
    return client.post(f"/q/page/{number}", data={**data, **answers, **extra})


def _all_items(page_html: str) -> list[str]:
    import re

    return sorted(set(re.findall(r'type="radio" name="([a-z0-9_]+-\d+)"', page_html)))


def _answer_everything(
    client: FlaskClient, first_page: str, value: str = "2", number: int = 1
) -> str:
    """Press Continue on every page from this one, every item answered; returns the review."""
    html = first_page
    while True:
        names = _all_items(html)
        response = _post_page(client, html, number, dict.fromkeys(names, value))
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        html = client.get(location).text
        if location == "/q/review":
            return html
        number += 1


def test_first_page_shows_radio_groups_demo_notice_and_progress(
    app: Flask, client: FlaskClient
) -> None:
    html = factories.open_link(client, factories.enrol(app))
    assert _all_items(html) == [f"qlq_c30-{n}" for n in (1, 2, 3, 4, 5)]
    assert "<fieldset" in html
    assert "<legend>" in html
    assert "Testo dimostrativo" in html
    assert "Domande 1–5 di 51" in html
    assert '<progress max="51" value="0"' in html


def test_next_saves_the_page_and_moves_on(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    response = _post_page(client, html, 1, {f"qlq_c30-{n}": "2" for n in range(1, 6)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/q/page/2"
    assert _answers(app) == {f"qlq_c30-{n}": 2 for n in range(1, 6)}
    assert _baseline(app).status == "in_progress"


def test_blank_items_are_confirmed_once_then_stored_as_skipped(
    app: Flask, client: FlaskClient
) -> None:
    html = factories.open_link(client, factories.enrol(app))
    partial = {"qlq_c30-1": "1", "qlq_c30-2": "3", "qlq_c30-3": "4"}
    warned = _post_page(client, html, 1, partial)
    assert warned.status_code == 200
    assert "In questa pagina non ha risposto a 2 domande." in warned.text
    assert 'name="confirm_blanks" value="1"' in warned.text
    assert _answers(app) == {"qlq_c30-1": 1, "qlq_c30-2": 3, "qlq_c30-3": 4}  # kept already
    confirmed = _post_page(client, warned.text, 1, partial)
    assert confirmed.headers["Location"] == "/q/page/2"
    stored = _answers(app)
    assert stored["qlq_c30-4"] is None  # an explicit skip, not absent
    assert stored["qlq_c30-5"] is None
    assert "qlq_c30-6" not in stored  # never shown


def test_back_and_save_keep_answers_without_skipping(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    _post_page(client, html, 1, {f"qlq_c30-{n}": "2" for n in range(1, 6)})
    page2 = client.get("/q/page/2").text
    back = _post_page(client, page2, 2, {"qlq_c30-6": "3"}, action="back")
    assert back.headers["Location"] == "/q/page/1"
    page2 = client.get("/q/page/2").text
    assert 'value="3" checked' in page2
    saved = _post_page(client, page2, 2, {"qlq_c30-7": "4"}, action="save")
    assert saved.headers["Location"] == "/q/saved"
    assert "Può riprendere più tardi con lo stesso link" in client.get("/q/saved").text
    stored = _answers(app)
    assert stored["qlq_c30-6"] == 3
    assert stored["qlq_c30-7"] == 4
    assert "qlq_c30-8" not in stored


def test_resume_from_another_device_lands_on_the_first_unanswered_page(
    app: Flask, client: FlaskClient
) -> None:
    enrolled = factories.enrol(app)
    html = factories.open_link(client, enrolled)
    _post_page(client, html, 1, {f"qlq_c30-{n}": "1" for n in range(1, 6)})
    phone_two = app.test_client()
    resumed = factories.open_link(phone_two, enrolled)
    assert "Domande 6–10 di 51" in resumed
    first = phone_two.get("/q/page/1").text
    assert first.count("checked") == 5


def test_full_questionnaire_submit_scores_and_thanks(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    review = _answer_everything(client, html, value="1")
    assert "Ha risposto a tutte le 51 domande." in review
    sent = client.post(
        "/q/review",
        data={"csrf_token": csrf_token(review), "form_key": form_key(review), "action": "submit"},
    )
    assert sent.headers["Location"] == "/q"
    thanks = client.get("/q")
    assert "Grazie!" in thanks.text
    assert "checked" not in thanks.text
    assessment = _baseline(app)
    assert assessment.status == "completed"
    assert assessment.completed_at is not None
    assert assessment.text_packs == {
        "qlq_c30": "demo 2026.1 (it)",
        "qlq_gi_net21": "demo 2026.1 (it)",
    }
    with app.app_context():
        scores = {s.scale: s.value for s in db.session.scalars(db.select(Score))}
    assert scores["PF2"] == 100
    assert scores["QL2"] == 0
    assert scores["SUMSC"] == 100
    # The answers are never shown again: pages send the patient back to the thank-you page.
    assert client.get("/q/page/1").headers["Location"] == "/q"


def test_replayed_submit_stores_one_submission(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    review = _answer_everything(client, html)
    data = {"csrf_token": csrf_token(review), "form_key": form_key(review), "action": "submit"}
    for _ in range(3):
        response = client.post("/q/review", data=data)
        assert response.status_code in (302, 200)
    with app.app_context():
        submissions = db.session.scalar(
            db.select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "assessment.submit")
        )
        scores = db.session.scalar(db.select(func.count()).select_from(Score))
    assert submissions == 1
    assert scores == 16 + 10  # QLQ-C30 15 scales + SUMSC, GI.NET21 10 scales


def test_review_lists_unanswered_items_with_links(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    warned = _post_page(client, html, 1, {"qlq_c30-1": "2"}).text
    _post_page(client, warned, 1, {"qlq_c30-1": "2"})
    review = _answer_everything(client, client.get("/q/page/2").text, number=2)
    assert "4 domande sono senza risposta" in review
    assert 'href="/q/page/1#qlq_c30-2"' in review
    assert 'href="/q/page/1#qlq_c30-5"' in review


def test_forged_answers_are_refused_and_change_nothing(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    for forged in (
        {"qlq_c30-1": "9"},
        {"qlq_c30-29": "3"},
        {"qlq_c30-1": "1; DROP"},
        {"qlq_gi_net21-31": "2"},
    ):
        response = _post_page(client, html, 1, {"qlq_c30-2": "2", **forged})
        assert response.status_code == 400
        assert "risposta" in response.text
    missing_key = client.post(
        "/q/page/1", data={"csrf_token": csrf_token(html), "qlq_c30-1": "2", "action": "next"}
    )
    assert missing_key.status_code == 400
    assert "non è più aggiornata" in missing_key.text
    assert _answers(app) == {}


def test_another_patients_page_key_is_refused(app: Flask, client: FlaskClient) -> None:
    other = app.test_client()
    other_html = factories.open_link(other, factories.enrol(app, "MI01-0002"))
    html = factories.open_link(client, factories.enrol(app, "MI01-0001"))
    response = client.post(
        "/q/page/1",
        data={
            "csrf_token": csrf_token(html),
            "form_key": form_key(other_html),
            "qlq_c30-1": "2",
            "action": "next",
        },
    )
    assert response.status_code == 400
    assert _answers(app) == {}


def test_expired_session_keeps_the_posted_answers(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    client.delete_cookie("session")  # the session cookie is gone (expired, browser restarted)
    answers = {f"qlq_c30-{n}": "3" for n in range(1, 6)}
    kept = _post_page(client, html, 1, answers)
    assert kept.status_code == 200
    assert "le risposte di questa pagina sono state conservate" in kept.text
    assert kept.text.count('value="3" checked') == 5
    again = _post_page(client, kept.text, 1, answers)
    assert again.headers["Location"] == "/q/page/2"
    assert _answers(app) == {f"qlq_c30-{n}": 3 for n in range(1, 6)}


def test_stale_csrf_token_keeps_the_posted_answers(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    data = {"csrf_token": "stale", "form_key": form_key(html), "action": "next", "qlq_c30-1": "4"}
    kept = client.post("/q/page/1", data=data)
    assert kept.status_code == 200
    assert 'value="4" checked' in kept.text
    assert _answers(app) == {}


def test_tampered_form_key_without_session_asks_to_reopen_the_link(
    app: Flask, client: FlaskClient
) -> None:
    factories.enrol(app)
    response = client.post("/q/page/1", data={"form_key": "forged", "qlq_c30-1": "2"})
    assert response.status_code == 401
    assert "Apra di nuovo il Suo link personale" in response.text
    assert _answers(app) == {}


def test_autosave_saves_one_tap(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    headers = {"X-CSRFToken": csrf_token(html)}
    payload = {"form_key": form_key(html), "name": "qlq_c30-2", "value": "3"}
    saved = client.post("/q/answer", json=payload, headers=headers)
    assert saved.get_json() == {"status": "saved"}
    assert _answers(app) == {"qlq_c30-2": 3}
    refused = client.post("/q/answer", json={**payload, "value": "5"}, headers=headers)
    assert refused.status_code == 400
    no_csrf = client.post("/q/answer", json={**payload, "value": "1"})
    assert no_csrf.status_code == 400
    assert _answers(app) == {"qlq_c30-2": 3}
    stranger = app.test_client().post("/q/answer", json=payload, headers=headers)
    assert stranger.status_code == 401


def test_english_patient_sees_english_pages(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app, language="en"))
    assert '<html lang="en">' in html
    assert "Demo wording" in html
    assert "Questions 1–5 of 51" in html


def test_between_windows_the_link_shows_the_next_date(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, days_since_randomization=30)
    page = factories.open_link(client, enrolled)
    assert "Al momento non c'è nessun questionario da compilare" in page
    assert "Mese 3" in page


def test_withdrawn_patient_sees_that_participation_ended(app: Flask, client: FlaskClient) -> None:
    from datetime import date

    from pro_app.models import Patient

    enrolled = factories.enrol(app)
    with app.app_context():
        patient = db.session.get(Patient, enrolled.patient_id)
        assert patient is not None
        patient.status = "withdrawn"
        patient.withdrawn_on = date.today()
        db.session.commit()
    assert "Non ci sono altri questionari" in factories.open_link(client, enrolled)
