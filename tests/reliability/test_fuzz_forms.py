"""Hostile input in every form (staff, admin, analyst, sign-in, language, patient pages).

Each form is read from the page that shows it, posted as a browser would (valid CSRF token,
its own defaults and plausible values), then one to three fields are replaced by random,
oversized, wrongly typed or malicious values. Whatever arrives: never a 5xx, a refusal always
says why, markup never comes back unescaped, and nothing invalid is ever stored.

Examples per form: 40, derandomized so that every run repeats them; PRO_FUZZ_EXAMPLES=1000 runs
a long exploration with fresh examples.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, String, Text

from pro_app.extensions import db
from pro_app.models import (
    Answer,
    AnswerCorrection,
    Assessment,
    Patient,
    PatientContact,
    Site,
    StaffUser,
)
from pro_app.models.types import utcnow
from pro_app.protocol.eligibility import load_checklist
from pro_app.services import answering, audit
from pro_app.services.accounts import SITE_CODE
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.enrolment import STUDY_CODE
from tests import factories
from tests.conftest import make_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = load_checklist(PROJECT_ROOT / "questionnaires" / "eligibility.yaml")
ROME = ZoneInfo("Europe/Rome")

# make test: 40 examples per form, the same ones every run. PRO_FUZZ_EXAMPLES=1000 (say) for a
# long exploration with fresh random examples each time.
EXAMPLES = os.environ.get("PRO_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(EXAMPLES or 40),
    derandomize=EXAMPLES is None,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values people type by mistake and values attackers send on purpose.
MALICIOUS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; DROP TABLE patient; --",
    "1 OR 1=1",
    '=HYPERLINK("http://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\x00",
    "MI01-0001\x00",
    "a\x00b",
    "\x1b[31m",
    "\r\n\r\nX-Injected: 1",
    "\u202egnp.exe",
    "abc\u2066def",
    "\ud800",
    "\udfff\ud800",
    "\ufeff",
    "a\u200bb",
    "e\u0301",
    "ＭＩ０１－０００１",
    "3٤٧١٢٣٤٥٦٧",
    "²",
    "٣",
    "３４７１２３４５６７",
    "İstanbul",
    "ß",
    "😀" * 50,
    "{{7*7}}",
    "${7*7}",
    "%s%s%s%n",
    "../../../../etc/passwd",
    "javascript:alert(1)",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
    "0",
    "-1",
    "1.5",
    "1e309",
    "NaN",
    "99999999999999999999999",
    "-99999999999999999999999",
    "true",
    "null",
    "[]",
    "{}",
    "",
    " ",
    "\t",
    "0000-00-00",
    "0001-01-01",
    "9999-12-31",
    "31/02/2025",
    "2025-13-45",
    "1900",
    "2100",
    "A" * 255,
    "A" * 5_000,
    "é" * 20_000,
]
hostile_text = st.one_of(
    st.sampled_from(MALICIOUS),
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.integers().map(str),
    st.dates().map(date.isoformat),
    st.dates().map(lambda day: day.strftime("%d/%m/%Y")),
)
# What may not be echoed unescaped into any page.
UNESCAPED_MARKUP = ("<script>alert(", "<img src=x onerror")
ALLOWED_STATUSES = {200, 302, 303, 400, 401, 403, 404, 405, 409, 413, 429}
UNREADABLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
)


@dataclass
class Form:
    """One form as the page shows it: where it goes and what a browser would send."""

    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    radios: dict[str, list[str]] = field(default_factory=dict)
    selects: dict[str, list[str]] = field(default_factory=dict)
    checkboxes: dict[str, str] = field(default_factory=dict)
    typed: list[str] = field(default_factory=list)  # fields a person types into
    buttons: list[tuple[str, str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        named = [name for name, _ in self.fields] + list(self.radios) + list(self.selects)
        named += list(self.checkboxes)
        return sorted(set(named) | {name for name, _ in self.buttons})


class FormParser(HTMLParser):
    """Every <form> of a page with its inputs, selects, textareas and buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._form)
        form = self._form
        if form is None or (not a.get("name") and tag != "option"):
            return
        name = a.get("name", "")
        if tag == "input":
            kind = a.get("type", "text")
            if kind == "radio":
                form.radios.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif kind == "checkbox":
                form.checkboxes[name] = a.get("value", "y")
                if "checked" in a:
                    form.fields.append((name, a.get("value", "y")))
            elif kind == "submit":
                form.buttons.append((name, a.get("value", "")))
            else:
                form.fields.append((name, a.get("value", "")))
                if kind != "hidden":
                    form.typed.append(name)
        elif tag == "button":
            form.buttons.append((name, a.get("value", "")))
        elif tag == "select":
            self._select = name
            form.selects[name] = []
        elif tag == "option" and self._select is not None:
            form.selects[self._select].append(a.get("value", ""))
            if "selected" in a:
                form.fields.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = name, []
            form.typed.append(name)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._form is not None and self._textarea is not None:
            self._form.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None


