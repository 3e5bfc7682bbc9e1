"""The charge run: every approved pre-order of a cycle is charged off-session, once.

Each pre-order is *claimed* (approved -> charging, with a ChargeAttempt row holding the
idempotency key) under a row lock with SKIP LOCKED before Stripe is called, so two runs, two
workers or a rerun never charge one pre-order twice — even against a Stripe stand-in that
ignores idempotency keys. Charges then go out concurrently (CHARGE_CONCURRENCY threads) under a
pace shared by every worker (CHARGE_RATE_PER_SECOND; see payments/run_execution.py for how a run
is fanned out over workers and survives their death). An attempt left without an answer (a crash, a
timeout) is settled by asking Stripe for the PaymentIntent it created — by id, or by the key
in its metadata — and is only sent again if Stripe never received it."""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from config import log_context
from events import london
from events.models import Event, PresaleCycle
from notifications.models import OutboundEmail
from payments import authentication, gateway
from payments.installation import scoped_key
from payments.models import ChargeAttempt, ChargeRun
from payments.ratelimit import RateLimiter
from payments.refunds import finish_stale_refunds
from payments.run_summary import send_summary_if_settled
from payments.settlement import (
    OutcomeMismatch,
    cancel_abandoned_intent,
    refund_unticketed,
    settle,
)
from preorders.decisions import lock_decisions
from preorders.models import PreOrder
from preorders.services import transition_many
from preorders.states import Status
from tickets.delivery import mark_ticket_sent, send_ticket
from tickets.selectors import pool_summaries

logger = logging.getLogger(__name__)


class ChargeRunError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Before the run --------------------------------------------------------------------------


@dataclass
class EventPreview:
    event: Event
    approved: int
    total_pence: int
    left: int

    @property
    def covered(self) -> bool:
        return self.left >= 0

    @property
    def short_by(self) -> int:
        return max(0, -self.left)


@dataclass
class RunPreview:
    cycle: PresaleCycle
    events: list[EventPreview] = field(default_factory=list)
    pending: int = 0

    @property
    def approved(self) -> int:
        return sum(item.approved for item in self.events)

    @property
    def total_pence(self) -> int:
        return sum(item.total_pence for item in self.events)

    @property
    def covered(self) -> bool:
        return all(item.covered for item in self.events)


def preview(cycle_id: int) -> RunPreview:
    """The dry run: who would be charged, how much in all, whether each pool covers them."""
    cycle = PresaleCycle.objects.get(pk=cycle_id)
    events = list(Event.objects.filter(cycle=cycle).order_by("starts_at", "id"))
    pools = pool_summaries([event.pk for event in events])
    sums = {
        row["event_id"]: row
        for row in PreOrder.objects.filter(cycle=cycle, status=Status.APPROVED)
        .values("event_id")
        .annotate(n=Count("id"), total=Sum("amount_pence"))
    }
    result = RunPreview(
        cycle=cycle,
        pending=PreOrder.objects.filter(cycle=cycle, status=Status.PENDING).count(),
    )
    for event in events:
        row = sums.get(event.pk, {"n": 0, "total": 0})
        result.events.append(EventPreview(event, row["n"], row["total"] or 0, pools[event.pk].left))
    return result


def approved_preorders(cycle_id: int):
    return (
        PreOrder.objects.filter(cycle_id=cycle_id, status=Status.APPROVED)
        .select_related("member", "event")
        .order_by("event__starts_at", "created_at")
    )


# --- The run ---------------------------------------------------------------------------------


