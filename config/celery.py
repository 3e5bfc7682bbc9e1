"""The Celery app: background work and the weekly schedule.

In production the broker is Redis (REDIS_URL / CELERY_BROKER_URL) and any number of workers on
any number of machines may run. With neither set, the embedded default is kombu's filesystem
transport in var/celery/: no server, one local worker and beat, the same code."""

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from config import log_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("presale")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Log lines of a task carry the request id of the web request that queued it (a webhook's, a
# staff click's), or the task's own id when it came from beat.
_REQUEST_ID_HEADER = "presale_request_id"
_bound: dict[str, object] = {}


@before_task_publish.connect
def _carry_request_id(headers: dict | None = None, **_: object) -> None:
    request_id = log_context.current().get("request_id")
    if request_id and headers is not None:
        headers[_REQUEST_ID_HEADER] = request_id


@task_prerun.connect
def _bind_request_id(task_id: str | None = None, task=None, **_: object) -> None:
    request_id = (
        (getattr(task.request, _REQUEST_ID_HEADER, None) if task else None)
        or log_context.current().get("request_id")  # run inline, inside the request
        or task_id
    )
    if task_id:
        _bound[task_id] = log_context.enter(request_id=request_id)


@task_postrun.connect
def _unbind_request_id(task_id: str | None = None, **_: object) -> None:
    token = _bound.pop(task_id, None) if task_id else None
    if token is not None:
        log_context.leave(token)