def forms_on(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def today() -> date:
    return utcnow().astimezone(ROME).date()


def plausible(name: str, form: Form, serial: int) -> str | None:
    """A value the form should accept, for fields the page leaves empty."""
    if name.startswith("eligibility_"):
        kinds = {criterion.code: criterion.kind for criterion in CHECKLIST.criteria}
        return "yes" if kinds.get(name.removeprefix("eligibility_")) == "inclusion" else "no"
    values: dict[str, str] = {
        "study_code": f"MI01-{9000 + serial:04d}",
        "randomized_on": (today() - timedelta(days=2)).isoformat(),
        "on": (today() - timedelta(days=1)).isoformat(),
        "new_date": (today() - timedelta(days=3)).isoformat(),
        "paper_completed_on": today().isoformat(),
        "reason": "Motivo indicato dal personale",
        "email": f"persona{serial}@example.org",
        "mobile": "347 123 4567",
        "name": f"Nome Cognome {serial}",
        "code": f"S{serial}",
        "password": factories.STAFF_PASSWORD,
        "confirm": factories.STAFF_PASSWORD,
        "birth_year": "1956",
        "role": "analyst",  # needs no site
    }
    if name in values:
        return values[name]
    if name in form.checkboxes:
        return form.checkboxes[name]  # confirmation boxes: ticked
    options = form.radios.get(name) or form.selects.get(name)
    return options[0] if options else None


def base_pairs(form: Form, serial: int) -> list[tuple[str, str]]:
    """What a careful user would send: the page's values, empty fields filled in plausibly."""
    sent = dict(form.fields)
    for name in form.names:
        if not sent.get(name, "").strip() and name not in dict(form.buttons):
            value = plausible(name, form, serial)
            if value is not None:
                sent[name] = value
    pairs = list(sent.items())
    if form.buttons and form.buttons[0][0]:
        pairs.append(form.buttons[0])
    return pairs


@st.composite
def hostile_pairs(draw: st.DrawFn, form: Form, serial: int) -> list[tuple[str, str]]:
    """The form as a careful user sends it, then broken in one to three ways."""
    pairs = base_pairs(form, serial)
    names = form.names or ["field"]
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["replace", "replace", "replace", "drop", "repeat", "extra"]))
        name = draw(st.sampled_from(names))
        value = draw(hostile_text)
        if how == "replace":
            pairs = [(n, v) for n, v in pairs if n != name] + [(name, value)]
        elif how == "drop":
            pairs = [(n, v) for n, v in pairs if n != name]
        elif how == "repeat":
            pairs.append((name, value))
        else:
            pairs.append((draw(st.sampled_from(["", "x", "qlq_c30-999", "a" * 300])), value))
    return pairs


# Sent in every typed field of every form, whatever the random examples draw: each must be
# refused, or stored only if valid.
MUST_REFUSE = ["a\x00b", "a\x1bb", "\u202eab", "a\ud800b", "A" * 300, "A" * 1_100]
# ... and in the first few choice fields: digits int() cannot read, and numbers off the scale.
NOT_A_CHOICE = ["²", "٣", "99", "-1", "1\x00"]


