"""Kill the charge run (SIGKILL of the `charge_run` command) at random moments and run it again:
no pre-order is charged twice, none is lost or left stuck. CI kills it at a few points; set
PRESALE_KILL_POINTS=20 (or more) for the long variant."""

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.db import connection

from notifications.tasks import sweep_unsent_emails
from payments.charging import reconcile
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS, payment_intents_by_preorder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]

ROOT = Path(__file__).resolve().parent.parent
KILL_POINTS = int(os.environ.get("PRESALE_KILL_POINTS", "3"))
PREORDERS = 24


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"


def _command_env(stripe_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DJANGO_"))}
    return {
        **env,
        "DATABASE_URL": _database_url(),
        "STRIPE_SECRET_KEY": "sk_test_presale_tests",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_presale_tests",
        "STRIPE_WEBHOOK_SECRET": "whsec_test",
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        # Slow enough that a kill lands in the middle of the run.
        "CHARGE_CONCURRENCY": "4",
        "CHARGE_RATE_PER_SECOND": "16",
        **extra,
    }


def _charge_run(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "charge_run", "--now"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("point", range(KILL_POINTS))
def test_killed_runs_resume_without_double_charges(point, stripe_server, approved_preorder_factory):
    rng = random.Random(point)
    cards = [SUCCEEDS] * (PREORDERS - 4) + [DECLINED_OFF_SESSION] * 4
    rng.shuffle(cards)
    preorders = [approved_preorder_factory(card) for card in cards]
    cycle_id = preorders[0].cycle_id
    close_window(cycle_id)

    process = _charge_run(_command_env(stripe_server))
    time.sleep(rng.uniform(0.3, 2.5))  # start-up takes ~1 s; the run itself ~1.5 s
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    # Run it again, as staff or the next beat tick would, with the stuck ones due for a look.
    rerun = _charge_run(_command_env(stripe_server, CHARGE_STALE_AFTER_SECONDS="0"))
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output

    # Ticket emails committed but never handed to the worker (killed in between) are picked up
    # by the periodic sweep.
    # A worker killed while sending holds its email's lease for ten minutes: later, the sweep
    # takes it over. (Stand in for "later" by moving the clock.)
    with time_machine.travel(dt.timedelta(minutes=11)):
        sweep_unsent_emails(older_than_seconds=0)
    # And one killed after sending but before recording it is put right by reconciliation.
    reconcile(cycle_id=cycle_id, older_than=dt.timedelta(0))

    statuses = dict(PreOrder.objects.values_list("pk", "status"))
    expected = {
        p.pk: Status.FAILED if card == DECLINED_OFF_SESSION else Status.TICKET_SENT
        for p, card in zip(preorders, cards, strict=True)
    }
    assert statuses == expected, output
    assert payment_intents_by_preorder(stripe_server) == {str(p.pk): 1 for p in preorders}
