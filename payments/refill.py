"""Freed places go to the next member in line: promotion (preorders/waitlist.py, under the
decision locks) followed by a charge through the charge run's own claims and idempotency keys,
so a promotion killed half-way and run again never charges anyone twice."""

import logging

from django.db.models import Q

from events.models import Event, PresaleCycle
from payments import run_execution
from payments.models import ChargeRun
from preorders import waitlist
from preorders.states import Status

logger = logging.getLogger(__name__)


def refill_event(event_id: int, *, actor=None) -> int:
    """Offer an event's freed places to its waitlist now and charge those promoted (staff's
    "Offer freed places", or the automatic refill). Returns how many were promoted."""
    promoted = waitlist.promote(event_id, actor=actor)
    cycle_id = Event.objects.values_list("cycle_id", flat=True).get(pk=event_id)
    charge_approved(cycle_id, actor=actor)
    return len(promoted)


def charge_approved(cycle_id: int, *, actor=None) -> ChargeRun | None:
    """Charge what is approved in a cycle whose decisions are locked (promoted members, or ones
    a killed process promoted but never charged). Not while a live run of the cycle is under way
    (it claims them itself, or the next minute's refill does); a run whose workers died is
    marked interrupted first, so it does not hold things up."""
    if not PresaleCycle.objects.filter(
        pk=cycle_id, charge_run_started_at__isnull=False, preorders__status=Status.APPROVED
    ).exists():
        return None
    run_execution.recover_stalled_runs()
    live = ChargeRun.objects.filter(
        cycle_id=cycle_id, finished_at__isnull=True, interrupted_at__isnull=True
    )
    if live.exists():
        return None
    run = ChargeRun.objects.create(cycle_id=cycle_id, trigger="waitlist", triggered_by=actor)
    return run_execution.execute_run(run.pk)


def refill_due() -> dict[str, int]:
    """What beat does every minute: refill automatic events, charge any promotion left
    uncharged, then close the waitlists whose time is over ("not allocated", once)."""
    promoted = 0
    for event_id in waitlist.events_to_refill():
        promoted += len(waitlist.promote(event_id))
    locked_with_approvals = PresaleCycle.objects.filter(
        Q(charge_run_started_at__isnull=False) & Q(preorders__status=Status.APPROVED)
    ).distinct()
    for cycle_id in locked_with_approvals.values_list("pk", flat=True):
        charge_approved(cycle_id)
    return {"promoted": promoted, "not_allocated": waitlist.close_due()}