def sweep(form: Form, serial: int) -> list[list[tuple[str, str]]]:
    """The careful user's form with one field replaced by each value it must refuse."""
    base = base_pairs(form, serial)
    choices = [*form.radios, *form.selects][:3]
    replacements = [(name, value) for name in form.typed for value in MUST_REFUSE]
    replacements += [(name, value) for name in choices for value in NOT_A_CHOICE]
    return [
        [(n, v) for n, v in base if n != name] + [(name, value)] for name, value in replacements
    ]


def with_examples(test: Any, examples: list[list[tuple[str, str]]]) -> Any:
    for pairs in examples:
        test = example(pairs=pairs)(test)
    return test


def encoded(pairs: list[tuple[str, str]]) -> str:
    # surrogatepass: a lone surrogate goes out as the invalid UTF-8 bytes an attacker would send.
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


def send(client: FlaskClient, form: Form, pairs: list[tuple[str, str]]) -> Any:
    if form.method == "get":
        return client.get(f"{form.action}?{encoded(pairs)}")
    return client.post(
        form.action, data=encoded(pairs), content_type="application/x-www-form-urlencoded"
    )


def assert_handled(response: Any) -> None:
    """No 5xx; a refusal says why; markup never comes back unescaped."""
    status = response.status_code
    assert status in ALLOWED_STATUSES, status
    body = response.get_data(as_text=True)
    for markup in UNESCAPED_MARKUP:
        assert markup not in body
    if status >= 400 and status not in (401, 404, 405, 429):
        assert 'role="alert"' in body or 'class="field-error"' in body, body[:3000]


def garbage(app: Flask) -> list[str]:
    """Everything stored that the app's own rules should have refused."""
    found: list[str] = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(table.select()).mappings():
                for column in table.columns:
                    found += _bad_value(table.name, column, row[column.name])
        found += _bad_domain_values()
        db.session.rollback()
    return found


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _bad_value(table: str, column: Any, value: object) -> list[str]:
    where = f"{table}.{column.name}"
    problems = []
    if isinstance(column.type, String | Text | JSON) and value is not None:
        for text in _strings(value):
            if UNREADABLE.search(text):
                problems.append(f"{where}: control character in {text!r:.60}")
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length is not None and len(value) > length:
            problems.append(f"{where}: {len(value)} characters, more than {length}")
    day = value.date() if isinstance(value, datetime) else value
    if isinstance(day, date) and not date(2000, 1, 1) <= day <= today() + timedelta(1100):
        problems.append(f"{where}: implausible date {day}")
    return problems


def _bad_domain_values() -> list[str]:
    problems = []
    registry = instrument_registry()
    arms = {arm.code for arm in trial_schedule().arms}
    for answer in db.session.scalars(db.select(Answer)):
        scale = registry.get(answer.instrument).item(answer.item).response_scale
        if answer.value is not None and not scale.min <= answer.value <= scale.max:
            problems.append(f"answer {answer.instrument}-{answer.item} = {answer.value}")
    for correction in db.session.scalars(db.select(AnswerCorrection)):
        scale = registry.get(correction.instrument).item(correction.item).response_scale
        if correction.new_value is not None and not scale.min <= correction.new_value <= scale.max:
            problems.append(f"correction to {correction.new_value}")
        if not correction.reason.strip() or "<" in correction.reason:
            problems.append(f"correction reason {correction.reason!r:.60}")
    for patient in db.session.scalars(db.select(Patient)):
        if not STUDY_CODE.fullmatch(patient.study_code):
            problems.append(f"study code {patient.study_code!r}")
        if patient.arm not in arms:
            problems.append(f"arm {patient.arm!r}")
        if not today() - timedelta(400) <= patient.randomized_on <= today():
            problems.append(f"randomized on {patient.randomized_on}")
        for day in (patient.withdrawn_on, patient.died_on):
            if day is not None and not patient.randomized_on <= day <= today():
                problems.append(f"withdrawal or death on {day}")
        try:
            ZoneInfo(patient.timezone)
        except (ValueError, KeyError):
            problems.append(f"time zone {patient.timezone!r}")
    for contact in db.session.scalars(db.select(PatientContact)):
        if contact.mobile is not None and not re.fullmatch(r"\+393[0-9]{8,9}", contact.mobile):
            problems.append(f"mobile {contact.mobile!r}")
        if contact.email is not None and not re.fullmatch(r"[!-~]+@[A-Za-z0-9.-]+", contact.email):
            problems.append(f"e-mail {contact.email!r}")
    for site in db.session.scalars(db.select(Site)):
        if not SITE_CODE.fullmatch(site.code) or "<" in site.name or not site.name.strip():
            problems.append(f"site {site.code!r} {site.name!r}")
    for user in db.session.scalars(db.select(StaffUser)):
        if not re.fullmatch(r"[!-~]+@[A-Za-z0-9.-]+", user.email) or "<" in user.name:
            problems.append(f"staff {user.email!r} {user.name!r}")
    for assessment in db.session.scalars(db.select(Assessment)):
        paper_on = assessment.paper_completed_on
        if paper_on is not None and paper_on > today():
            problems.append(f"paper form dated {paper_on}")
    return problems


