"""Kill the waitlist promotion (SIGKILL of `refill_waitlists`) while it charges and run it
again: one charge per pre-order, counted at Stripe."""

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import time_machine

from notifications.tasks import sweep_unsent_emails
from payments import charging, run_execution
from preorders import decisions
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.conftest import _add_tickets, close_window
from tests.stripe_helpers import (
    DECLINED_OFF_SESSION,
    SUCCEEDS,
    new_confirmed_setup_intent,
    payment_intents_by_preorder,
)
from tests.test_charge_run_kill import ROOT, _command_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]
KILL_POINTS = int(os.environ.get("PRESALE_KILL_POINTS", "2"))


def _refill(env):
    return subprocess.Popen(
        [sys.executable, "manage.py", "refill_waitlists"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("point", range(KILL_POINTS))
def test_killed_promotion_resumes_without_double_charges(
    point, stripe_server, make_member, make_event
):
    rng = random.Random(point)
    event = make_event()
    _add_tickets(event, 12)
    # 12 approved, 8 of them declined when charged; 10 waitlisted behind them.
    cards = [SUCCEEDS] * 4 + [DECLINED_OFF_SESSION] * 8
    rng.shuffle(cards)
    cards += [SUCCEEDS] * 10
    preorders = []
    for card in cards:
        member = make_member()
        preorders.append(
            place_preorder(
                member, event.pk, new_confirmed_setup_intent(stripe_server, member, card)
            )
        )
    close_window(event.cycle_id)
    decisions.auto_fulfil(event.pk, actor=None)
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    assert PreOrder.objects.filter(status=Status.WAITLISTED).count() == 10

    process = _refill(_command_env(stripe_server, CHARGE_RATE_PER_SECOND="4"))
    time.sleep(rng.uniform(1.0, 3.0))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    # The next minute's tick, as far as the killed run's silence and its stuck charges go.
    rerun = _refill(
        _command_env(stripe_server, CHARGE_STALE_AFTER_SECONDS="0", CHARGE_RUN_STALE_SECONDS="0")
    )
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    # As in the charge run's kill test: a ticket email committed but never handed over (killed
    # in between) is the periodic sweep's, once the dead sender's lease has run out; one sent
    # but never recorded is put right by reconciliation.
    with time_machine.travel(dt.timedelta(minutes=11)):
        sweep_unsent_emails(older_than_seconds=0)
    charging.reconcile(cycle_id=event.cycle_id, older_than=dt.timedelta(0))

    statuses = [PreOrder.objects.get(pk=p.pk).status for p in preorders]
    assert statuses.count(Status.TICKET_SENT) == 12, (statuses, output)
    assert statuses.count(Status.FAILED) == 8
    assert statuses.count(Status.WAITLISTED) == 2
    charged = payment_intents_by_preorder(stripe_server)
    assert set(charged.values()) == {1}
    assert len(charged) == 20
    promoted = [p for p in preorders[12:] if PreOrder.objects.get(pk=p.pk).status != "waitlisted"]
    assert all(str(p.pk) in charged for p in promoted)
