"""The charge run end to end through a real Celery worker and a real broker: the embedded
default (kombu's filesystem transport, no server) and Redis (production). Tasks cross the
broker; nothing runs inline."""

import logging
import os
import time

import pytest
import redis

from payments import charging
from payments.tasks import execute_charge_run
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]

REDIS_URL = os.environ.get("PRESALE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_or_skip() -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.flushdb()  # a database of its own (15), emptied of earlier runs' messages
    except redis.ConnectionError:
        if os.environ.get("PRESALE_REQUIRE_REDIS"):
            pytest.fail(f"Redis is required here (PRESALE_REQUIRE_REDIS) but {REDIS_URL} is down.")
        pytest.skip(f"No Redis at {REDIS_URL}; CI runs this with PRESALE_REQUIRE_REDIS=1.")
    return REDIS_URL


@pytest.fixture(params=["filesystem", "redis"])
def real_worker(request, tmp_path):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    if request.param == "redis":
        broker, options = _redis_or_skip(), {"visibility_timeout": 3600}
    else:
        queue = tmp_path / "queue"
        queue.mkdir()
        broker = "filesystem://"
        options = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(tmp_path / "control"),
        }
    saved = {
        key: app.conf[key]
        for key in ("broker_url", "broker_transport_options", "task_always_eager")
    }
    app.conf.update(broker_url=broker, broker_transport_options=options, task_always_eager=False)
    _forget_connections(app)
    # Celery's test worker sets the root logger's level to its own ("error") for the rest of
    # the process: later tests in this process would lose every warning they look for.
    root_level = logging.getLogger().level
    try:
        with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False):
            yield request.param
    finally:
        logging.getLogger().setLevel(root_level)
        app.conf.update(saved)
        _forget_connections(app)


def _forget_connections(app) -> None:
    """Make the app connect anew, to the broker now configured."""
    app._pool = None
    app.amqp._producer_pool = None


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.2)


def test_the_charge_run_goes_through_the_broker_and_the_worker(
    real_worker, approved_preorder_factory
):
    good = [approved_preorder_factory(SUCCEEDS) for _ in range(3)]
    bad = approved_preorder_factory(DECLINED_OFF_SESSION)
    close_window(bad.cycle_id)
    run = charging.start_run(bad.cycle_id, trigger="test", early=True)

    execute_charge_run.delay(run.pk)

    wanted = {p.pk: Status.TICKET_SENT for p in good} | {bad.pk: Status.FAILED}
    _wait_for(
        lambda: dict(PreOrder.objects.filter(pk__in=wanted).values_list("pk", "status")) == wanted
    )
    # The last shard marks the run finished once its threads are done, which may come a moment
    # after the last ticket email (sent by another task of the same worker).
    _wait_for(lambda: charging.report(bad.cycle_id).finished_at is not None)
    report = charging.report(bad.cycle_id)
    assert (report.attempted, report.paid, report.failed) == (4, 3, 1)
