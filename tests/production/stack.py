"""The production stack on this machine, started and stopped one piece at a time.

A scratch PostgreSQL database, a TLS certificate from a throwaway CA, gunicorn as
deploy/gunicorn.conf.py runs it, the `pro-app scheduler` process and a local SMTP server.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message as MimeMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.reliability.live_server import (
    PROJECT_ROOT,
    START_TIMEOUT,
    LiveServer,
    stop_process,
)
from tests.reliability.live_server import server_env as development_env
from tests.smtp_server import Inbox, free_port, running_smtp

PRO_APP = str(Path(sys.executable).with_name("pro-app"))
GUNICORN_CONFIG = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"
CLI_TIMEOUT = 120.0
# Several gunicorn workers must share their rate-limit counters: production refuses memory://.
REDIS_URI = "redis://127.0.0.1:6379/15"


@contextmanager
def scratch_database(server_uri: str) -> Iterator[str]:
    """A new, empty database `pro_stack_<hex>` on that server; dropped (forcibly) at the end."""
    server = make_url(server_uri)
    name = f"pro_stack_{secrets.token_hex(6)}"
    # libpq reads a plain postgresql:// address; CREATE/DROP DATABASE cannot run in a transaction.
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_exists(server_uri: str, name: str) -> bool:
    """Whether a database of this name is on the server (to prove the scratch one is gone)."""
    admin = make_url(server_uri).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


@contextmanager
def rate_limit_storage() -> Iterator[dict[str, str]]:
    """PRO_RATELIMIT_* settings for the local Redis, under a key prefix of their own; the
    counters left there (a daily limit lives a day) are deleted at the end."""
    import redis  # only a stack with several workers needs it

    prefix = f"pro_stack_{secrets.token_hex(6)}"
    with redis.Redis.from_url(REDIS_URI) as client:
        client.ping()  # no Redis server: a clear error now rather than 500s later
        try:
            yield {"PRO_RATELIMIT_STORAGE_URI": REDIS_URI, "PRO_RATELIMIT_KEY_PREFIX": prefix}
            # The workers really counted there (sign-in and the patient link are limited).
            assert any(client.scan_iter(match=f"*{prefix}*")), "no rate-limit counter in Redis"
        finally:
            keys = list(client.scan_iter(match=f"*{prefix}*"))
            if keys:
                client.delete(*keys)


@dataclass(frozen=True)
class Certificate:
    """A server certificate for 127.0.0.1 and the CA that clients are told to trust."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def client_context(self) -> ssl.SSLContext:
        """A verifying TLS context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def spki_pin(self) -> str:
        """base64(SHA-256 of the server key), as Chromium's --ignore-certificate-errors-spki-list
        takes it: Chromium then accepts this one key and no other untrusted certificate."""
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(key).digest()).decode("ascii")


def issue_certificate(folder: Path) -> Certificate:
    """A fresh CA (trustme) and a certificate for the address 127.0.0.1, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    leaf = authority.issue_cert("127.0.0.1")
    certificate = Certificate(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    authority.cert_pem.write_to_path(str(certificate.ca_path))
    leaf.cert_chain_pems[0].write_to_path(str(certificate.cert_path))
    leaf.private_key_pem.write_to_path(str(certificate.key_path))
    return certificate


@dataclass
class MailServer:
    """The local SMTP server (aiosmtpd, in its own thread) and what it received."""

    port: int
    inbox: Inbox

    def wait_for_message(self, timeout: float) -> MimeMessage:
        """The first message to arrive within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.inbox.lock:
                if self.inbox.messages:
                    return self.inbox.messages.pop(0)
            time.sleep(0.2)
        raise AssertionError(f"no e-mail arrived within {timeout:.0f} s")


@contextmanager
def mail_server() -> Iterator[MailServer]:
    inbox = Inbox()
    with running_smtp(inbox) as port:
        yield MailServer(port, inbox)


def production_env(
    database_uri: str, folder: Path, *, web_port: int, mail_port: int, **settings: str
) -> dict[str, str]:
    """Everything PRO_ENV=production requires, for the web server, the scheduler and the CLI."""
    env = development_env(
        database_uri,
        folder,
        PRO_ENV="production",
        PRO_SECRET_KEY=secrets.token_hex(32),
        PRO_BASE_URL=f"https://127.0.0.1:{web_port}",
        PRO_BIND=f"127.0.0.1:{web_port}",
        PRO_WEB_WORKERS="2",
        PRO_MAIL_BACKEND="smtp",
        PRO_MAIL_SERVER="127.0.0.1",
        PRO_MAIL_PORT=str(mail_port),
        PRO_MAIL_SENDER="Questionari PRO <questionari@pro.example.org>",
        # A gateway address is required by the http backend; this flow sends no SMS (the
        # patient gives only an e-mail address), so nothing needs to listen there.
        PRO_SMS_BACKEND="http",
        PRO_SMS_GATEWAY_URL=f"http://127.0.0.1:{free_port()}/sms",
        **settings,
    )
    # The development helpers' file outboxes and the load tests' lifted link limit do not
    # belong in production: the production defaults apply.
    for key in ("PRO_MAIL_FILE_DIR", "PRO_SMS_FILE_DIR", "PRO_PATIENT_LINK_RATE_LIMIT"):
        env.pop(key)
    return env


def run_cli(env: dict[str, str], *args: str) -> str:
    """`pro-app ARGS` as its own process; its output, or AssertionError with it on failure."""
    done = subprocess.run(
        [PRO_APP, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"pro-app {' '.join(args[:2])} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )


@contextmanager
def web_server(env: dict[str, str], folder: Path, certificate: Certificate) -> Iterator[LiveServer]:
    """`gunicorn --config deploy/gunicorn.conf.py wsgi:app` over TLS, until the block ends."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONFIG),
        "--certfile",
        str(certificate.cert_path),
        "--keyfile",
        str(certificate.key_path),
        "wsgi:app",
    ]
    log_path = folder / "gunicorn.log"
    server = LiveServer(env["PRO_BASE_URL"], _spawn(command, env, log_path), log_path)
    try:
        _wait_until_serving(server, int(env["PRO_WEB_WORKERS"]), certificate.client_context())
        yield server
    finally:
        stop_process(server.process)


