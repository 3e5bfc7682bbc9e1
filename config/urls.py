from anymail.webhooks.mailersend import MailerSendTrackingWebhookView
from anymail.webhooks.resend import ResendTrackingWebhookView
from django.contrib import admin
from django.urls import include, path

import config.converters  # noqa: F401  (registers <row_id:…>)
from config.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("django-admin/", admin.site.urls),
    # The email providers' delivery reports (bounces): only the two providers we support.
    path(
        "anymail/",
        include(
            (
                [
                    path(
                        "resend/tracking/",
                        ResendTrackingWebhookView.as_view(),
                        name="resend_tracking_webhook",
                    ),
                    path(
                        "mailersend/tracking/",
                        MailerSendTrackingWebhookView.as_view(),
                        name="mailersend_tracking_webhook",
                    ),
                ],
                "anymail",
            )
        ),
    ),
    path("", include("members.urls")),
    path("", include("notifications.urls")),
    path("", include("payments.urls")),
    path("", include("tickets.urls")),
    path("", include("preorders.staff_urls")),
    path("", include("preorders.urls")),
]
