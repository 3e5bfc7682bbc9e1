"""After Tuesday's run: whether a cycle's run is under way or settled, what it did in plain words,
and the managers' summary email, sent exactly once per run when the run has settled."""

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from events.models import Event, PresaleCycle
from members.selectors import manager_emails
from notifications.services import queue_email
from payments.failure_reasons import FailureKind, kind_of
from payments.models import ChargeAttempt, ChargeRun, Refund
from preorders.models import PreOrder
from preorders.states import Status
from tickets.selectors import pool_summaries

# A run with no finish after this long is not followed live any more, even before it is marked
# interrupted (payments.run_execution.recover_stalled_runs).
RUN_PRESUMED_DEAD_AFTER = dt.timedelta(hours=1)

# Why charges failed, in a manager's words: by the kind payments.failure_reasons sorts Stripe's
# codes into (a code of no known kind is shown as Stripe wrote it, made readable).
KIND_WORDS = {
    FailureKind.DECLINED: "Card declined by the bank",
    FailureKind.INSUFFICIENT_FUNDS: "Not enough money on the card",
    FailureKind.EXPIRED_CARD: "Card expired",
    FailureKind.INCORRECT_DETAILS: "Card details not accepted by the bank",
    FailureKind.AUTHENTICATION_REQUIRED: "The bank wanted the member to authenticate (3-D Secure)",
    FailureKind.PROCESSING_ERROR: "The bank could not process the payment",
}
CODE_WORDS = {"invalid_request": "The saved card could not be used"}

# Pending when decisions locked: not allocated, or in line for a freed place. A staff denial is
# a decision, not a shortage, and is not counted here.
NOT_ALLOCATED_STATUSES = [Status.NOT_ALLOCATED, Status.WAITLISTED]


def in_words(code: str) -> str:
    if code in CODE_WORDS:
        return CODE_WORDS[code]
    kind = kind_of(code)
    if kind in KIND_WORDS:
        return KIND_WORDS[kind]
    return code.replace("_", " ").capitalize() if code else "Unknown reason"


def run_in_progress(cycle_id: int, now: dt.datetime | None = None) -> bool:
    """A run of the cycle has started and not finished (and is not presumed dead), or charges it
    made are still waiting for Stripe's answer."""
    now = now or timezone.now()
    running = ChargeRun.objects.filter(
        cycle_id=cycle_id,
        finished_at__isnull=True,
        interrupted_at__isnull=True,
        started_at__gte=now - RUN_PRESUMED_DEAD_AFTER,
    ).exists()
    return (
        running
        or ChargeAttempt.objects.filter(
            preorder__cycle_id=cycle_id, status=ChargeAttempt.Status.STARTED
        ).exists()
    )


def run_settled(cycle_id: int) -> bool:
    """Every run finished, nothing approved left to charge and no charge awaiting an answer."""
    if not ChargeRun.objects.filter(cycle_id=cycle_id).exists():
        return False
    # An interrupted run (its workers died) is over: the run started after it carries on.
    if ChargeRun.objects.filter(
        cycle_id=cycle_id, finished_at__isnull=True, interrupted_at__isnull=True
    ).exists():
        return False
    if PreOrder.objects.filter(
        cycle_id=cycle_id, status__in=[Status.APPROVED, Status.CHARGING]
    ).exists():
        return False
    return not ChargeAttempt.objects.filter(
        preorder__cycle_id=cycle_id, status=ChargeAttempt.Status.STARTED
    ).exists()


@dataclass
class FailureGroup:
    reason: str
    names: list[str]


@dataclass
class EventLine:
    event: Event
    paid: int
    tickets_left: int  # tickets in the pool not given to anyone


@dataclass
class RunSummary:
    cycle: PresaleCycle
    attempted: int
    paid: int
    failed: int
    taken_pence: int
    refunded_pence: int
    not_allocated: int
    failures: list[FailureGroup]
    events: list[EventLine]
    unsettled: list[str] = field(default_factory=list)


