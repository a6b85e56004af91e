"""deploy/: the env example stays complete, the units and nginx files work with this app.

nginx is driven for real when it is installed (Debian: apt-get install nginx-light): `nginx -t`
on the shipped files, and nginx in front of a live gunicorn to see what it logs and sends.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from flask import Flask

from pro_app import create_app
from pro_app.cli import check as check_command
from pro_app.config import PROJECT_ROOT, configuration_problems, default_config
from pro_app.extensions import db
from tests import factories
from tests.conftest import make_config
from tests.reliability.live_server import live_server, server_env
from tests.smtp_server import free_port

DEPLOY = PROJECT_ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "pro-app.env.example"
SYSTEMD = DEPLOY / "systemd"
NGINX_SITE = DEPLOY / "nginx" / "pro-app.conf"
NGINX_HTTP = DEPLOY / "nginx" / "pro-app-http.conf"
BACKUP_JOB = DEPLOY / "bin" / "pro-app-backup-job"
ADMIN_WRAPPER = DEPLOY / "bin" / "pro-app-admin"
DEPLOYMENT_DOC = PROJECT_ROOT / "docs" / "deployment.md"
VENV_BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or next(
    (str(path) for path in (Path("/usr/sbin/nginx"),) if path.exists()), None
)
SED = shutil.which("sed") or "/usr/bin/sed"
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx-light)"
)

SETTING_LINE = re.compile(r"^(?P<commented>#?)(?P<name>PRO_[A-Z0-9_]+?)(?:__\w+)?=(?P<value>.*)$")
# Commented lines that show an example rather than the default (the default depends on where
# the app is installed, or is "not set").
EXAMPLES_NOT_DEFAULTS = {
    "QUESTIONNAIRE_DIR",
    "BABEL_TRANSLATION_DIRECTORIES",
    "SQLALCHEMY_DATABASE_URI",
    "SQLALCHEMY_ENGINE_OPTIONS",
    "MAIL_FILE_DIR",
    "SMS_FILE_DIR",
    "TRUSTED_HOSTS",
    "LOG_FORMAT",
}
# The two trials of docs/deployment.md, made from the shipped server block the way it says.
TRIALS = {"netter-qol": 8001, "lanreo-qol": 8002}


# --- the environment file -------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # without PRO_
    value: str  # as written, quotes included
    is_commented: bool


def example_settings() -> list[Setting]:
    settings = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = SETTING_LINE.match(line)
        if match:
            settings.append(
                Setting(
                    match["name"].removeprefix("PRO_"), match["value"], bool(match["commented"])
                )
            )
        else:
            assert not line or line.startswith("#"), f"not a setting, comment or blank: {line!r}"
    return settings


def shell_value(written: str) -> str:
    """The value as the shell (and systemd) reads it: quotes removed."""
    words = shlex.split(written, posix=True)
    assert len(words) <= 1, f"quote this value: {written!r}"
    return words[0] if words else ""


def flask_value(text: str) -> object:
    """What Flask's from_prefixed_env makes of a value: JSON when it parses, else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def gunicorn_settings() -> set[str]:
    text = (DEPLOY / "gunicorn.conf.py").read_text(encoding="utf-8")
    return {name.removeprefix("PRO_") for name in re.findall(r"\"(PRO_[A-Z_]+)\"", text)}