def start_run(
    cycle_id: int, *, trigger: str, actor=None, now: dt.datetime | None = None, early: bool = False
) -> ChargeRun:
    """Lock decisions (pending -> not allocated, members told) and open a run record. Before the
    cycle's charge time only an explicit early start (staff, command) is allowed, and never
    while members can still pre-order. The schedule's own trigger allows for a worker clock up
    to CHARGE_CLOCK_TOLERANCE_SECONDS behind beat's."""
    now = now or timezone.now()
    if trigger == "schedule":
        now += dt.timedelta(seconds=settings.CHARGE_CLOCK_TOLERANCE_SECONDS)
    cycle = PresaleCycle.objects.get(pk=cycle_id)
    if now < cycle.window_ends_at:
        raise ChargeRunError(
            f"Pre-orders are open until {london.when(cycle.last_open_moment)}: "
            "close the window before charging."
        )
    if now < cycle.charge_at and not early:
        raise ChargeRunError(f"The charge run is due at {london.when(cycle.charge_at)}.")
    lock_decisions(cycle.pk)
    return ChargeRun.objects.create(cycle=cycle, trigger=trigger, triggered_by=actor)


def claim_batch(run: ChargeRun, size: int) -> list[int]:
    """Move up to `size` approved pre-orders to charging, each with a new ChargeAttempt carrying
    the idempotency key its Stripe call will use. Rows another run has locked are skipped."""
    now = timezone.now()
    with transaction.atomic():
        preorders = list(
            PreOrder.objects.select_for_update(skip_locked=True)
            .filter(cycle_id=run.cycle_id, status=Status.APPROVED)
            .order_by("id")[:size]
        )
        if not preorders:
            return []
        numbers = dict(
            ChargeAttempt.objects.filter(preorder__in=preorders)
            .values_list("preorder_id")
            .annotate(n=Count("id"))
        )
        attempts = ChargeAttempt.objects.bulk_create(
            ChargeAttempt(
                preorder=preorder,
                run=run,
                number=numbers.get(preorder.pk, 0) + 1,
                idempotency_key=scoped_key(
                    f"presale-{preorder.pk}-charge-{numbers.get(preorder.pk, 0) + 1}"
                ),
                amount_pence=preorder.amount_pence,
                created_at=now,
            )
            for preorder in preorders
        )
        transition_many(
            preorders, Status.CHARGING, actor=None, source="system",
            note=f"Claimed by charge run {run.pk}", now=now,
        )  # fmt: skip
    return [attempt.pk for attempt in attempts]


def charge_attempt(attempt_id: int, limiter: RateLimiter | None = None) -> None:
    """Call Stripe for a claimed attempt and settle the answer. Without an answer, leave it."""
    attempt = ChargeAttempt.objects.select_related("preorder").get(pk=attempt_id)
    if attempt.status != ChargeAttempt.Status.STARTED:
        return
    with log_context.bound(preorder_id=attempt.preorder_id, charge_attempt_id=attempt.pk):
        _charge(attempt, limiter)


def _charge(attempt: ChargeAttempt, limiter: RateLimiter | None) -> None:
    preorder = attempt.preorder
    try:
        outcome = gateway.charge_off_session(
            amount_pence=attempt.amount_pence,
            customer_id=preorder.stripe_customer_id,
            payment_method_id=preorder.payment_method_id,
            idempotency_key=attempt.idempotency_key,
            metadata={
                "preorder_id": str(preorder.pk),
                "cycle_id": str(preorder.cycle_id),
                "charge_key": attempt.idempotency_key,
            },
            before_each_try=limiter.acquire if limiter is not None else None,
        )
    except gateway.StripeUnavailable:
        logger.warning("No answer from Stripe for %s; reconciliation will settle it", attempt)
        return
    except gateway.GatewayError as error:
        # Stripe refused the request itself (e.g. the card was removed): a failure, not a mystery.
        outcome = gateway.ChargeOutcome("failed", None, error.code or "invalid_request", str(error))
    settle(attempt.pk, outcome, source="stripe")
    logger.info("Charge %s: %s", attempt.idempotency_key, outcome.status)


# --- Reconciliation --------------------------------------------------------------------------