def summarise(cycle_id: int) -> RunSummary:
    cycle = PresaleCycle.objects.get(pk=cycle_id)
    charged = PreOrder.objects.filter(cycle=cycle, charge_attempts__isnull=False).distinct()
    paid_ids = set(
        ChargeAttempt.objects.filter(
            preorder__cycle=cycle, status=ChargeAttempt.Status.SUCCEEDED
        ).values_list("preorder_id", flat=True)
    )
    failed = list(
        PreOrder.objects.filter(cycle=cycle, status=Status.FAILED)
        .select_related("member")
        .order_by("member__full_name")
    )
    codes = dict(
        ChargeAttempt.objects.filter(
            preorder__in=failed, status=ChargeAttempt.Status.FAILED
        ).values_list("preorder_id", "failure_code")
    )
    groups: dict[str, list[str]] = {}
    for preorder in failed:
        groups.setdefault(in_words(codes.get(preorder.pk, "")), []).append(
            preorder.member.full_name
        )
    taken = sum(
        ChargeAttempt.objects.filter(
            preorder__cycle=cycle, status=ChargeAttempt.Status.SUCCEEDED
        ).values_list("amount_pence", flat=True)
    )
    refunded = sum(
        Refund.objects.filter(preorder__cycle=cycle, status=Refund.Status.SUCCEEDED).values_list(
            "amount_pence", flat=True
        )
    ) + sum(
        PreOrder.objects.filter(
            cycle=cycle, status=Status.REFUNDED, refunds__isnull=True
        ).values_list("amount_pence", flat=True)
    )
    events = list(Event.objects.filter(cycle=cycle).order_by("starts_at", "id"))
    pools = pool_summaries([event.pk for event in events])
    paid_by_event: dict[int, int] = {}
    for event_id in PreOrder.objects.filter(pk__in=paid_ids).values_list("event_id", flat=True):
        paid_by_event[event_id] = paid_by_event.get(event_id, 0) + 1
    return RunSummary(
        cycle=cycle,
        attempted=charged.count(),
        paid=len(paid_ids),
        failed=len(failed),
        taken_pence=taken,
        refunded_pence=refunded,
        not_allocated=PreOrder.objects.filter(
            cycle=cycle, status__in=NOT_ALLOCATED_STATUSES
        ).count(),
        failures=[FailureGroup(reason, names) for reason, names in sorted(groups.items())],
        events=[
            EventLine(event, paid_by_event.get(event.pk, 0), pools[event.pk].unassigned)
            for event in events
        ],
        unsettled=unsettled(cycle.pk),
    )


def unsettled(cycle_id: int) -> list[str]:
    """What still needs an answer or a hand, in words."""
    lines = []
    waiting = ChargeAttempt.objects.filter(
        preorder__cycle_id=cycle_id, status=ChargeAttempt.Status.STARTED
    ).count()
    if waiting:
        lines.append(f"{waiting} charge{'s' if waiting != 1 else ''} still waiting for Stripe")
    no_ticket = PreOrder.objects.filter(
        cycle_id=cycle_id, status=Status.PAID, ticket__isnull=True
    ).count()
    if no_ticket:
        lines.append(f"{no_ticket} paid without a ticket (being refunded automatically)")
    # A paid pre-order becomes "ticket sent" once its ticket email is delivered.
    unsent = PreOrder.objects.filter(
        cycle_id=cycle_id, status=Status.PAID, ticket__isnull=False
    ).count()
    if unsent:
        lines.append(f"{unsent} ticket email{'s' if unsent != 1 else ''} not delivered yet")
    refunding = Refund.objects.filter(
        preorder__cycle_id=cycle_id, status=Refund.Status.REQUESTED
    ).count()
    if refunding:
        lines.append(f"{refunding} refund{'s' if refunding != 1 else ''} waiting for Stripe")
    return lines


def send_summary_if_settled(cycle_id: int) -> bool:
    """Email the managers the run's summary once it has settled: exactly once per run, however
    many workers, webhooks and reconciliations call this (the claim is one conditional
    UPDATE). Returns True if this call sent it."""
    if not run_settled(cycle_id):
        return False
    owed = ChargeRun.objects.filter(cycle_id=cycle_id, summary_sent_at__isnull=True).filter(
        Q(finished_at__isnull=False) | Q(interrupted_at__isnull=False)
    )
    runs = dict(owed.values_list("pk", "claimed"))
    if not runs:
        return False
    with transaction.atomic():
        if not ChargeRun.objects.filter(pk__in=runs, summary_sent_at__isnull=True).update(
            summary_sent_at=timezone.now()
        ):
            return False  # another caller claimed them first
        summarised_before = (
            ChargeRun.objects.filter(cycle_id=cycle_id, summary_sent_at__isnull=False)
            .exclude(pk__in=runs)
            .exists()
        )
        if summarised_before and not any(runs.values()):
            return False  # a rerun that found nothing to charge: nothing new to say
        summary = summarise(cycle_id)
        for email in manager_emails():
            queue_email(to_email=email, template="run_summary", context={"summary": summary})
    return True
