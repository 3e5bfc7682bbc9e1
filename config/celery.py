"""The Celery app: background work and the weekly schedule.

In production the broker is Redis (REDIS_URL / CELERY_BROKER_URL) and any number of workers on
any number of machines may run. With neither set, the embedded default is kombu's filesystem
transport in var/celery/: no server, one local worker and beat, the same code."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("presale")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