def reconcile(
    *,
    cycle_id: int | None = None,
    older_than: dt.timedelta | None = None,
    include_interrupted: bool = False,
) -> dict[str, int]:
    """Settle attempts that have had no answer for a while by asking Stripe, and refund paid
    pre-orders that could not get a ticket. Attempts younger than `older_than` (default:
    CHARGE_STALE_AFTER_SECONDS) are left alone: another worker may still be waiting on them —
    unless their run is known to be dead (`include_interrupted`)."""
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.CHARGE_STALE_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    unanswered = Q(created_at__lte=cutoff)
    if include_interrupted:
        unanswered |= Q(run__interrupted_at__isnull=False)
    stale = ChargeAttempt.objects.filter(unanswered, status=ChargeAttempt.Status.STARTED)
    stale = stale.select_related("preorder")
    if cycle_id is not None:
        stale = stale.filter(preorder__cycle_id=cycle_id)
    counts = {"settled": 0, "resent": 0, "unreachable": 0, "refunded": 0}
    for attempt in stale.iterator():
        try:
            if attempt.payment_intent_id:
                outcome = gateway.payment_intent_outcome(attempt.payment_intent_id)
            else:
                outcome = gateway.find_charge(
                    customer_id=attempt.preorder.stripe_customer_id,
                    idempotency_key=attempt.idempotency_key,
                )
            if outcome is None:
                # Stripe never received the request: sending it now (same key) cannot
                # double-charge.
                charge_attempt(attempt.pk)
                counts["resent"] += 1
            elif settle(attempt.pk, outcome, source="stripe"):
                counts["settled"] += 1
        except gateway.StripeUnavailable:
            counts["unreachable"] += 1
        except OutcomeMismatch:
            logger.exception("Charge attempt %s left open: Stripe's answer does not match", attempt)
            counts["mismatched"] = counts.get("mismatched", 0) + 1
    # Payments members confirmed with their bank whose news never reached us.
    if authenticated := authentication.settle_completed(older_than=older_than):
        counts["authenticated"] = authenticated
    # PaymentIntents given up on (authentication without the recovery) whose cancellation at
    # Stripe did not go through yet: none may stay open.
    abandoned = ChargeAttempt.objects.filter(
        status=ChargeAttempt.Status.FAILED,
        failure_code="authentication_required",
        payment_intent_id__isnull=False,
        intent_cancelled_at__isnull=True,
    )
    if cycle_id is not None:
        abandoned = abandoned.filter(preorder__cycle_id=cycle_id)
    for attempt_id in abandoned.values_list("pk", flat=True):
        cancel_abandoned_intent(attempt_id)
    unsent = PreOrder.objects.filter(status=Status.PAID, ticket__isnull=False).exclude(
        emails__template="ticket"
    )
    if cycle_id is not None:
        unsent = unsent.filter(cycle_id=cycle_id)
    for preorder_id in unsent.values_list("pk", flat=True):
        send_ticket(preorder_id)
        counts["tickets_emailed"] = counts.get("tickets_emailed", 0) + 1
    # A ticket email delivered by a worker killed before it could record "ticket_sent".
    delivered = OutboundEmail.objects.filter(
        template="ticket", status=OutboundEmail.Status.SENT, preorder__status=Status.PAID
    )
    if cycle_id is not None:
        delivered = delivered.filter(preorder__cycle_id=cycle_id)
    for email in delivered:
        mark_ticket_sent(email)
    unticketed = PreOrder.objects.filter(status=Status.PAID, ticket__isnull=True)
    if cycle_id is not None:
        unticketed = unticketed.filter(cycle_id=cycle_id)
    for preorder_id in unticketed.values_list("pk", flat=True):
        refund_unticketed(preorder_id)
        counts["refunded"] += 1
    counts["refunds_finished"] = finish_stale_refunds()
    _finish_settled_runs(cycle_id)
    return counts