def unit_settings() -> set[str]:
    """PRO_* names the systemd units use themselves (not the app)."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in SYSTEMD.iterdir())
    return set(re.findall(r"\bPRO_([A-Z_]+)\b", text))


def test_env_example_names_every_setting_of_the_app_gunicorn_and_the_units() -> None:
    written = {setting.name for setting in example_settings()}
    app_settings = set(default_config(Path("/instance")))
    needed = app_settings | gunicorn_settings() | unit_settings()
    assert needed - written == set(), "add these to deploy/pro-app.env.example"
    assert written - needed == set(), "the env example names settings nobody reads"


def test_env_example_sets_each_setting_once() -> None:
    active = [setting.name for setting in example_settings() if not setting.is_commented]
    assert len(active) == len(set(active))


def test_commented_values_in_env_example_are_the_defaults() -> None:
    defaults = default_config(Path("/instance"))
    for setting in example_settings():
        if not setting.is_commented or setting.name not in defaults:
            continue
        if setting.name in EXAMPLES_NOT_DEFAULTS:
            continue
        default = defaults[setting.name]
        if isinstance(default, tuple):
            default = list(default)
        assert flask_value(shell_value(setting.value)) == default, setting.name


def test_gunicorn_settings_in_env_example_match_gunicorn_conf() -> None:
    values = {s.name: shell_value(s.value) for s in example_settings()}
    text = (DEPLOY / "gunicorn.conf.py").read_text(encoding="utf-8")
    for name, default in re.findall(r"\"PRO_([A-Z_]+)\", \"([^\"]*)\"", text):
        if name == "WEB_WORKERS":
            continue  # set explicitly in the example: gunicorn's default differs from check's
        assert values[name] == default, name
    assert "PRO_WEB_WORKERS" in text


def _filled_in_example(monkeypatch: pytest.MonkeyPatch, **replaced: str) -> Flask:
    """The example's active lines as the app's environment, with these values replaced."""
    for name in [name for name in os.environ if name.startswith("PRO_")]:
        monkeypatch.delenv(name)
    for setting in example_settings():
        if not setting.is_commented:
            value = replaced.get(setting.name, shell_value(setting.value))
            monkeypatch.setenv(f"PRO_{setting.name}", value)
    from pro_app.checks import configured_app

    return configured_app()


def test_env_example_is_refused_until_its_secrets_are_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems = configuration_problems(_filled_in_example(monkeypatch).config)
    assert any(problem.startswith("PRO_SECRET_KEY must be set") for problem in problems)
    assert any(problem.startswith("PRO_LINK_SECRET, when set") for problem in problems)


def test_env_example_filled_in_is_a_safe_production_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    app = _filled_in_example(
        monkeypatch, SECRET_KEY=secrets.token_hex(32), LINK_SECRET=secrets.token_hex(32)
    )
    config = app.config
    assert config["ENV"] == "production"
    assert config["MAIL_PORT"] == 587
    assert config["MAIL_USE_TLS"] is True
    assert config["WEB_WORKERS"] == 2
    assert config["PROXY_FIX_X_FOR"] == config["PROXY_FIX_X_PROTO"] == 1
    assert config["MAIL_SENDER"].startswith("Studio EXAMPLE <")
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    expected = []
    if importlib.util.find_spec("redis") is None:
        expected = [problem for problem in configuration_problems(config) if "redis" in problem]
        assert len(expected) == 1
    assert configuration_problems(config) == expected


# --- systemd units ---------------------------------------------------------------------------


def read_unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(SYSTEMD / name, encoding="utf-8")
    return parser


def exec_lines(name: str, key: str) -> list[str]:
    """Every `key=` line of a unit, in order (configparser keeps only the last one)."""
    text = (SYSTEMD / name).read_text(encoding="utf-8")
    return re.findall(rf"^{key}=(.*)$", text, flags=re.MULTILINE)


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "User": "pro-%i",
    "EnvironmentFile": "/etc/pro-app/%i.env",
    "WorkingDirectory": "/opt/pro-app/%i",
    "StateDirectory": "pro-app/%i",
}


def test_systemd_unit_files_are_the_expected_templates() -> None:
    assert sorted(path.name for path in SYSTEMD.iterdir()) == [
        "pro-app-backup@.service",
        "pro-app-backup@.timer",
        "pro-app-scheduler@.service",
        "pro-app-web@.service",
    ]


@pytest.mark.parametrize(
    "name", ["pro-app-web@.service", "pro-app-scheduler@.service", "pro-app-backup@.service"]
)
def test_services_are_hardened_and_read_the_trials_settings(name: str) -> None:
    unit = read_unit(name)
    assert unit.has_option("Unit", "Description")
    assert "%i" in unit.get("Unit", "Description")
    for key, value in HARDENING.items():
        assert unit.get("Service", key) == value, (name, key)


def test_web_unit_checks_the_configuration_then_runs_gunicorn() -> None:
    unit = read_unit("pro-app-web@.service")
    assert unit.get("Service", "Type") == "notify"
    assert unit.get("Service", "Restart") == "on-failure"
    assert exec_lines("pro-app-web@.service", "ExecStartPre") == [
        "/opt/pro-app/%i/.venv/bin/pro-app check"
    ]
    assert unit.get("Service", "ExecStart") == (
        "/opt/pro-app/%i/.venv/bin/gunicorn --config deploy/gunicorn.conf.py wsgi:app"
    )
    assert unit.get("Install", "WantedBy") == "multi-user.target"


def test_scheduler_unit_runs_one_scheduler() -> None:
    unit = read_unit("pro-app-scheduler@.service")
    assert unit.get("Service", "ExecStart") == "/opt/pro-app/%i/.venv/bin/pro-app scheduler"
    assert unit.get("Service", "Restart") == "on-failure"
    assert unit.get("Install", "WantedBy") == "multi-user.target"


def test_backup_unit_backs_up_then_verifies_then_prunes() -> None:
    name = "pro-app-backup@.service"
    unit = read_unit(name)
    job = "/opt/pro-app/%i/deploy/bin/pro-app-backup-job"
    folder = "/var/backups/pro-app/%i"
    assert unit.get("Service", "Type") == "oneshot"
    assert unit.get("Service", "ExecStart") == f"{job} run {folder}"
    assert exec_lines(name, "ExecStartPost") == [
        f"{job} verify {folder}",
        f"{job} prune {folder} ${{PRO_BACKUP_KEEP_DAYS}}",
    ]
    assert unit.get("Service", "ReadWritePaths") == folder
    environment = exec_lines(name, "Environment")
    assert "PRO_BACKUP_KEEP_DAYS=35" in environment
    written = {s.name: s.value for s in example_settings()}
    assert written["BACKUP_KEEP_DAYS"] == "35"
    assert any(line.startswith("PATH=/opt/pro-app/%i/.venv/bin:") for line in environment)
    assert not unit.has_section("Install")  # started by its timer only


def test_backup_timer_starts_the_same_trials_backup_every_night() -> None:
    unit = read_unit("pro-app-backup@.timer")
    assert unit.get("Timer", "OnCalendar") == "*-*-* 02:30:00"
    assert unit.get("Timer", "Persistent") == "true"
    assert unit.get("Timer", "Unit") == "pro-app-backup@%i.service"
    assert unit.get("Install", "WantedBy") == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_knows_every_directive_of_the_units(tmp_path: Path) -> None:
    for template in SYSTEMD.iterdir():
        instance = tmp_path / template.name.replace("@.", "@demo.")
        instance.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
        done = subprocess.run(
            [str(shutil.which("systemd-analyze")), "verify", "--man=no", str(instance)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # The release is not installed under /opt here: only missing programs may be reported.
        complaints = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if instance.name in line and "is not executable" not in line
        ]
        assert complaints == [], complaints


def _release_path(unit_path: str) -> Path:
    """Where a path of the installed release (/opt/pro-app/%i/...) is in this checkout."""
    relative = unit_path.removeprefix("/opt/pro-app/%i/")
    if relative.startswith(".venv/bin/"):
        return VENV_BIN / relative.removeprefix(".venv/bin/")
    return PROJECT_ROOT / relative


def test_units_run_programs_and_commands_that_exist(app: Flask) -> None:
    commands = {**app.cli.commands, "check": check_command}  # check is added by cli.main()
    for path in SYSTEMD.glob("*.service"):
        for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
            for line in exec_lines(path.name, key):
                program, *arguments = line.split()
                executable = _release_path(program)
                assert os.access(executable, os.X_OK), f"{path.name}: {program}"
                if executable.name == "pro-app":
                    assert arguments[0] in commands, f"{path.name}: pro-app {arguments[0]}"
                if executable.name == "gunicorn":
                    assert (PROJECT_ROOT / arguments[arguments.index("--config") + 1]).is_file()
    backup = commands["backup"]
    assert "verify" in backup.commands  # type: ignore[attr-defined]
    job = BACKUP_JOB.read_text(encoding="utf-8")
    options = {option for param in backup.params for option in param.opts}
    for used in re.findall(r"pro-app backup (--[a-z-]+)", job) + re.findall(r" (--pg-dump)", job):
        assert used in options, used
    assert "pro-app backup verify" in job


# --- the backup job --------------------------------------------------------------------------


def _job(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BACKUP_JOB), *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _job_env(database_uri: str, folder: Path) -> dict[str, str]:
    env = server_env(database_uri, folder)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.fixture
def trial_database(tmp_path: Path) -> Iterator[str]:
    """A SQLite trial database with one enrolled patient (its own file, whatever the suite)."""
    uri = f"sqlite:///{tmp_path / 'trial.sqlite3'}"
    trial = create_app(make_config(uri))
    with trial.app_context():
        db.create_all()
    factories.enrol(trial, "MI01-0001")
    yield uri
    with trial.app_context():
        db.engine.dispose()


def test_backup_job_backs_up_verifies_and_prunes_sqlite(
    trial_database: str, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    env = _job_env(trial_database, tmp_path)
    old = backups / "pro-app-20200101T000000Z.sqlite3"
    old_manifest = backups / "pro-app-20200101T000000Z.sqlite3.manifest.json"
    for path in (old, old_manifest):
        path.write_text("old", encoding="utf-8")
        os.utime(path, (time.time() - 40 * 86400,) * 2)

    _job(env, "run", str(backups))
    made = sorted(backups.glob("pro-app-2*.sqlite3"))[-1]
    assert made != old
    assert (backups / f"{made.name}.manifest.json").is_file()
    verified = _job(env, "verify", str(backups))
    assert "Verified: 7 tables" in verified.stdout
    pruned = _job(env, "prune", str(backups), "35")
    assert not old.exists()
    assert not old_manifest.exists()
    assert str(old) in pruned.stdout
    assert made.exists()

    # A backup damaged on disk fails its check, and then nothing is deleted.
    made.write_bytes(made.read_bytes()[:-1] + b"\x01")
    damaged = _job(env, "verify", str(backups), check=False)
    assert damaged.returncode == 1
    assert "SHA-256 differs" in damaged.stderr

    # However old, the newest backup is never pruned.
    for path in backups.iterdir():
        os.utime(path, (time.time() - 400 * 86400,) * 2)
    _job(env, "prune", str(backups), "35")
    assert sorted(path.name for path in backups.iterdir()) == [
        made.name,
        f"{made.name}.manifest.json",
    ]


def test_backup_job_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    env = _job_env(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path)
    assert "no backup in" in _job(env, "verify", str(tmp_path), check=False).stderr
    assert "no backup in" in _job(env, "prune", str(tmp_path), "35", check=False).stderr
    refused = _job(env, "prune", str(tmp_path), "-1", check=False)
    assert refused.returncode == 1
    assert "DAYS must be a whole number" in refused.stderr
    env["PRO_SQLALCHEMY_DATABASE_URI"] = "mysql://x/y"
    assert "SQLite or PostgreSQL" in _job(env, "run", str(tmp_path), check=False).stderr


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("PRO_TEST_DATABASE_URI"), reason="needs PRO_TEST_DATABASE_URI (PostgreSQL)"
)
def test_backup_job_dumps_and_checks_postgresql(tmp_path: Path) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(os.environ["PRO_TEST_DATABASE_URI"])
    name = f"pro_deploy_{secrets.token_hex(4)}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        env = _job_env(server.set(database=name).render_as_string(hide_password=False), tmp_path)
        subprocess.run(
            [str(VENV_BIN / "pro-app"), "init-db"], env=env, check=True, capture_output=True
        )
        backups = tmp_path / "backups"
        backups.mkdir()
        _job(env, "run", str(backups))
        assert len(list(backups.glob("pro-app-*.dump"))) == 1
        assert "pg_restore reads it" in _job(env, "verify", str(backups)).stdout
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None, reason="runuser needs root"
)
def test_admin_wrapper_runs_pro_app_with_the_trials_settings(tmp_path: Path) -> None:
    etc, opt = tmp_path / "etc", tmp_path / "opt"
    etc.mkdir()
    opt.mkdir()
    (opt / "example-trial").symlink_to(PROJECT_ROOT)
    env_file = etc / "example-trial.env"
    # The example as shipped, but on a SQLite file: the shell must read every line of it.
    text = ENV_EXAMPLE.read_text(encoding="utf-8").replace(
        "PRO_SQLALCHEMY_DATABASE_URI=postgresql",
        f"PRO_SQLALCHEMY_DATABASE_URI=sqlite:///{tmp_path / 'w.sqlite3'}\n#",
    )
    env_file.write_text(text, encoding="utf-8")
    env_file.chmod(0o600)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PRO_APP_ETC": str(etc),
        "PRO_APP_OPT": str(opt),
        "PRO_APP_USER": "root",
    }
    done = subprocess.run(
        [str(ADMIN_WRAPPER), "example-trial", "check"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "configuration: PRO_SECRET_KEY must be set" in done.stderr
    assert "configuration: SQLite with several web workers (PRO_WEB_WORKERS=2)" in done.stderr
    bad_name = subprocess.run(
        [str(ADMIN_WRAPPER), "../etc", "check"], env=environment, capture_output=True, check=False
    )
    assert bad_name.returncode == 2


# --- nginx -----------------------------------------------------------------------------------


def nginx_directives(text: str, name: str) -> list[str]:
    return re.findall(rf"^[ \t]*{name}[ \t]+([^;{{}}]+);", text, flags=re.MULTILINE)


def nginx_size(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def test_nginx_body_limit_is_the_apps() -> None:
    site = NGINX_SITE.read_text(encoding="utf-8")
    limits = nginx_directives(site, "client_max_body_size")
    assert limits, "client_max_body_size is missing"
    max_length = default_config(Path("/instance"))["MAX_CONTENT_LENGTH"]
    assert {nginx_size(limit) for limit in limits} == {max_length}


def test_nginx_proxies_to_the_port_and_headers_the_app_is_told_about() -> None:
    site = NGINX_SITE.read_text(encoding="utf-8")
    values = {s.name: shell_value(s.value) for s in example_settings() if not s.is_commented}
    assert nginx_directives(site, "server") == [values["BIND"]]
    headers = dict(header.split(None, 1) for header in nginx_directives(site, "proxy_set_header"))
    assert headers["X-Forwarded-For"] == "$remote_addr"  # set, not appended to: one proxy
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Forwarded-Host"] == "$host"
    for header in ("FOR", "PROTO", "HOST"):
        assert values[f"PROXY_FIX_X_{header}"] == "1"
    aliases = nginx_directives(site, "alias")
    assert aliases == ["/opt/pro-app/example-trial/pro_app/static/"]
    assert (PROJECT_ROOT / "pro_app" / "static" / "style.css").is_file()
    # The app sets HSTS itself; nginx adding it too would send two headers.
    assert "Strict-Transport-Security" not in "".join(nginx_directives(site, "add_header"))


def test_every_patient_route_with_a_token_is_masked_in_nginx_logs(app: Flask) -> None:
    tokened = sorted(
        {
            rule.rule
            for rule in app.url_map.iter_rules()
            if "token" in rule.arguments and not rule.rule.startswith("/api/")
        }
    )
    assert tokened == ["/p/<token>"]
    shared = NGINX_HTTP.read_text(encoding="utf-8")
    assert '"~*^/p/" /p/[token];' in shared
    log_format = re.search(r"^log_format pro_app_private ([^;]+);", shared, flags=re.MULTILINE)
    assert log_format is not None
    # Only these: anything added ($request, $request_uri, $args, $http_referer...) must be
    # weighed for tokens first.
    assert set(re.findall(r"\$(\w+)", log_format[1])) == {
        "pro_app_logged_client",
        "time_iso8601",
        "request_method",
        "pro_app_logged_path",
        "server_protocol",
        "status",
        "body_bytes_sent",
        "request_time",
        "upstream_response_time",
        "request_id",
        "http_user_agent",
    }
    sites = NGINX_SITE.read_text(encoding="utf-8")
    assert set(nginx_directives(sites, "access_log")) == {
        "/var/log/nginx/example-trial.access.log pro_app_private",
        "off",  # /static/
    }


@dataclass(frozen=True)
class NginxFolder:
    path: Path
    certificate: Path
    key: Path
    ca: trustme.CA


@pytest.fixture
def nginx_folder(tmp_path: Path) -> NginxFolder:
    ca = trustme.CA()
    issued = ca.issue_cert(
        "example-trial.hospital.example",
        *[f"{trial}.hospital.example" for trial in TRIALS],
        "127.0.0.1",
    )
    certificate, key = tmp_path / "fullchain.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(certificate))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(certificate), append=True)
    issued.private_key_pem.write_to_path(str(key))
    return NginxFolder(tmp_path, certificate, key, ca)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is no longer in the nginx file"
    return text.replace(old, new)


def local_site(text: str, folder: NginxFolder, trial: str = "example-trial") -> str:
    """A server block with this folder's certificate and log files."""
    text = _replace(text, f"/etc/ssl/pro-app/{trial}.fullchain.pem", str(folder.certificate))
    text = _replace(text, f"/etc/ssl/pro-app/{trial}.key", str(folder.key))
    return _replace(text, "/var/log/nginx/", f"{folder.path}/")


