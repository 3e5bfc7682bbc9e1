"""How a charge run is carried out: fanned out over any number of workers, alive or not.

A run (payments.charging.start_run) is carried out by one or more *shards*: each claims approved
pre-orders of the run's cycle (SELECT … FOR UPDATE SKIP LOCKED, so no two claim the same) and
charges them from a pool of threads, every PaymentIntent creation paced by one limiter shared by
all shards on all machines (payments.ratelimit). Shards are Celery tasks (payments.tasks), so
they run on whichever worker processes exist; on the embedded default, one worker runs them all.

Every shard beats the run's heartbeat while it works. The last shard to find nothing left
finishes the run. A run whose heartbeat stops (its worker was killed) is marked interrupted by
`recover_stalled_runs`, and the catch-up starts a new run for its cycle, which settles what the
dead one left in flight and charges whatever it never reached."""

import datetime as dt
import logging
import math
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from payments.charging import charge_attempt, claim_batch, reconcile, start_run
from payments.models import ChargeAttempt, ChargeRun
from payments.ratelimit import RateLimiter, charge_rate_limiter
from preorders.models import PreOrder
from preorders.states import Status

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_SECONDS = 5


def begin(run_id: int, workers: int | None = None) -> int:
    """Settle what earlier runs of the cycle left hanging, then say how many shards to start
    (default CHARGE_RUN_WORKERS)."""
    run = ChargeRun.objects.get(pk=run_id)
    reconcile(cycle_id=run.cycle_id, include_interrupted=True)
    workers = max(1, workers or settings.CHARGE_RUN_WORKERS)
    ChargeRun.objects.filter(pk=run_id).update(workers=workers, heartbeat_at=timezone.now())
    return workers


def work(run_id: int, *, limiter: RateLimiter | None = None) -> int:
    """One shard: claim and charge until the cycle has nothing approved left, then finish the
    run if nothing of it is still in flight. Returns how many pre-orders this shard claimed."""
    run = ChargeRun.objects.get(pk=run_id)
    if run.finished_at or run.interrupted_at:
        return 0
    limiter = limiter or charge_rate_limiter()
    # The run's concurrency is shared between its shards (each thread may hold a database
    # connection while it settles; the pace itself is the limiter's).
    concurrency = max(2, math.ceil(settings.CHARGE_CONCURRENCY / max(1, run.workers)))
    claimed_total = 0
    in_flight: set[Future] = set()
    last_beat = 0.0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        # A pipeline, not batches: new pre-orders are claimed as soon as charges finish, so a
        # slow answer never holds the others back. Claims stay small (twice the concurrency)
        # so that the other shards share the work.
        while True:
            now = timezone.now().timestamp()
            if now - last_beat >= HEARTBEAT_EVERY_SECONDS:
                beat(run_id)
                last_beat = now
            if len(in_flight) < 2 * concurrency:
                claimed = claim_batch(run, 2 * concurrency - len(in_flight))
                claimed_total += len(claimed)
                in_flight |= {pool.submit(_charge_in_thread, pk, limiter) for pk in claimed}
                if claimed:
                    continue
            if not in_flight:
                break
            _, in_flight = wait(
                in_flight, timeout=HEARTBEAT_EVERY_SECONDS, return_when=FIRST_COMPLETED
            )
    if claimed_total:
        ChargeRun.objects.filter(pk=run_id).update(claimed=F("claimed") + claimed_total)
    finish_if_done(run_id)
    return claimed_total


def beat(run_id: int) -> None:
    ChargeRun.objects.filter(pk=run_id, finished_at__isnull=True).update(
        heartbeat_at=timezone.now()
    )


def finish_if_done(run_id: int) -> bool:
    """Finish the run once its cycle has nothing approved left and none of its attempts is still
    waiting for Stripe. A shard that finds other shards' charges in flight leaves it to them."""
    with transaction.atomic():
        run = ChargeRun.objects.select_for_update().get(pk=run_id)
        if run.finished_at or run.interrupted_at:
            return bool(run.finished_at)
        if PreOrder.objects.filter(cycle_id=run.cycle_id, status=Status.APPROVED).exists():
            return False
        if run.attempts.filter(status=ChargeAttempt.Status.STARTED).exists():
            return False
        run.finished_at = timezone.now()
        run.save(update_fields=["finished_at"])
    return True


def recover_stalled_runs(now: dt.datetime | None = None) -> list[int]:
    """Mark interrupted every unfinished run that has given no sign of life for
    CHARGE_RUN_STALE_SECONDS (its workers died or were killed); returns their cycles. Never
    leaves a run "still running" for ever."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.CHARGE_RUN_STALE_SECONDS)
    stalled = ChargeRun.objects.filter(
        finished_at__isnull=True, interrupted_at__isnull=True
    ).filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
    cycles = list(stalled.order_by().values_list("cycle_id", flat=True).distinct())
    count = stalled.update(interrupted_at=now)
    if count:
        logger.warning("Marked %s charge run(s) interrupted: no heartbeat since %s", count, cutoff)
    return cycles


def _charge_in_thread(attempt_id: int, limiter: RateLimiter) -> None:
    try:
        charge_attempt(attempt_id, limiter)
    except Exception:
        # One pre-order's trouble must not stop the run; its attempt stays open and
        # reconciliation settles it.
        logger.exception("Charge attempt %s failed unexpectedly", attempt_id)
    finally:
        close_old_connections()
        connection.close()


def execute_run(run_id: int) -> ChargeRun:
    """The whole run in this process (the `charge_run` command, tests, benchmarks): the same
    steps the Celery tasks take, with one shard."""
    begin(run_id, workers=1)
    work(run_id)
    return ChargeRun.objects.get(pk=run_id)


def run_charges(cycle_id: int, *, trigger: str, actor=None, early: bool = False) -> ChargeRun:
    run = start_run(cycle_id, trigger=trigger, actor=actor, early=early)
    return execute_run(run.pk)