def _wait_until_serving(server: LiveServer, workers: int, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(verify=context, timeout=5) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(f"gunicorn exited at start:\n{server.log()[-3000:]}")
            try:
                answered = client.get(f"{server.url}/healthz").status_code == 200
            except httpx.TransportError:
                answered = False
            if answered and len(server.worker_pids()) >= workers:
                return
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer in time:\n{server.log()[-3000:]}")


@dataclass
class SchedulerProcess:
    """`pro-app scheduler`, logging each dispatcher pass to its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        return stop_process(self.process)


@contextmanager
def scheduler_process(env: dict[str, str], folder: Path) -> Iterator[SchedulerProcess]:
    """The long-running scheduler, until the block ends."""
    log_path = folder / "scheduler.log"
    scheduler = SchedulerProcess(_spawn([PRO_APP, "scheduler"], env, log_path), log_path)
    try:
        yield scheduler
    finally:
        scheduler.stop()


@contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """Stop these processes (SIGSTOP) for the block, then let them go on (SIGCONT).

    A paused gunicorn worker accepts no connection, so the next one goes to another worker;
    a short pause is far below the workers' timeout, so the master replaces none of them.
    """
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def serving_worker(server: LiveServer, client_port: int) -> int | None:
    """The worker holding the server end of the client's connection from this local port.

    gthread workers keep a connection open between requests (keep-alive), so asking while a
    response is being received names the worker serving it (Linux /proc).
    """
    server_port = urlsplit(server.url).port
    inode = _socket_inode(server_port, client_port)
    if inode is None:
        return None
    for pid in server.worker_pids():
        if f"socket:[{inode}]" in _open_sockets(pid):
            return pid
    return None


def _socket_inode(local_port: int | None, remote_port: int) -> str | None:
    """The inode of the TCP socket between these two local ports (seen from `local_port`)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(end.rsplit(":", 1)[1], 16) for end in fields[1:3])
            if (local, remote) == (local_port, remote_port):
                return fields[9]
    return None


def _open_sockets(pid: int) -> set[str]:
    links: set[str] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the worker has just exited
        return links
    for descriptor in descriptors:
        try:
            links.add(os.readlink(descriptor))
        except OSError:  # closed between the listing and the read
            continue
    return links
