"""Production refuses to start on an empty or development secret, naming it; and it refuses
the staff-readable email outbox unless that is chosen on purpose."""

import pytest

from tests.config.production import manage, settings_value

SECRETS = {
    "DJANGO_SECRET_KEY": "dev-only-insecure-key-" + "x" * 40,
    "STRIPE_SECRET_KEY": "sk_test_localstripe",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe_dev",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
@pytest.mark.parametrize("kind", ["empty", "blank", "development value"])
def test_an_empty_or_development_secret_stops_start_up_naming_it(name, kind):
    value = {"empty": "", "blank": "   ", "development value": SECRETS[name]}[kind]

    result = manage("check", **{name: value})

    assert result.returncode != 0
    assert name in result.stderr.splitlines()[-1]


def test_an_empty_stripe_key_never_selects_localstripe_in_production():
    result = manage("check", STRIPE_SECRET_KEY="", STRIPE_WEBHOOK_SECRET=None)

    assert result.returncode != 0
    assert "STRIPE_SECRET_KEY" in result.stderr.splitlines()[-1]


PROVIDERS = ("RESEND_API_KEY", "MAILERSEND_API_TOKEN", "SMTP_URL")


@pytest.mark.parametrize(
    ("provider", "key", "webhook_secret"),
    [
        ("RESEND_API_KEY", "re_live_key", "RESEND_WEBHOOK_SIGNING_SECRET"),
        ("MAILERSEND_API_TOKEN", "mlsn.live", "MAILERSEND_WEBHOOK_SIGNING_SECRET"),
    ],
)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_an_email_provider_needs_its_webhook_signing_secret(provider, key, webhook_secret, value):
    result = manage("check", **{provider: key, webhook_secret: value, "SMTP_URL": None})

    assert result.returncode != 0
    assert webhook_secret in result.stderr.splitlines()[-1]


def test_with_its_signing_secret_resend_starts():
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    result = manage(
        "check", RESEND_API_KEY="re_live_key", RESEND_WEBHOOK_SIGNING_SECRET=secret, SMTP_URL=None
    )
    assert result.returncode == 0, result.stderr


EMPTY_PROVIDERS = [
    {},
    *({name: value} for name in PROVIDERS for value in ("", "   ")),
]


@pytest.mark.parametrize("empty_provider", EMPTY_PROVIDERS, ids=str)
def test_the_outbox_is_refused_in_production_unless_chosen(empty_provider):
    """An empty or blank provider key or SMTP URL chooses no provider (a blank Resend key once
    chose Resend, which then could send nothing): start-up stops, naming the variables."""
    refused = manage("check", **{"SMTP_URL": None, **empty_provider})
    assert refused.returncode != 0
    message = refused.stderr.splitlines()[-1]
    assert "PRESALE_OUTBOX_IN_PRODUCTION" in message
    assert all(name in message for name in PROVIDERS)

    chosen = settings_value("EMAIL_PROVIDER", SMTP_URL=None, PRESALE_OUTBOX_IN_PRODUCTION="1")
    assert chosen == "outbox"


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS", "SITE_URL"])
@pytest.mark.parametrize("value", [None, "", "  "])
def test_production_never_falls_back_to_a_development_default(name, value):
    """Unset, these would quietly mean a SQLite file, a broker folder and per-process sign-in
    counts on one machine, or email links to 127.0.0.1: production stops, naming them."""
    result = manage("check", **{name: value})

    assert result.returncode != 0
    assert name in result.stderr.splitlines()[-1]
