"""Which email provider sends, and how its delivery reports are verified (EMAIL_PROVIDER,
MAILERS, ANYMAIL). Read from the environment; production fails closed (config.env)."""

import base64
import secrets

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_secret, env_str


def email_backend(*, production: bool) -> tuple[str, dict]:
    """The provider (EMAIL_PROVIDER) and its backend (MAILERS): Resend, MailerSend, SMTP, or
    the in-app outbox, which production takes only when chosen."""
    # A blank value is no value: it must not choose a provider that then cannot send.
    resend_key = env_str("RESEND_API_KEY", "").strip()
    mailersend_token = env_str("MAILERSEND_API_TOKEN", "").strip()
    smtp_url = env_str("SMTP_URL", "").strip()
    if not (resend_key or mailersend_token or smtp_url):
        # Staff can read the outbox: in production it must be chosen, not fallen into because a
        # provider key is empty; even then it never keeps invitation or password-reset links.
        if production and not env_bool("PRESALE_OUTBOX_IN_PRODUCTION", False):
            raise ImproperlyConfigured(
                "No email provider: set RESEND_API_KEY, MAILERSEND_API_TOKEN or SMTP_URL "
                "(or PRESALE_OUTBOX_IN_PRODUCTION=1 to keep emails in the staff outbox)."
            )
        return "outbox", {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}
    if resend_key:
        provider, backend, options = "resend", "anymail.backends.resend", {"api_key": resend_key}
    elif mailersend_token:
        provider, backend = "mailersend", "anymail.backends.mailersend"
        options = {"api_token": mailersend_token}
    else:
        from notifications.smtp_url import smtp_options

        provider, backend = "smtp", "django.core.mail.backends.smtp"
        options = smtp_options(smtp_url)
    return provider, {"default": {"BACKEND": f"{backend}.EmailBackend", "OPTIONS": options}}


def anymail_settings(*, production: bool, provider: str) -> dict:
    """ANYMAIL: the providers' API bases (tests), and the signing secrets their delivery
    reports are verified with; production requires the chosen provider's."""
    return {
        # Where tests point the providers at a local fake server.
        **({"RESEND_API_URL": env_str("RESEND_API_URL")} if env_str("RESEND_API_URL", "") else {}),
        **(
            {"MAILERSEND_API_URL": env_str("MAILERSEND_API_URL")}
            if env_str("MAILERSEND_API_URL", "")
            else {}
        ),
        # Optional basic auth (`user:password` in the webhook URL) on top of the signatures.
        **(
            {"WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET")}
            if env_str("ANYMAIL_WEBHOOK_SECRET", "")
            else {}
        ),
        # The providers sign their delivery reports (Resend through Svix). The endpoints verify
        # every call; unset in development, the secrets are random, so every call is refused.
        "RESEND_SIGNING_SECRET": env_secret(
            "RESEND_WEBHOOK_SIGNING_SECRET",
            production=production and provider == "resend",
            development_default="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        ),
        "MAILERSEND_SIGNING_SECRET": env_secret(
            "MAILERSEND_WEBHOOK_SIGNING_SECRET",
            production=production and provider == "mailersend",
            development_default=secrets.token_urlsafe(24),
        ),
    }
