"""Project-wide middleware: a request id on every request and its log lines, one access log
line per request (production), and pages that no cache may keep."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

from config.log_context import bound

access_log = logging.getLogger("presale.access")

# A request id from our proxy is kept if it looks like one; anything else is replaced.
_GOOD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class RequestContextMiddleware:
    """Gives each request an id (the proxy's X-Request-ID, or a new one), binds it to every log
    line written while the request runs, returns it in the response, and writes one access
    line per request when PRESALE_ACCESS_LOG is on (production: gunicorn's own is off)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _GOOD_REQUEST_ID.match(offered) else uuid.uuid4().hex
        request.request_id = request_id
        started = time.monotonic()
        with bound(request_id=request_id):
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if settings.PRESALE_ACCESS_LOG:
                access_log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
        return response


class PrivatePagesMiddleware:
    """Every page is about a signed-in member or staff, or carries a CSRF token: no shared
    cache (a proxy, a CDN) and no browser history may keep it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        patch_cache_control(response, private=True, no_store=True)
        return response
