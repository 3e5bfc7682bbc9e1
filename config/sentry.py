"""Error reporting to Sentry, started only when SENTRY_DSN is set."""

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def start_sentry(dsn: str, *, environment: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # Members' emails and card details must not leave for a third party.
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
