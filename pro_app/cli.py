"""The `pro-app` command line (the same commands as `flask --app wsgi ...`)."""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, date, datetime
from typing import TextIO

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from pro_app import catalogues, logs
from pro_app.backup.cli import backup_command, restore_command
from pro_app.checks import all_problems, configured_app
from pro_app.config import ConfigurationError
from pro_app.exports.cli import export_command
from pro_app.extensions import db
from pro_app.instruments.response_io import ResponseSetError, parse_response_set
from pro_app.instruments.scoring import score_instrument
from pro_app.models import Role, Site
from pro_app.models.types import utcnow
from pro_app.services import accounts, demo
from pro_app.services.definitions import instrument_registry
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.enrolment import EnrolmentError, EnrolmentRequest, enroll_patient
from pro_app.services.links import link_url


def init_app(app: Flask) -> None:
    """Register every command on the app's CLI."""
    for command in (
        init_db,
        demo_command,
        site,
        staff,
        enroll,
        score,
        export_command,
        backup_command,
        restore_command,
        translate,
        reminders,
        scheduler,
        devserver,
    ):
        app.cli.add_command(command)


def main() -> None:
    """Entry point of the `pro-app` console script."""
    from pro_app import create_app  # the CLI builds the app only when a command runs

    group = FlaskGroup(create_app=create_app, add_version_option=False, load_dotenv=False)
    # check runs without building the app: it must report an unsafe configuration, not stop on it.
    group.add_command(check)
    group.add_command(translate)
    try:
        group.main(prog_name="pro-app")
    except ConfigurationError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema to the latest migration."""
    upgrade()
    click.echo("Database schema is up to date.")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load a demo site, staff logins and patients in every state; print logins and links."""
    for line in demo.load_demo(utcnow()):
        click.echo(line)


@click.group()
def site() -> None:
    """Manage sites."""


@site.command("add")
@click.argument("code")
@click.argument("name")
@with_appcontext
def site_add(code: str, name: str) -> None:
    """Add a site with a short CODE (e.g. MI01) and a NAME."""
    try:
        new_site = accounts.add_site(code, name)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Site {new_site.code} added.")


@click.group()
def staff() -> None:
    """Manage staff accounts."""


