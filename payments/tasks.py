"""Background work for payments: thin tasks over the services, given primary keys."""

import datetime as dt
import logging

from celery import shared_task
from django.utils import timezone

from payments import authentication, charging, refill, run_execution
from payments.models import StripeEvent
from payments.stripe_events import process_event

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def charge_due_cycles() -> list[int]:
    """Fired by beat at the charge time (Tuesday 19:00 London) and every minute after, as a
    catch-up: for runs that beat or the workers missed, and runs whose workers died."""
    run_execution.recover_stalled_runs()
    runs = []
    for cycle_id in charging.due_cycles():
        try:
            run = charging.start_run(cycle_id, trigger="schedule")
        except charging.ChargeRunError:
            # One cycle that cannot start must not keep the others waiting.
            logger.exception("Charge run for cycle %s could not start", cycle_id)
            continue
        execute_charge_run.delay(run.pk)
        runs.append(run.pk)
    return runs


@shared_task(ignore_result=True)
def execute_charge_run(run_id: int) -> None:
    """Settle what earlier runs left, then fan the run out: one task per shard, each taken by
    whichever worker is free, on any machine."""
    for _ in range(run_execution.begin(run_id)):
        charge_run_shard.delay(run_id)


@shared_task(ignore_result=True, acks_late=True)
def charge_run_shard(run_id: int) -> int:
    """Returns how many pre-orders this shard claimed (in the worker's log)."""
    return run_execution.work(run_id)


@shared_task(ignore_result=True)
def reconcile_charges() -> dict[str, int]:
    return charging.reconcile()


@shared_task(ignore_result=True)
def process_stripe_event(event_pk: int) -> None:
    process_event(event_pk)


@shared_task(ignore_result=True)
def process_pending_events(older_than_seconds: int = 120, limit: int = 500) -> int:
    """Events not handled yet: with STRIPE_WEBHOOK_PROCESSING=polled, every event (beat calls
    this every two seconds); otherwise those whose task was lost (a broker outage when they
    arrived) or that failed."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        StripeEvent.objects.filter(
            status__in=[StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED],
            received_at__lte=cutoff,
            attempts__lt=10,
        )
        .order_by("received_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for event_pk in ids:
        process_event(event_pk)
    return len(ids)


@shared_task(ignore_result=True)
def expire_authentications() -> int:
    """Every minute: PaymentIntents whose authentication deadline passed are cancelled at
    Stripe and their pre-orders failed (their places go to the waitlist)."""
    return authentication.expire_due()


@shared_task(ignore_result=True)
def refill_waitlists() -> dict[str, int]:
    """Every minute: freed places to the waitlists, and closed waitlists told."""
    return refill.refill_due()


@shared_task(ignore_result=True)
def offer_freed_places(event_id: int, actor_id: int | None = None) -> int:
    from members.models import Member

    actor = Member.objects.filter(pk=actor_id).first() if actor_id else None
    return refill.refill_event(event_id, actor=actor)
