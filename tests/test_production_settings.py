"""Production settings: `check --deploy` is clean, and secrets come only from the environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "x7" * 30 + "-a-long-random-looking-production-key",
    "DJANGO_ALLOWED_HOSTS": "presale.harrys.club",
    "STRIPE_SECRET_KEY": "sk_test_from_the_environment",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_from_the_environment",
    "STRIPE_WEBHOOK_SECRET": "whsec_from_the_environment",
    "SMTP_URL": "smtp://mailer:pw@smtp.example.com:587?tls=1",
    "DATABASE_URL": "sqlite:///" + str(ROOT / "var" / "deploy-check.sqlite3"),
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "STRIPE_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets():
    for missing in ("DJANGO_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}
        result = _manage("check", env=env)
        assert result.returncode != 0
        assert f"Set the environment variable {missing}" in result.stderr


def test_production_uses_the_real_stripe_and_secure_cookies():
    code = (
        "from django.conf import settings as s;"
        "print(s.STRIPE_API_BASE == '', s.STRIPE_JS_URL, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.DEBUG)"
    )
    result = _manage("shell", "--no-imports", "-c", code, env=PRODUCTION_ENV)
    assert result.stdout.split() == [
        "True",
        "https://js.stripe.com/v3/",
        "True",
        "True",
        "True",
        "False",
    ]