# Every form-posting route, the role that uses it and the page that shows its form.
# (rule, role, page); ids are filled from the world the test builds.
FORM_ROUTES = [
    ("/auth/sign-in", "anonymous", "/auth/sign-in"),
    ("/auth/sign-out", "investigator", "/staff/worklist"),
    ("/language", "anonymous", "/"),
    ("/staff/enrol", "investigator", "/staff/enrol"),
    ("/staff/patients/<int:patient_id>/send-link", "investigator", "/staff/patients/{open}/link"),
    (
        "/staff/patients/<int:patient_id>/reissue-link",
        "investigator",
        "/staff/patients/{open}/link",
    ),
    ("/staff/patients/<int:patient_id>/reminders", "investigator", None),
    ("/staff/patients/<int:patient_id>/withdraw", "investigator", None),
    ("/staff/patients/<int:patient_id>/death", "investigator", None),
    ("/staff/patients/<int:patient_id>/randomization", "investigator", None),
    ("/staff/assessments/<int:assessment_id>/not-done", "investigator", None),
    ("/staff/assessments/<int:assessment_id>/paper", "investigator", None),
    (
        "/staff/assessments/<int:assessment_id>/correct",
        "investigator",
        "/staff/assessments/{completed_assessment}/correct?item=qlq_c30-3",
    ),
    ("/staff/assessments/<int:assessment_id>/tablet", "investigator", "/staff/patients/{open}"),
    ("/staff/admin/accounts", "admin", None),
    ("/staff/admin/accounts/<int:user_id>", "admin", None),
    (
        "/staff/admin/accounts/<int:user_id>/password",
        "admin",
        "/staff/admin/accounts/{user}",
    ),
    (
        "/staff/admin/accounts/<int:user_id>/deactivate",
        "admin",
        "/staff/admin/accounts/{user}",
    ),
    (
        "/staff/admin/accounts/<int:user_id>/reactivate",
        "admin",
        "/staff/admin/accounts/{inactive_user}",
    ),
    (
        "/staff/admin/accounts/<int:user_id>/unlock",
        "admin",
        "/staff/admin/accounts/{locked_user}",
    ),
    ("/staff/admin/sites", "admin", None),
    ("/analyst/api-tokens", "analyst", None),
    ("/analyst/api-tokens/<int:token_id>/revoke", "analyst", "/analyst/api-tokens"),
    ("/p/<token>", "patient", "/p/{token}"),
    ("/q/page/<int:number>", "patient", "/q/page/1"),
    ("/q/review", "patient", "/q/review"),
    ("/q/leave", "patient", "/q/saved"),
]
# Filter forms sent by GET: (page, role).
FILTER_PAGES = [
    ("/analyst/", "analyst"),
    ("/staff/worklist", "investigator"),
    ("/staff/audit", "investigator"),
]
# POST routes fuzzed elsewhere: JSON bodies and the API (test_fuzz_json.py).
JSON_ROUTES = {"/q/answer", "/api/v1/", "/api/v1/<path:_rest>"}


