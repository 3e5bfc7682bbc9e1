"""/healthz says the process answers; /readyz says it can work: the database, the cache (Redis
in production), the Celery broker and beat's heartbeat. It turns red, naming the culprit, when
any of them is down, and no cache may keep either answer."""

import datetime as dt
import json
import subprocess
import sys

import pytest
import time_machine
from django.utils import timezone

from operations.heartbeat import record_beat
from tests.config.production import ROOT

# The checks run in a thread of their own, with their own connection: data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "no-store" in response["Cache-Control"]


def test_readyz_is_green_with_a_fresh_heartbeat(client):
    record_beat()

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {"Database": "ok", "Cache": "ok", "Broker": "ok", "BeatHeartbeat": "ok"},
    }
    assert "no-store" in response["Cache-Control"]


def test_readyz_is_red_before_beats_first_heartbeat(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["BeatHeartbeat"] == "Unavailable: no beat heartbeat yet"


def test_readyz_turns_red_when_beat_stops(client, settings):
    settings.READYZ_BEAT_MAX_AGE_SECONDS = 120
    record_beat()
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=121)):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert "last beat heartbeat 121 s ago" in response.json()["checks"]["BeatHeartbeat"]
    assert response.json()["checks"]["Database"] == "ok"


READYZ_IN_A_CHILD = """
from django.test import Client
response = Client(HTTP_HOST="localhost").get("/readyz")
import json; print(response.status_code, json.dumps(response.json()))
"""


def _readyz_with(**env: str) -> tuple[int, dict]:
    """/readyz in a process whose services are the ones given (nothing listens on port 1)."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", READYZ_IN_A_CHILD],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(status), json.loads(body)


def test_readyz_turns_red_when_the_database_is_down():
    status, body = _readyz_with(DATABASE_URL="postgres://postgres@127.0.0.1:1/presale")

    assert status == 503
    assert body["checks"]["Database"].startswith("Unavailable")


def test_readyz_turns_red_when_redis_is_down():
    status, body = _readyz_with(REDIS_URL="redis://127.0.0.1:1/0")

    assert status == 503
    assert "Connection" in body["checks"]["Cache"]
    assert body["checks"]["Broker"].startswith("Unavailable: broker unreachable")
