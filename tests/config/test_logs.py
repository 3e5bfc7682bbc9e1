"""Logs: in production one JSON object per line, carrying the request id and, where known, the
pre-order and charge attempt; plain lines in development; one access line per request."""

import json

from tests.config.production import manage

LOG_SOME_REQUESTS = """
import logging
from django.test import Client
from config.log_context import bound
client = Client(HTTP_HOST="presale.harrys.club", HTTP_X_FORWARDED_PROTO="https")
client.get("/healthz", HTTP_X_REQUEST_ID="edge-4f2a9c01")
client.get("/payments/stripe/webhook/")  # 405: GET is not allowed
with bound(preorder_id=42, charge_attempt_id=7):
    logging.getLogger("payments.charging").info("Charge presale-42-charge-1: succeeded")
"""


def records(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines()]


def test_production_logs_are_json_with_request_and_charge_ids():
    result = manage("shell", "--no-imports", "-c", LOG_SOME_REQUESTS)
    assert result.returncode == 0, result.stderr

    lines = records(result.stderr)  # every line is JSON
    access = [r for r in lines if r["logger"] == "presale.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("GET", "/healthz", 200),
        ("GET", "/payments/stripe/webhook/", 405),
    ]
    # One line per request: Django's own "Method Not Allowed" line would say it twice.
    assert not [r for r in lines if r["logger"] == "django.request"]
    assert access[0]["request_id"] == "edge-4f2a9c01"  # our proxy's id is kept
    assert len(access[1]["request_id"]) == 32
    (charge,) = [r for r in lines if r["logger"] == "payments.charging"]
    assert (charge["preorder_id"], charge["charge_attempt_id"]) == (42, 7)
    assert charge["level"] == "INFO" and "time" in charge


def test_development_logs_are_plain_and_leave_request_lines_to_runserver():
    result = manage("shell", "--no-imports", "-c", LOG_SOME_REQUESTS, DJANGO_ENV="development")
    assert result.returncode == 0, result.stderr
    assert "INFO payments.charging Charge presale-42-charge-1: succeeded" in result.stderr
    assert "presale.access" not in result.stderr
    assert not result.stderr.lstrip().startswith("{")