def nginx_wrapper(folder: NginxFolder, sites: list[Path], *, serve: bool = False) -> Path:
    """An nginx.conf like Debian's (same http-level settings) that includes our files."""
    includes = "\n".join(f"    include {site};" for site in [NGINX_HTTP, *sites])
    wrapper = folder.path / "nginx.conf"
    wrapper.write_text(
        f"""
{"daemon off; master_process off;" if serve else ""}
pid {folder.path}/nginx.pid;
error_log {folder.path}/nginx-main.error.log;
events {{ worker_connections 64; }}
http {{
    sendfile on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {folder.path}/access.log;
    gzip on;
    client_body_temp_path {folder.path}/body;
    proxy_temp_path {folder.path}/proxy;
    fastcgi_temp_path {folder.path}/fastcgi;
    uwsgi_temp_path {folder.path}/uwsgi;
    scgi_temp_path {folder.path}/scgi;
{includes}
}}
""",
        encoding="utf-8",
    )
    return wrapper


def nginx_test(wrapper: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NGINX), "-t", "-q", "-c", str(wrapper), "-p", str(wrapper.parent), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_nginx
def test_nginx_accepts_the_shipped_server_block(nginx_folder: NginxFolder) -> None:
    site = nginx_folder.path / "example-trial.conf"
    site.write_text(local_site(NGINX_SITE.read_text(encoding="utf-8"), nginx_folder))
    tested = nginx_test(nginx_wrapper(nginx_folder, [site]))
    assert tested.returncode == 0, tested.stderr
    assert "warn" not in tested.stderr, tested.stderr


