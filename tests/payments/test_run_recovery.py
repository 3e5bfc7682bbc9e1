"""A run that loses its workers: heartbeat, interrupted, resumed by the catch-up; and a worker
whose clock is a little behind beat's."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from payments import charging, run_execution
from payments.models import ChargeAttempt, ChargeRun
from payments.tasks import charge_due_cycles
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window

# Charges go out from threads with connections of their own: they must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def _due_now(cycle) -> None:
    """Move a cycle's week into the past so that its charge time has just passed."""
    now = timezone.now()
    type(cycle).objects.filter(pk=cycle.pk).update(
        opens_at=now - dt.timedelta(days=8),
        closes_at=now - dt.timedelta(days=1),
        charge_at=now - dt.timedelta(minutes=1),
        closed_early_at=None,
    )


def test_a_run_that_stops_beating_is_marked_interrupted_and_never_stays_running(open_cycle):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        silent = ChargeRun.objects.create(cycle=open_cycle, heartbeat_at=start)
        never_beat = ChargeRun.objects.create(cycle=open_cycle)
        done = ChargeRun.objects.create(cycle=open_cycle, heartbeat_at=start, finished_at=start)
        clock.shift(dt.timedelta(seconds=30))
        alive = ChargeRun.objects.create(cycle=open_cycle, heartbeat_at=timezone.now())
        clock.shift(dt.timedelta(seconds=31))  # 61 s after the first heartbeat
        assert run_execution.recover_stalled_runs() == [open_cycle.pk]
    states = {r.pk: r.state for r in ChargeRun.objects.all()}
    assert states == {
        silent.pk: "interrupted",
        never_beat.pk: "interrupted",
        done.pk: "finished",
        alive.pk: "running",
    }


def test_the_catch_up_resumes_what_an_interrupted_run_left(approved_preorder_factory):
    """A shard claimed a pre-order and died before Stripe was called: the attempt stays open. The
    catch-up marks the run interrupted, starts a new one, which resends with the same key (Stripe
    never got it) and settles it; the new run finishes, the dead one stays interrupted."""
    preorders = [approved_preorder_factory() for _ in range(3)]
    cycle = preorders[0].cycle
    close_window(cycle.pk)
    _due_now(cycle)
    dead = charging.start_run(cycle.pk, trigger="schedule")
    claimed = charging.claim_batch(dead, 2)  # then the worker was killed
    assert len(claimed) == 2
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=61)):
        runs = charge_due_cycles()
    assert len(runs) == 1 and runs[0] != dead.pk
    dead.refresh_from_db()
    assert dead.state == "interrupted"
    assert ChargeRun.objects.get(pk=runs[0]).state == "finished"
    assert set(PreOrder.objects.values_list("status", flat=True)) == {Status.TICKET_SENT}
    assert not ChargeAttempt.objects.filter(status=ChargeAttempt.Status.STARTED).exists()
    assert ChargeAttempt.objects.count() == 3  # the two claimed ones resent, not re-claimed


def test_a_live_run_is_left_alone_by_the_catch_up(approved_preorder_factory):
    preorder = approved_preorder_factory()
    close_window(preorder.cycle_id)
    _due_now(preorder.cycle)
    live = charging.start_run(preorder.cycle_id, trigger="schedule")
    run_execution.beat(live.pk)
    assert charging.due_cycles() == []
    assert charge_due_cycles() == []


def test_a_shard_does_not_finish_the_run_while_charges_are_in_flight(approved_preorder_factory):
    preorder = approved_preorder_factory()
    close_window(preorder.cycle_id)
    run = charging.start_run(preorder.cycle_id, trigger="test", early=True)
    charging.claim_batch(run, 5)  # another shard's charge, still waiting for Stripe
    assert run_execution.finish_if_done(run.pk) is False
    ChargeAttempt.objects.update(status=ChargeAttempt.Status.FAILED)
    assert run_execution.finish_if_done(run.pk) is True


def test_a_worker_clock_behind_beats_still_starts_the_run_at_the_charge_time(make_event, settings):
    """Beat fires at 19:00:00 by its clock; the worker's reads 18:59:57.5."""
    event = make_event()
    cycle = event.cycle
    behind = cycle.charge_at - dt.timedelta(seconds=2.5)
    with time_machine.travel(behind, tick=False):
        runs = charge_due_cycles()
    assert len(runs) == 1
    settings.CHARGE_CLOCK_TOLERANCE_SECONDS = 0
    cycle.charge_runs.all().delete()
    type(cycle).objects.filter(pk=cycle.pk).update(charge_run_started_at=None)
    with time_machine.travel(behind, tick=False):
        assert charge_due_cycles() == []


def test_staff_and_commands_get_no_such_tolerance(make_event):
    cycle = make_event().cycle
    with (
        time_machine.travel(cycle.charge_at - dt.timedelta(seconds=2.5), tick=False),
        pytest.raises(charging.ChargeRunError, match="due at"),
    ):
        charging.start_run(cycle.pk, trigger="command")
