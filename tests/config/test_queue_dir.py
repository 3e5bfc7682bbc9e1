"""PRESALE_QUEUE_DIR moves the embedded broker's folder (a benchmark's, a second checkout's)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps([settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS]))"
)


def test_the_filesystem_broker_uses_the_queue_dir_it_is_given(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PRESALE_QUEUE_DIR=str(tmp_path / "q"))
    result = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    url, options = json.loads(result.stdout.splitlines()[-1])
    assert url.startswith("filesystem://")
    assert options["data_folder_in"] == str(tmp_path / "q" / "queue")
    assert all((tmp_path / "q" / folder).is_dir() for folder in ("queue", "processed", "control"))