@dataclass
class World:
    """Patients and accounts in every state a form needs, and a signed-in client per role."""

    app: Flask
    ids: dict[str, object]
    clients: dict[str, FlaskClient]
    serial: Iterator[int]


@pytest.fixture
def app_config(database_uri: str) -> dict[str, Any]:
    return make_config(database_uri, RATELIMIT_ENABLED=False)


_serials = itertools.count(1)


def build_world(app: Flask) -> World:
    """A patient with an open questionnaire, one with a completed one, colleagues, clients."""
    n = next(_serials)
    open_one = factories.enrol(
        app, f"MI01-{n:04d}A", mobile="3471234567", days_since_randomization=2
    )
    done = factories.enrol(app, f"MI01-{n:04d}B", days_since_randomization=2)
    with app.app_context():
        completed = db.session.scalar(
            db.select(Assessment).where(Assessment.patient_id == done.patient_id)
        )
        open_assessment = db.session.scalar(
            db.select(Assessment).where(Assessment.patient_id == open_one.patient_id)
        )
        assert completed is not None
        assert open_assessment is not None
        pages = answering.pages_for(completed)
        for page in pages:
            answering.save_page(
                completed,
                page,
                dict.fromkeys(page.field_names, "1"),
                skip_blanks=False,
                now=utcnow(),
                actor=audit.SYSTEM,
                mode="web",
            )
        answering.submit(completed, utcnow(), audit.SYSTEM)
        db.session.commit()
        ids: dict[str, object] = {
            "open": open_one.patient_id,
            "completed": done.patient_id,
            "open_assessment": open_assessment.id,
            "completed_assessment": completed.id,
            "token": open_one.token,
            "n": n,
        }
    emails = {role: f"{role}{n}@example.org" for role in ("investigator", "admin", "analyst")}
    ids["user"] = factories.staff_user(app, f"colleague{n}@example.org", "nurse", "MI01")
    ids["inactive_user"] = factories.staff_user(app, f"former{n}@example.org", "nurse", "MI01")
    ids["locked_user"] = factories.staff_user(app, f"locked{n}@example.org", "nurse", "MI01")
    with app.app_context():
        inactive = db.session.get(StaffUser, ids["inactive_user"])
        locked = db.session.get(StaffUser, ids["locked_user"])
        assert inactive is not None
        assert locked is not None
        inactive.is_active = False
        locked.locked_until = utcnow() + timedelta(minutes=10)
        db.session.commit()
    clients: dict[str, FlaskClient] = {"anonymous": app.test_client()}
    for role, email in emails.items():
        factories.staff_user(app, email, role, "MI01" if role == "investigator" else None)
        clients[role] = app.test_client()
        assert factories.sign_in(clients[role], email).status_code == 302
    clients["patient"] = app.test_client()
    factories.open_link(clients["patient"], open_one)
    return World(app, ids, clients, itertools.count(n * 1000))


def placeholders(rule: str) -> dict[str, str]:
    """Which of the world's ids each `<...>` of this route takes."""
    user = "user"
    if rule.endswith("/reactivate"):
        user = "inactive_user"
    elif rule.endswith("/unlock"):
        user = "locked_user"
    return {
        "patient_id": "open",
        "assessment_id": "completed_assessment" if rule.endswith("/correct") else "open_assessment",
        "user_id": user,
    }


def fill(path: str, ids: Mapping[str, object], names: Mapping[str, str]) -> str:
    """A path with `<...>` and `{...}` placeholders replaced by the world's ids."""
    path = re.sub(
        r"<(?:\w+:)?(\w+)>", lambda m: "{" + names.get(m.group(1), m.group(1)) + "}", path
    )
    return path.format(**{**ids, "number": 1})


def form_for(world: World, rule: str, role: str, page: str | None) -> Form:
    """The form that posts to this route, read from the page a user would see it on."""
    target = fill(rule, world.ids, placeholders(rule))
    shown = fill(page or rule, world.ids, placeholders(rule))
    html = world.clients[role].get(shown).get_data(as_text=True)
    for form in forms_on(html):
        form.action = form.action or shown  # no action: the form posts to its own page
        if urlsplit(form.action).path == urlsplit(target).path and form.method == "post":
            return form
    raise AssertionError(f"no form posting to {target} on {shown}")


