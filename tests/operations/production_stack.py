"""The production processes of the Procfile (release, then web, worker and beat) started for a
test with DJANGO_ENV=production on PostgreSQL and Redis, with localstripe as Stripe."""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "PRESALE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
# Its own Redis database: other tests flush 12, 14 and 15 while this one may be running.
REDIS_URL = os.environ.get("PRESALE_SMOKE_REDIS_URL", "redis://127.0.0.1:6379/13")
OURS = (
    "DJANGO_", "STRIPE_", "RESEND_", "MAILERSEND_", "SMTP_URL", "ANYMAIL_", "PRESALE_",
    "SENTRY_", "REDIS_URL", "CELERY_", "LOGIN_THROTTLE_", "DATABASE_URL", "LOG_",
    "WEB_CONCURRENCY", "PORT", "GUNICORN_",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def services_or_skip() -> None:
    """PostgreSQL and Redis, or a skip with a message (a failure where CI requires them)."""
    problems = []
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except psycopg.OperationalError:
        problems.append(f"no PostgreSQL at {POSTGRES_URL}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        problems.append(f"no Redis at {REDIS_URL}")
    if problems:
        message = "The production smoke test needs PostgreSQL and Redis: " + "; ".join(problems)
        if os.environ.get("PRESALE_REQUIRE_REDIS"):
            pytest.fail(message + " (required here: PRESALE_REQUIRE_REDIS).")
        pytest.skip(message + "; CI runs it with PRESALE_REQUIRE_REDIS=1.")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


@dataclass
class Stack:
    env: dict[str, str]
    site: str
    database_url: str
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, command: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["/bin/sh", "-c", command], cwd=ROOT, env={**self.env, **extra},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            ["/bin/sh", "-c", "exec " + procfile()[name]], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def stop(self) -> dict[str, int]:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes[name] = process.wait()
        return codes

    def sql(self, query: str, *params) -> list[tuple]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(query, params).fetchall()


def wait_for(condition, *, timeout: float, what: str, stack: "Stack | None" = None):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            logs = ""
            if stack is not None:
                logs = "\n".join(f"--- {n}\n{stack.log(n)[-3000:]}" for n in stack.processes)
            raise AssertionError(f"Timed out waiting for {what}\n{logs}")
        time.sleep(0.5)


def _answers(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


@contextlib.contextmanager
def production_stack(tmp_path: Path) -> Iterator[Stack]:
    services_or_skip()
    name = f"presale_smoke_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES_URL)
    database_url = urlunsplit(parts._replace(path=f"/{name}"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    web_port, stripe_port = free_port(), free_port()
    site = f"http://127.0.0.1:{web_port}"
    stripe_url = f"http://127.0.0.1:{stripe_port}"
    webhook_secret = "whsec_" + secrets.token_hex(16)
    clean = {key: value for key, value in os.environ.items() if not key.startswith(OURS)}
    env = {
        **clean,
        "PATH": f"{Path(sys.executable).parent}:{clean.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12),
        "STRIPE_PUBLISHABLE_KEY": "pk_test_" + secrets.token_hex(12),
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_JS_URL": f"{stripe_url}/js.stripe.com/v3/",
        "PRESALE_OUTBOX_IN_PRODUCTION": "1",
        "SITE_URL": site,
        "PORT": str(web_port),
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "WEB_CONCURRENCY": "2",
        "CELERY_WORKER_CONCURRENCY": "2",
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule"),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(env=env, site=site, database_url=database_url, logs=logs)
    stripe_log = (logs / "localstripe.log").open("w")
    localstripe = subprocess.Popen(
        [sys.executable, "-m", "devtools.localstripe_server", "--port", str(stripe_port),
         "--webhook-url", f"{site}/payments/stripe/webhook/", "--webhook-secret", webhook_secret,
         "--quiet"],
        cwd=ROOT, stdout=stripe_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(f"{stripe_url}/v1/customers") is not None, timeout=30,
                 what="localstripe")  # fmt: skip
        yield stack
    finally:
        stack.stop()
        os.killpg(localstripe.pid, signal.SIGTERM)
        localstripe.wait(timeout=30)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
