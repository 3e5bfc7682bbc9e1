"""Production settings: `check --deploy` is clean, and secrets come only from the environment."""

from tests.config.production import manage


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets():
    for missing in ("DJANGO_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        result = manage("check", **{missing: None})
        assert result.returncode != 0
        assert f"Set the environment variable {missing}" in result.stderr


def test_production_uses_the_real_stripe_and_secure_cookies():
    code = (
        "from django.conf import settings as s;"
        "print(s.STRIPE_API_BASE == '', s.STRIPE_JS_URL, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.DEBUG)"
    )
    result = manage("shell", "--no-imports", "-c", code)
    assert result.stdout.split() == [
        "True",
        "https://js.stripe.com/v3/",
        "True",
        "True",
        "True",
        "False",
    ]