def _finish_settled_runs(cycle_id: int | None) -> None:
    """Runs whose last charges were settled here or by webhooks (after their workers had
    stopped waiting) are finished now, and settled runs still owe their managers' summary."""
    from payments.run_execution import finish_if_done  # it builds on this module

    unfinished = ChargeRun.objects.filter(finished_at__isnull=True, interrupted_at__isnull=True)
    if cycle_id is not None:
        unfinished = unfinished.filter(cycle_id=cycle_id)
    for run_id in unfinished.values_list("pk", flat=True):
        finish_if_done(run_id)
    owed = ChargeRun.objects.filter(summary_sent_at__isnull=True).filter(
        Q(finished_at__isnull=False) | Q(interrupted_at__isnull=False)
    )
    if cycle_id is not None:
        owed = owed.filter(cycle_id=cycle_id)
    for owed_cycle in set(owed.values_list("cycle_id", flat=True)):
        send_summary_if_settled(owed_cycle)


# --- After the run ---------------------------------------------------------------------------


@dataclass
class RunReport:
    cycle: PresaleCycle
    runs: list[ChargeRun]
    attempted: int  # charge attempts made (each pre-order claimed, once per try)
    paid: int
    failed: int
    in_flight: int
    awaiting_authentication: int
    failures_by_reason: dict[str, int]
    total_taken_pence: int

    @property
    def started_at(self):
        return min((run.started_at for run in self.runs), default=None)

    @property
    def finished_at(self):
        if not self.runs or any(run.finished_at is None for run in self.runs):
            return None
        return max(run.finished_at for run in self.runs)


def report(cycle_id: int) -> RunReport:
    cycle = PresaleCycle.objects.get(pk=cycle_id)
    attempts = ChargeAttempt.objects.filter(preorder__cycle=cycle)
    totals = attempts.aggregate(
        attempted=Count("id"),
        paid=Count("id", filter=Q(status=ChargeAttempt.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status=ChargeAttempt.Status.FAILED)),
        in_flight=Count("id", filter=Q(status=ChargeAttempt.Status.STARTED)),
        awaiting=Count("id", filter=Q(status=ChargeAttempt.Status.AWAITING)),
        taken=Sum("amount_pence", filter=Q(status=ChargeAttempt.Status.SUCCEEDED)),
    )
    reasons = dict(
        attempts.filter(status=ChargeAttempt.Status.FAILED)
        .values_list("failure_code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return RunReport(
        cycle=cycle,
        runs=list(cycle.charge_runs.order_by("started_at")),
        attempted=totals["attempted"],
        paid=totals["paid"],
        failed=totals["failed"],
        in_flight=totals["in_flight"],
        awaiting_authentication=totals["awaiting"],
        failures_by_reason=reasons,
        total_taken_pence=totals["taken"] or 0,
    )


def due_cycles(now: dt.datetime | None = None) -> list[int]:
    """Cycles whose charge time has passed (within a week, allowing for a worker clock a little
    behind beat's) that were never started, still have approved pre-orders, or have charges
    that an interrupted run left in flight — unless a live run of theirs is under way. (Runs
    that stopped beating are marked interrupted by run_execution.recover_stalled_runs first.)"""
    now = (now or timezone.now()) + dt.timedelta(seconds=settings.CHARGE_CLOCK_TOLERANCE_SECONDS)
    busy = ChargeRun.objects.filter(finished_at__isnull=True, interrupted_at__isnull=True).values(
        "cycle_id"
    )
    left_in_flight = Q(
        charge_runs__interrupted_at__isnull=False,
        charge_runs__attempts__status=ChargeAttempt.Status.STARTED,
    )
    return list(
        PresaleCycle.objects.filter(charge_at__lte=now, charge_at__gte=now - dt.timedelta(days=7))
        .filter(
            Q(charge_run_started_at__isnull=True)
            | Q(preorders__status=Status.APPROVED)
            | left_in_flight
        )
        .exclude(pk__in=busy)
        .distinct()
        .values_list("pk", flat=True)
    )