@staff.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
@click.option("--site", "site_code", help="Site code; required for nurses and investigators.")
@click.option("--name", default="", help="Full name shown in the audit trail.")
@click.option("--language", default="it", type=click.Choice(["it", "en"]))
@with_appcontext
def staff_add(email: str, role: str, site_code: str | None, name: str, language: str) -> None:
    """Add a staff account; the password comes from PRO_NEW_PASSWORD or a prompt."""
    password = os.environ.get("PRO_NEW_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    site_obj = _site_or_fail(site_code) if site_code else None
    try:
        user = accounts.add_staff(email, name, role, password, site_obj, language)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Account {user.email} ({user.role}) added.")


@click.command("enroll")
@click.option("--study-code", required=True)
@click.option("--site", "site_code", required=True)
@click.option("--arm", required=True)
@click.option("--randomized-on", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--language", default="it", type=click.Choice(["it", "en"]))
@click.option("--timezone", default="Europe/Rome")
@click.option("--email")
@click.option("--phone")
@click.option("--birth-year", type=int)
@with_appcontext
def enroll(
    study_code: str,
    site_code: str,
    arm: str,
    randomized_on: date,
    language: str,
    timezone: str,
    email: str | None,
    phone: str | None,
    birth_year: int | None,
) -> None:
    """Enrol a patient; the last line printed is the patient's personal link."""
    request = EnrolmentRequest(
        study_code=study_code,
        site=_site_or_fail(site_code),
        arm=arm,
        randomized_on=randomized_on.date() if hasattr(randomized_on, "date") else randomized_on,
        language=language,
        timezone=timezone,
        email=email,
        mobile=phone,
        preferred_channel="email" if email or not phone else "sms",
        birth_year=birth_year,
    )
    try:
        enrolment = enroll_patient(request, utcnow())
    except EnrolmentError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Patient {enrolment.patient.study_code} enrolled.")
    click.echo(link_url(current_app.config["BASE_URL"] or "", enrolment.token))


@click.command("check")
def check() -> None:
    """Validate questionnaires, text packs, schedule, translations and configuration."""
    problems = all_problems(configured_app())
    for problem in problems:
        click.echo(f"- {problem}", err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) found.")
    click.echo("All checks passed.")


@click.command("score")
@click.argument("instrument_code")
@click.argument("answers_file", type=click.File("r", encoding="utf-8"))
@with_appcontext
def score(instrument_code: str, answers_file: TextIO) -> None:
    """Score one response set (JSON {"1": 2, "2": null, ...}; - reads stdin); print JSON scores."""
    registry = instrument_registry()
    if instrument_code not in registry.instruments:
        known = ", ".join(registry.instruments)
        raise click.ClickException(f"unknown instrument {instrument_code!r} (known: {known})")
    instrument = registry.get(instrument_code)
    try:
        answers = parse_response_set(instrument, answers_file.read())
    except ResponseSetError as error:
        raise click.ClickException(str(error)) from None
    scores = score_instrument(instrument, answers)
    json.dump({code: result.value for code, result in scores.items()}, sys.stdout)
    sys.stdout.write("\n")


def _site_or_fail(code: str) -> Site:
    found = accounts.site_by_code(code)
    if found is None:
        raise click.ClickException(f"Site {code!r} does not exist (add it with: pro-app site add).")
    return found


@click.group()
def translate() -> None:
    """Maintain the translation catalogues (English source strings; Italian must be complete)."""


@translate.command("extract")
def translate_extract() -> None:
    """Write translations/messages.pot from the code and templates."""
    catalogues.extract()


@translate.command("update")
def translate_update() -> None:
    """Extract, then merge new strings into every catalogue."""
    catalogues.extract()
    catalogues.update()


@translate.command("compile")
def translate_compile() -> None:
    """Build the .mo files the app reads."""
    catalogues.compile_catalogues()


@click.group()
def reminders() -> None:
    """The outbox of invitations and reminders."""


@reminders.command("run")
@click.option(
    "--now", "now_text", help="The instant of the pass (ISO 8601 with offset); default now."
)
@with_appcontext
def reminders_run(now_text: str | None) -> None:
    """One dispatcher pass at that instant; prints a one-line summary."""
    now = utcnow()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter("use ISO 8601, e.g. 2026-11-24T10:00:00+01:00") from None
        if now.tzinfo is None:
            raise click.BadParameter("give a UTC offset, e.g. 2026-11-24T10:00:00+01:00")
    click.echo(dispatch_due_messages(now.astimezone(UTC)).line())


@click.command("scheduler")
@with_appcontext
def scheduler() -> None:
    """The long-running scheduler: a dispatcher pass every minute while holding the lease."""
    from pro_app.scheduler import build_scheduler, holder_id, release_lease

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    _log_to_stderr()
    _stop_cleanly_on_sigterm()
    click.echo(
        f"Scheduler {holder_id()} started; dispatcher pass every "
        f"{app.config['SCHEDULER_INTERVAL_SECONDS']} s while holding the lease."
    )
    try:
        build_scheduler(app, blocking=True).start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        release_lease(holder_id(), utcnow())
        click.echo("Scheduler stopped.")


@click.command("devserver")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def devserver(host: str, port: int) -> None:
    """Development only: the web app and the scheduler in one process (no reloader)."""
    from pro_app.scheduler import build_scheduler, holder_id, release_lease

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["ENV"] != "development":
        raise click.ClickException("devserver is for PRO_ENV=development; use gunicorn.")
    _log_to_stderr()
    _stop_cleanly_on_sigterm()
    background = build_scheduler(app, blocking=False)
    background.start()
    try:
        # One process, never the reloader: a reloader would start a second scheduler. (app.run()
        # refuses to run inside a CLI command, so Werkzeug's server is called directly.)
        run_simple(host, port, app, use_reloader=False, threaded=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        background.shutdown(wait=False)
        release_lease(holder_id(), utcnow())
        click.echo("Development server stopped.")


def _stop_cleanly_on_sigterm() -> None:
    """systemd, make and process managers stop a process with SIGTERM: leave through the same
    door as Ctrl+C, so that the lease is released and another process can take over at once.

    (Ctrl+C alone is not enough: a shell starts background jobs with SIGINT ignored, and Python
    then never raises KeyboardInterrupt.)
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def _log_to_stderr() -> None:
    """Long-running commands report each dispatcher pass (no personal data is ever logged).

    Every logger, the scheduler's and Werkzeug's too, writes through the app's formatter
    (LOG_FORMAT), so these lines look like the web workers' lines.
    """
    logs.log_everything_to_stderr(current_app)
