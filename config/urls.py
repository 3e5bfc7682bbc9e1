from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

import config.converters  # noqa: F401  (registers <row_id:…>)


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("django-admin/", admin.site.urls),
    # The email provider's delivery reports (bounces), authenticated by ANYMAIL_WEBHOOK_SECRET.
    path("anymail/", include("anymail.urls")),
    path("", include("members.urls")),
    path("", include("notifications.urls")),
    path("", include("payments.urls")),
    path("", include("tickets.urls")),
    path("", include("preorders.staff_urls")),
    path("", include("preorders.urls")),
]
