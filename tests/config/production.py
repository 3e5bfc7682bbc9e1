"""Running manage.py under production settings in a child process (settings are read once per
process, so each environment needs its own)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "x7" * 30 + "-a-long-random-looking-production-key",
    "DJANGO_ALLOWED_HOSTS": "presale.harrys.club",
    "STRIPE_SECRET_KEY": "sk_test_from_the_environment",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_from_the_environment",
    "STRIPE_WEBHOOK_SECRET": "whsec_from_the_environment",
    "SMTP_URL": "smtp://mailer:pw@smtp.example.com:587?tls=1",
    "DATABASE_URL": "sqlite:///" + str(ROOT / "var" / "deploy-check.sqlite3"),
    # Nothing listens there: these children only read settings and answer simple requests.
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "SITE_URL": "https://presale.harrys.club",
}
# Variables of ours a developer's shell may hold; a child must see only what the test gives.
OURS = (
    "DJANGO_", "STRIPE_", "RESEND_", "MAILERSEND_", "SMTP_URL", "ANYMAIL_", "PRESALE_",
    "SENTRY_", "REDIS_URL", "CELERY_", "LOGIN_THROTTLE_", "DATABASE_URL", "SITE_URL",
)  # fmt: skip


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py with the production environment, changed by `env` (None removes a variable)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(OURS)}
    merged = {**PRODUCTION_ENV, **env}
    merged = {key: value for key, value in merged.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **merged},
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_value(name: str, **env: str) -> str:
    code = f"from django.conf import settings; print(settings.{name})"
    result = manage("shell", "--no-imports", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
