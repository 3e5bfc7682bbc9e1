"""The `web` process's gunicorn settings come from the environment: its workers from
WEB_CONCURRENCY, its address from GUNICORN_BIND or PORT (what Heroku-like hosts give)."""

import os
import subprocess
import sys

from tests.config.production import ROOT

READ = "import config.gunicorn as g; print(g.workers, g.bind, g.accesslog)"


def gunicorn_settings(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "PORT")}
    clean = {k: v for k, v in clean.items() if not k.startswith("GUNICORN_")}
    result = subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return result.stdout.split()


def test_workers_and_address_come_from_the_environment():
    assert gunicorn_settings(WEB_CONCURRENCY="5", PORT="9123") == ["5", "0.0.0.0:9123", "None"]
    assert gunicorn_settings(GUNICORN_BIND="127.0.0.1:8111")[1] == "127.0.0.1:8111"


def test_the_defaults():
    assert gunicorn_settings() == ["3", "0.0.0.0:8000", "None"]
