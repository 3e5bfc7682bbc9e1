"""Refunds: a manager gives a paid pre-order's money back in full, or one made in Stripe's
dashboard is reflected here. Either way the pre-order goes to `refunded` through one guarded
transition (complete_refund), its ticket is voided, the member is emailed and it is logged.

A refund never happens twice: the request is recorded as a Refund row (with its idempotency
key) under the pre-order's row lock *before* Stripe is called, and the database allows one
such row under way or done per pre-order. A second click, a second tab or a redelivered
webhook finds it and stops. A request whose answer was lost is finished by asking Stripe for
the refund its key made (payments.refunds.finish_stale_refunds, run by reconciliation)."""

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from events.pricing import format_pence as _money
from notifications.models import OutboundEmail
from notifications.services import email_member_about
from payments import gateway
from payments.installation import scoped_key
from payments.models import ChargeAttempt, Refund
from preorders import waitlist
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import transition_many
from preorders.states import REFUNDABLE_STATUSES, Status
from tickets.services import void_refunded_ticket

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = Refund._meta.get_field("reason").max_length


class RefundError(Exception):
    """A refund refused or not (yet) done; the message is written for the manager."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.CHARGE_STALE_AFTER_SECONDS)


def clean_reason(reason: object) -> str:
    text = " ".join(str(reason or "").split())
    if not text:
        raise RefundError("Say why you are refunding: the member reads it in their email.")
    if len(text) > MAX_REASON_LENGTH:
        raise RefundError(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    return text


def refund_preorder(preorder_id: int, *, actor, reason: object) -> Refund:
    """A manager's full refund of a paid (or ticketed) pre-order. Returns the finished Refund;
    raises RefundError when refused, when another request is already under way, or when
    Stripe's answer did not come (reconciliation then finishes it)."""
    reason = clean_reason(reason)
    refund, resend = _claim(preorder_id, actor=actor, reason=reason)
    return _send(refund, look_up_first=resend)


