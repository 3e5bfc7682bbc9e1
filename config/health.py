"""/healthz (the process answers) and /readyz (it can do its work: the database, the cache,
the Celery broker, and beat's heartbeat fresh), on django-health-check. Both answer JSON and are
never cached; /readyz answers 503 naming what is down, for the load balancer and for staff."""

import asyncio
import dataclasses
import datetime
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable


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

        try:
            age = beat_age_seconds()
        finally:
            connection.close()  # this thread ends with the check
        limit = settings.READYZ_BEAT_MAX_AGE_SECONDS
        if age is None:
            raise ServiceUnavailable("no beat heartbeat yet")
        if age > limit:
            raise ServiceUnavailable(f"last beat heartbeat {age:.0f} s ago (limit {limit} s)")


CHECKS = (Database, Cache, Broker, BeatHeartbeat)


async def _results() -> list:
    return await asyncio.gather(*(check().get_result(None) for check in CHECKS))


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """The checks run concurrently, with their timeouts, in an event loop of their own thread
    (so the view works the same under gunicorn's sync workers and beside a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        results = pool.submit(asyncio.run, _results()).result()
    failed = any(result.error for result in results)
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": {
            type(result.check).__name__: "ok" if not result.error else str(result.error)
            for result in results
        },
    }
    answer = JsonResponse(body, status=503 if failed else 200)
    # A red readiness is an answer, not a server error: the access line records it, and
    # Django's "Service Unavailable" error line would page someone at every start-up.
    answer._has_been_logged = True
    return answer