@needs_nginx
def test_nginx_accepts_two_trials_side_by_side_made_as_the_docs_say(
    nginx_folder: NginxFolder,
) -> None:
    docs = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    sites = []
    for trial, port in TRIALS.items():
        substitutions = [f"s/example-trial/{trial}/g", f"s/127.0.0.1:8000/127.0.0.1:{port}/"]
        for expression in substitutions:
            assert expression in docs, expression
        made = subprocess.run(
            [SED, *[arg for e in substitutions for arg in ("-e", e)], str(NGINX_SITE)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"server 127.0.0.1:{port};" in made
        site = nginx_folder.path / f"{trial}.conf"
        site.write_text(local_site(made, nginx_folder, trial), encoding="utf-8")
        sites.append(site)
    tested = nginx_test(nginx_wrapper(nginx_folder, sites))
    assert tested.returncode == 0, tested.stderr


@contextmanager
def running_nginx(wrapper: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = (wrapper.parent / "nginx.out").open("wb")
    process = subprocess.Popen(
        [str(NGINX), "-c", str(wrapper), "-p", str(wrapper.parent), "-e", "stderr"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (wrapper.parent / "nginx.out").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


@needs_nginx
def test_nginx_in_front_of_gunicorn_masks_tokens_compresses_and_limits(
    app: Flask, database_uri: str, nginx_folder: NginxFolder
) -> None:
    enrolled = factories.enrol(app, "MI01-0001")
    token = enrolled.token
    http_port, https_port = free_port(), free_port()
    trusted = '["example-trial.hospital.example","127.0.0.1"]'
    proxy = {
        "PRO_PROXY_FIX_X_FOR": "1",
        "PRO_PROXY_FIX_X_PROTO": "1",
        "PRO_PROXY_FIX_X_HOST": "1",
        "PRO_TRUSTED_HOSTS": trusted,
    }
    folder = nginx_folder.path
    with live_server(database_uri, folder / "app", workers=1, settings=proxy) as server:
        wrapper = _serving_wrapper(nginx_folder, http_port, https_port, server.url)
        with running_nginx(wrapper, https_port), _client(nginx_folder, https_port) as client:
            welcome = client.get(f"/p/{token}")
            assert welcome.status_code == 200
            assert welcome.headers["content-encoding"] == "gzip"
            assert "Accept-Encoding" in welcome.headers["vary"]
            # The app saw https through the proxy headers, and only the app sends HSTS.
            assert len(welcome.headers.get_list("strict-transport-security")) == 1
            request_id = welcome.headers["x-request-id"]

            stylesheet = client.get("/static/style.css")
            assert stylesheet.status_code == 200
            assert stylesheet.headers["content-encoding"] == "gzip"
            assert stylesheet.headers["cache-control"] == "max-age=86400"
            assert "x-request-id" not in stylesheet.headers  # nginx alone answered
            assert stylesheet.content == (PROJECT_ROOT / "pro_app/static/style.css").read_bytes()

            limit = default_config(Path("/instance"))["MAX_CONTENT_LENGTH"]
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            at_limit = client.post("/language", content=b"a" * limit, headers=form)
            assert at_limit.status_code != 413  # the app's CSRF check answers, not a limit
            over = client.post("/language", content=b"a" * (limit + 1), headers=form)
            assert over.status_code == 413
            assert "x-request-id" not in over.headers

            redirected = httpx.get(
                f"http://127.0.0.1:{http_port}/p/{token}",
                headers={"Host": "example-trial.hospital.example"},
            )
            assert redirected.status_code == 301
            assert redirected.headers["location"] == (
                f"https://example-trial.hospital.example/p/{token}"
            )
    # Nothing behind nginx any more: a patient link and a staff page both get a 502.
    with running_nginx(wrapper, https_port), _client(nginx_folder, https_port) as client:
        assert client.get(f"/p/{token}").status_code == 502
        assert client.get("/staff/worklist").status_code == 502

    access_log = (folder / "example-trial.access.log").read_text(encoding="utf-8")
    error_log = (folder / "example-trial.error.log").read_text(encoding="utf-8")
    assert token not in access_log
    assert token not in error_log
    assert "connect() failed" in error_log  # the staff page's 502 is logged in full
    assert '"GET /p/[token] HTTP/1.1" 200' in access_log
    assert '"GET /p/[token] HTTP/1.1" 502' in access_log
    assert f"rid={request_id}" in access_log  # the app's log line has the same id
    assert "127.0.0.0 [" in access_log  # the client's address, shortened
    assert "/static/style.css" not in access_log
    assert '"POST /language HTTP/1.1" 413' in access_log


def _serving_wrapper(folder: NginxFolder, http_port: int, https_port: int, upstream: str) -> Path:
    """The shipped server block on local ports, in front of `upstream`, serving this checkout."""
    site = local_site(NGINX_SITE.read_text(encoding="utf-8"), folder)
    site = _replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace(site, "listen [::]:80;", "")
    site = _replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace(site, "listen [::]:443 ssl http2;", "")
    site = _replace(site, "server 127.0.0.1:8000;", f"server {upstream.split('//')[1]};")
    site = _replace(
        site, "/opt/pro-app/example-trial/pro_app/static/", f"{PROJECT_ROOT}/pro_app/static/"
    )
    site_file = folder.path / "example-trial.conf"
    site_file.write_text(site, encoding="utf-8")
    return nginx_wrapper(folder, [site_file], serve=True)


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _client(folder: NginxFolder, https_port: int) -> httpx.Client:
    return httpx.Client(
        base_url=f"https://127.0.0.1:{https_port}",
        headers={"Host": "example-trial.hospital.example", "Accept-Encoding": "gzip"},
        verify=_trusting(folder.ca),
        timeout=30,
    )


# --- the documentation -----------------------------------------------------------------------


def test_deployment_doc_names_every_deploy_file_and_keeps_to_100_columns() -> None:
    docs = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    for path in DEPLOY.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.name in docs, path.name
    long_lines = [n for n, line in enumerate(docs.splitlines(), 1) if len(line) > 100]
    assert long_lines == []
