"""/healthz (the process answers) and /readyz (it can do its work: the database, the cache,
the Celery broker, and beat's heartbeat fresh), on django-health-check. Both answer JSON and are
never cached; /readyz answers 503 naming what is down, for the load balancer and for staff."""

import dataclasses
import datetime

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker (Redis in production, the filesystem transport on a laptop) takes a
    connection: without it no email, webhook or charge task can be queued."""

    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=3), repr=False
    )

    def run(self) -> None:
        from config.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as error:  # kombu raises its transports' own errors
            raise ServiceUnavailable(f"broker unreachable ({type(error).__name__})") from error


@dataclasses.dataclass
class BeatHeartbeat(HealthCheck):
    """Beat scheduled, and a worker ran, a heartbeat task recently: the Tuesday run will start."""

    def run(self) -> None:
        from operations.heartbeat import beat_age_seconds

        age = beat_age_seconds()
        limit = settings.READYZ_BEAT_MAX_AGE_SECONDS
        if age is None:
            raise ServiceUnavailable("no beat heartbeat yet")
        if age > limit:
            raise ServiceUnavailable(f"last beat heartbeat {age:.0f} s ago (limit {limit} s)")


class ReadinessView(HealthCheckView):
    checks = (
        "health_check.checks.Database",
        "health_check.checks.Cache",
        Broker,
        BeatHeartbeat,
    )

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        has_errors = any(result.error for result in self.results)
        body = {
            "status": "unavailable" if has_errors else "ok",
            "checks": {
                type(result.check).__name__: "ok" if not result.error else str(result.error)
                for result in self.results
            },
        }
        del response
        answer = JsonResponse(body, status=503 if has_errors else 200)
        # A red readiness is an answer, not a server error: the access line records it, and
        # Django's "Service Unavailable" error line would page someone at every start-up.
        answer._has_been_logged = True
        return answer


readyz = ReadinessView.as_view()