def _claim(preorder_id: int, *, actor, reason: str) -> tuple[Refund, bool]:
    """Record the refund under the pre-order's lock. Returns (refund, is_a_resend)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            preorder = PreOrder.objects.select_for_update().filter(pk=preorder_id).first()
            if preorder is None:
                raise RefundError("That pre-order does not exist.")
            if preorder.status == Status.REFUNDED:
                raise RefundError(f"Pre-order #{preorder.pk} has already been refunded.")
            under_way = preorder.refunds.filter(status=Refund.Status.REQUESTED).first()
            if under_way is not None:
                if under_way.created_at > now - _stale_after():
                    raise RefundError(
                        f"A refund of pre-order #{preorder.pk} is already under way; "
                        "this page shows it once Stripe has answered."
                    )
                return under_way, True  # its answer was lost: same key, same refund
            if preorder.status not in REFUNDABLE_STATUSES:
                raise RefundError(
                    f"Only a paid pre-order can be refunded; #{preorder.pk} is "
                    f"{preorder.get_status_display().lower()}."
                )
            if preorder.status == Status.PAID and not hasattr(preorder, "ticket"):
                raise RefundError(
                    f"Pre-order #{preorder.pk} got no ticket, so its payment is being refunded "
                    "automatically."
                )
            charge = _paid_attempt(preorder)
            number = (preorder.refunds.aggregate(n=Max("number"))["n"] or 0) + 1
            refund = Refund.objects.create(
                preorder=preorder,
                number=number,
                idempotency_key=scoped_key(f"presale-{preorder.pk}-refund-{number}"),
                payment_intent_id=charge.payment_intent_id,
                amount_pence=charge.amount_pence,
                reason=reason,
                source=Refund.Source.STAFF,
                requested_by=actor,
                created_at=now,
            )
            PreOrderLogEntry.objects.create(
                preorder=preorder,
                source=PreOrderLogEntry.Source.STAFF,
                actor=actor,
                action="refund_requested",
                from_status=preorder.status,
                to_status=preorder.status,
                note=f"Refund of {_money(refund.amount_pence)} sent to Stripe: {reason}",
                created_at=now,
            )
    except IntegrityError as error:
        # Two requests raced past the checks; the constraint let one through.
        raise RefundError("A refund of this pre-order is already under way.") from error
    return refund, False


def _paid_attempt(preorder: PreOrder) -> ChargeAttempt:
    attempt = preorder.charge_attempts.filter(
        status=ChargeAttempt.Status.SUCCEEDED, payment_intent_id__isnull=False
    ).first()
    if attempt is None:
        raise RefundError(f"Pre-order #{preorder.pk} has no payment on record to refund.")
    return attempt


def _send(refund: Refund, *, look_up_first: bool) -> Refund:
    try:
        found = None
        if look_up_first:
            found = gateway.find_refund(
                payment_intent_id=refund.payment_intent_id, refund_key=refund.idempotency_key
            )
        result = found or gateway.refund_payment(
            payment_intent_id=refund.payment_intent_id,
            amount_pence=refund.amount_pence,
            idempotency_key=refund.idempotency_key,
            metadata={
                "preorder_id": str(refund.preorder_id),
                "refund_key": refund.idempotency_key,
            },
        )
    except gateway.StripeUnavailable as error:
        logger.warning("No answer from Stripe for %s; reconciliation will finish it", refund)
        raise RefundError(
            "Stripe did not answer. The refund is recorded and will be checked with Stripe "
            "within a few minutes; nothing will be refunded twice."
        ) from error
    except gateway.GatewayError as error:
        _refused(refund, str(error))
        raise RefundError(str(error)) from error
    if result.status in ("failed", "canceled"):
        _refused(refund, f"Stripe says the refund {result.status}.")
        raise RefundError(f"Stripe says the refund {result.status}; nothing was refunded.")
    complete_refund(
        refund.preorder_id,
        stripe_refund_id=result.id,
        source=PreOrderLogEntry.Source.STAFF,
        actor=refund.requested_by,
    )
    refund.refresh_from_db()
    return refund


def _refused(refund: Refund, message: str) -> None:
    with transaction.atomic():
        Refund.objects.filter(pk=refund.pk, status=Refund.Status.REQUESTED).update(
            status=Refund.Status.FAILED, error=message[:500], finished_at=timezone.now()
        )
        PreOrderLogEntry.objects.create(
            preorder_id=refund.preorder_id,
            source=PreOrderLogEntry.Source.STRIPE,
            action="refund_refused",
            note=message[:500],
        )


def complete_refund(
    preorder_id: int,
    *,
    stripe_refund_id: str | None,
    source: str,
    actor=None,
    reason: str = "",
) -> bool:
    """THE transition to `refunded` for money given back in full (the hook later features, such
    as a waitlist freeing a place, build on). Under the pre-order's lock: the Refund row is
    finished (or, for a dashboard refund, created), the ticket voided, the pre-order moved and
    logged, the member emailed. Returns False if it was already refunded (a repeat)."""
    now = timezone.now()
    with transaction.atomic():
        preorder = (
            PreOrder.objects.select_for_update(of=("self",))
            .select_related("member", "event")
            .get(pk=preorder_id)
        )
        if preorder.status == Status.REFUNDED:
            return False
        refund = preorder.refunds.filter(status=Refund.Status.REQUESTED).first()
        if refund is None:
            charge = _paid_attempt(preorder)
            number = (preorder.refunds.aggregate(n=Max("number"))["n"] or 0) + 1
            refund = Refund(
                preorder=preorder,
                number=number,
                idempotency_key=scoped_key(f"presale-{preorder.pk}-refund-{number}"),
                payment_intent_id=charge.payment_intent_id,
                amount_pence=charge.amount_pence,
                reason=reason or "Refunded in Stripe's dashboard",
                source=Refund.Source.DASHBOARD,
                created_at=now,
            )
        refund.status = Refund.Status.SUCCEEDED
        refund.stripe_refund_id = stripe_refund_id or None
        refund.finished_at = now
        refund.save()
        note = f"{_money(refund.amount_pence)} refunded"
        if refund.stripe_refund_id:
            note += f" ({refund.stripe_refund_id})"
        ticket = void_refunded_ticket(preorder, actor=actor, note=refund.reason)
        # A ticket email not delivered yet must not deliver a code that no longer works.
        OutboundEmail.objects.filter(
            preorder=preorder,
            template="ticket",
            status__in=[OutboundEmail.Status.QUEUED, OutboundEmail.Status.FAILED],
        ).update(status=OutboundEmail.Status.SUPERSEDED)
        if ticket is not None:
            note += f"; ticket {ticket.code} voided"
            if waitlist.free_refunded_place(preorder, ticket, actor=actor, now=now):
                note += ", its place offered to the waitlist"
        transition_many(
            [preorder], Status.REFUNDED, actor=actor, source=source,
            note=f"{note}. Reason: {refund.reason}", now=now,
        )  # fmt: skip
        email_member_about(preorder, "preorder_refunded", refund=refund, ticket=ticket)
    return True


def reflect_charge_refunded(charge: dict) -> tuple[str, int | None]:
    """A charge.refunded webhook (a refund made anywhere, ours included): a full refund of a
    presale payment refunds its pre-order, once. Returns (result for the webhook log, pre-order
    id or None)."""
    refunds = gateway.refunds_from_event_object(charge)
    if not refunds.payment_intent_id:
        return "not a presale charge", None
    attempt = ChargeAttempt.objects.filter(payment_intent_id=refunds.payment_intent_id).first()
    if attempt is None:
        return "not a presale charge", None
    if attempt.status != ChargeAttempt.Status.SUCCEEDED:
        return "refund of a payment the pre-order did not keep (already handled)", None
    if not refunds.in_full:
        from payments.settlement import alert_staff

        PreOrderLogEntry.objects.create(
            preorder_id=attempt.preorder_id,
            source=PreOrderLogEntry.Source.STRIPE,
            action="partial_refund",
            note=(
                f"{_money(refunds.amount_refunded_pence)} of {_money(refunds.amount_pence)} "
                "refunded in Stripe; the pre-order keeps its ticket"
            ),
        )
        alert_staff(
            f"Pre-order #{attempt.preorder_id}: {_money(refunds.amount_refunded_pence)} of "
            f"{_money(refunds.amount_pence)} was refunded in Stripe. The presale only refunds in "
            "full, so the member keeps their ticket; check this was intended.",
        )
        return "partial refund: recorded, staff told", attempt.preorder_id
    changed = complete_refund(
        attempt.preorder_id,
        stripe_refund_id=refunds.refund_id,
        source=PreOrderLogEntry.Source.STRIPE,
    )
    return ("refunded" if changed else "already refunded"), attempt.preorder_id


def finish_stale_refunds() -> int:
    """Refund requests left without Stripe's answer (a timeout, a crash): finish each from what
    Stripe says, sending the request again (same key) only if Stripe never got it."""
    finished = 0
    cutoff = timezone.now() - _stale_after()
    stale = Refund.objects.filter(status=Refund.Status.REQUESTED, created_at__lte=cutoff)
    for refund in stale.order_by("pk"):
        try:
            _send(refund, look_up_first=True)
        except RefundError:
            continue
        finished += 1
    return finished