def test_every_form_route_is_fuzzed(app: Flask) -> None:
    """A new route that takes a form must join FORM_ROUTES (or JSON_ROUTES) to be fuzzed."""
    posting = {rule.rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or set())}
    assert posting - JSON_ROUTES == {rule for rule, _role, _page in FORM_ROUTES}


@pytest.mark.parametrize(("rule", "role", "page"), FORM_ROUTES, ids=[r[0] for r in FORM_ROUTES])
def test_hostile_posts_are_refused_cleanly(
    app: Flask, rule: str, role: str, page: str | None
) -> None:
    world = build_world(app)
    if rule.endswith("/revoke"):
        assert send_api_token_form(world)
    form = form_for(world, rule, role, page)
    client = world.clients[role]
    serial = next(world.serial)
    # The untouched form goes through: what the fuzzing breaks is what gets refused.
    # (Signing in stays refused: an unknown address, so that the fuzzing is not signed in.)
    accepted = send(client, form, base_pairs(form, serial))
    assert accepted.status_code < 400 or rule == "/auth/sign-in", accepted.text[:2000]

    @FUZZ
    @given(pairs=hostile_pairs(form, serial))
    def post_hostile(pairs: list[tuple[str, str]]) -> None:
        response = send(client, form, pairs)
        assert_handled(response)
        if response.status_code < 400:  # something may have been stored: was it valid?
            assert garbage(app) == []

    with_examples(post_hostile, sweep(form, serial))()
    assert garbage(app) == []  # and nothing slipped in with a refusal


def send_api_token_form(world: World) -> bool:
    client = world.clients["analyst"]
    page = client.get("/analyst/api-tokens").get_data(as_text=True)
    created = client.post(
        "/analyst/api-tokens", data={"csrf_token": factories.csrf_token(page), "name": "script"}
    )
    page = client.get("/analyst/api-tokens").get_data(as_text=True)
    match = re.search(r"/analyst/api-tokens/(\d+)/revoke", page)
    if match:
        world.ids["token_id"] = int(match.group(1))
    return created.status_code < 400 and match is not None


@pytest.mark.parametrize(("page", "role"), FILTER_PAGES, ids=[p[0] for p in FILTER_PAGES])
def test_hostile_filters_are_refused_cleanly(app: Flask, page: str, role: str) -> None:
    world = build_world(app)
    client = world.clients[role]
    html = client.get(page).get_data(as_text=True)
    filters = [form for form in forms_on(html) if form.method == "get"]
    assert filters, f"no filter form on {page}"
    form = filters[0]
    form.action = urlsplit(form.action).path or page
    serial = next(world.serial)

    @FUZZ
    @given(pairs=hostile_pairs(form, serial))
    def filter_hostile(pairs: list[tuple[str, str]]) -> None:
        assert_handled(send(client, form, pairs))

    with_examples(filter_hostile, sweep(form, serial))()


@pytest.mark.parametrize(
    ("what", "pairs"),
    [
        ("a body over MAX_CONTENT_LENGTH", [("reason", "x" * 1_100_000)]),
        ("one field over MAX_FORM_MEMORY_SIZE", [("reason", "é" * 300_000)]),
    ],
)
def test_oversized_posts_get_a_clear_413(
    app: Flask, what: str, pairs: list[tuple[str, str]]
) -> None:
    world = build_world(app)
    staff_form = form_for(world, "/staff/patients/<int:patient_id>/withdraw", "investigator", None)
    patient_form = form_for(world, "/q/page/<int:number>", "patient", "/q/page/1")
    for role, form in (("investigator", staff_form), ("patient", patient_form)):
        response = send(world.clients[role], form, [*base_pairs(form, 1), *pairs])
        assert response.status_code == 413, (what, role)
        assert 'role="alert"' in response.text
    with app.app_context():
        patient = db.session.get(Patient, world.ids["open"])
        assert patient is not None
        assert patient.status == "active"
        assert db.session.scalar(db.select(db.func.count()).select_from(Answer)) == 51
