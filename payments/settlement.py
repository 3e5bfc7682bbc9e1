"""Settling a charge attempt once Stripe's answer is known, from whichever arrives first: the
synchronous response, a webhook, or reconciliation. The first moves the states; the others find
the attempt settled and do nothing.

    succeeded -> pre-order paid + one ticket assigned (same transaction) -> ticket email
    failed    -> pre-order failed with the reason -> "Card declined – try public drop" email
    requires_action (the bank wants the cardholder) -> with PRESALE_AUTHENTICATION_RECOVERY,
                 awaiting authentication until the deadline (payments/authentication.py);
                 without, failed and its PaymentIntent cancelled at Stripe
    no ticket -> (never expected: approval reserved one) refund, pre-order refunded, staff told
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.pricing import format_pence
from notifications.services import email_member_about, queue_email
from payments import authentication, gateway
from payments.models import ChargeAttempt
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import transition_many
from preorders.states import Status
from tickets.delivery import dispatch_ticket
from tickets.services import NoTicketAvailable, assign_ticket

logger = logging.getLogger(__name__)


class OutcomeMismatch(Exception):
    """Stripe's answer describes another payment than the attempt's: nothing is settled."""


def check_outcome(
    attempt: ChargeAttempt, customer_id: str | None, outcome: gateway.ChargeOutcome
) -> None:
    """Raise OutcomeMismatch unless every fact Stripe gave matches the attempt: its
    PaymentIntent (once known), amount, currency, customer, charge_key, and the key's mode."""
    facts = {
        "PaymentIntent": (attempt.payment_intent_id, outcome.payment_intent_id),
        "amount": (attempt.amount_pence, outcome.amount),
        "currency": (gateway.CURRENCY, outcome.currency and outcome.currency.lower()),
        "customer": (customer_id, outcome.customer_id),
        "charge_key": (attempt.idempotency_key, outcome.charge_key),
        "livemode": (settings.STRIPE_LIVEMODE, outcome.livemode),
    }
    wrong = [
        f"{name} {theirs!r} is not {ours!r}"
        for name, (ours, theirs) in facts.items()
        if ours is not None and theirs is not None and ours != theirs
    ]
    if wrong:
        raise OutcomeMismatch(f"Not settling {attempt}: " + "; ".join(wrong))


def settle(attempt_id: int, outcome: gateway.ChargeOutcome, *, source: str) -> bool:
    """Apply Stripe's outcome to an attempt and its pre-order. Returns False if it was already
    settled (a repeated webhook, or the webhook beat the synchronous answer). Raises
    OutcomeMismatch, changing nothing, if the outcome is about another payment."""
    attempt = ChargeAttempt.objects.select_related("preorder").get(pk=attempt_id)
    check_outcome(attempt, attempt.preorder.stripe_customer_id, outcome)
    if outcome.status == "processing":
        _remember_payment_intent(attempt_id, outcome.payment_intent_id)
        return False
    refund_needed = late_success = changed = False
    now = timezone.now()
    with transaction.atomic():
        attempt = ChargeAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.payment_intent_id and outcome.payment_intent_id != attempt.payment_intent_id:
            check_outcome(attempt, None, outcome)  # another path recorded another PaymentIntent
        if outcome.payment_intent_id and not attempt.payment_intent_id:
            attempt.payment_intent_id = outcome.payment_intent_id
        if attempt.status == ChargeAttempt.Status.AWAITING:
            # Only the member's success settles it now; a failed authentication may be tried
            # again, and the deadline (payments/authentication.py) ends it otherwise.
            if outcome.status == "succeeded":
                refund_needed = _apply_outcome(attempt, outcome, source=source, now=now)
                changed = True
        elif attempt.status != ChargeAttempt.Status.STARTED:
            attempt.save(update_fields=["payment_intent_id"])
            # Money taken for a pre-order already failed (e.g. a late 3-D Secure
            # authentication): it has no ticket, so the money goes back.
            late_success = bool(
                attempt.status == ChargeAttempt.Status.FAILED
                and outcome.status == "succeeded"
                and outcome.payment_intent_id
            )
        else:
            refund_needed = _apply_outcome(attempt, outcome, source=source, now=now)
            changed = True
    if (
        changed
        and attempt.status == ChargeAttempt.Status.FAILED
        and outcome.status == "requires_action"
    ):
        cancel_abandoned_intent(attempt.pk)
    if late_success:
        refund_late_success(attempt.pk, outcome.payment_intent_id)
    if refund_needed:
        refund_unticketed(attempt.preorder_id)
    return changed


def _apply_outcome(attempt: ChargeAttempt, outcome, *, source: str, now) -> bool:
    """Inside settle's transaction: move the attempt and its pre-order. Returns True when the
    pre-order was paid but its pool had no ticket (it must be refunded after commit)."""
    preorder = PreOrder.objects.select_for_update().get(pk=attempt.preorder_id)
    attempt.finished_at = now
    if outcome.status == "succeeded":
        attempt.status = ChargeAttempt.Status.SUCCEEDED
        attempt.save()
        transition_many(
            [preorder], Status.PAID, actor=None, source=source,
            note=f"Paid {format_pence(preorder.amount_pence)}, {attempt.payment_intent_id}",
            now=now,
        )  # fmt: skip
        try:
            ticket = assign_ticket(preorder)
        except NoTicketAvailable:
            logger.error("Pre-order %s was paid but its pool is empty", preorder.pk)
            return True
        # Rendering the email (QR code, calendar entry) is left to a worker, off the charge
        # run's hot path; nothing is lost if that hand-over fails (reconciliation redoes it).
        transaction.on_commit(lambda: dispatch_ticket(ticket.preorder_id))
        return False
    # Without the recovery, the brief's rule: failed = cancel (the PaymentIntent is cancelled
    # at Stripe after commit, see settle).
    recoverable = outcome.status == "requires_action" and outcome.payment_intent_id
    if recoverable and settings.PRESALE_AUTHENTICATION_RECOVERY:
        authentication.await_authentication(attempt, preorder, outcome, source=source, now=now)
        return False
    attempt.status = ChargeAttempt.Status.FAILED
    attempt.failure_code = outcome.failure_code[:100]
    attempt.failure_message = outcome.failure_message[:500]
    attempt.save()
    preorder.failure_reason = (
        f"{outcome.failure_code}: {outcome.failure_message}"
        if outcome.failure_message
        else outcome.failure_code
    )[:500]
    preorder.failure_code = outcome.failure_code[:100]
    preorder.save(update_fields=["failure_reason", "failure_code"])
    transition_many(
        [preorder], Status.FAILED, actor=None, source=source,
        note=preorder.failure_reason, now=now,
    )  # fmt: skip
    email_member_about(preorder, "payment_failed")
    return False


def cancel_abandoned_intent(attempt_id: int) -> bool:
    """Cancel at Stripe the PaymentIntent of a failed attempt that was waiting for the
    cardholder, so it can never take money later. Returns True once it is cancelled (or turned
    out to have succeeded, which is then settled as a late payment and refunded); False when
    Stripe could not be asked (reconciliation tries again)."""
    attempt = ChargeAttempt.objects.get(pk=attempt_id)
    if attempt.intent_cancelled_at or not attempt.payment_intent_id:
        return True
    try:
        outcome = gateway.cancel_payment_intent(attempt.payment_intent_id)
    except gateway.GatewayError:
        logger.warning("PaymentIntent %s not cancelled yet", attempt.payment_intent_id)
        return False
    ChargeAttempt.objects.filter(pk=attempt.pk).update(intent_cancelled_at=timezone.now())
    if outcome.status == "succeeded":
        settle(attempt.pk, outcome, source="stripe")
    return True


def refund_late_success(attempt_id: int, payment_intent_id: str) -> None:
    attempt = ChargeAttempt.objects.select_related("preorder__member", "preorder__event").get(
        pk=attempt_id
    )
    preorder = attempt.preorder
    try:
        refund_id = gateway.refund(payment_intent_id, reason_key=f"{attempt.idempotency_key}-late")
    except gateway.GatewayError:
        logger.exception("Late payment %s could not be refunded yet", payment_intent_id)
        alert_staff(
            f"Pre-order #{preorder.pk} failed, but Stripe later took payment {payment_intent_id}; "
            "the automatic refund failed. Refund it in the Stripe dashboard.",
            preorder=preorder,
        )
        return
    with transaction.atomic():
        PreOrderLogEntry.objects.create(
            preorder=preorder,
            source="stripe",
            action="late_payment_refunded",
            from_status=preorder.status,
            to_status=preorder.status,
            note=(
                f"Payment {payment_intent_id} arrived after the pre-order failed: "
                f"refunded ({refund_id})"
            ),
        )
        email_member_about(preorder, "refunded")
        alert_staff(
            f"Pre-order #{preorder.pk} had failed, but payment {payment_intent_id} went through "
            f"later; it was refunded automatically ({refund_id}).",
            preorder=preorder,
        )


def _remember_payment_intent(attempt_id: int, payment_intent_id: str | None) -> None:
    if payment_intent_id:
        ChargeAttempt.objects.filter(pk=attempt_id, payment_intent_id__isnull=True).update(
            payment_intent_id=payment_intent_id
        )


def refund_unticketed(preorder_id: int) -> None:
    """A paid pre-order with no ticket to give: give the money back and tell everyone. If
    Stripe cannot be reached, the pre-order stays paid without a ticket and reconciliation
    (payments.charging.reconcile) tries again."""
    preorder = PreOrder.objects.select_related("member", "event").get(pk=preorder_id)
    if preorder.status != Status.PAID or hasattr(preorder, "ticket"):
        return
    if preorder.refunds.exclude(status="failed").exists():
        return  # a manager's refund is under way (payments.refunds): never refund twice
    attempt = preorder.charge_attempts.get(status=ChargeAttempt.Status.SUCCEEDED)
    try:
        refund_id = gateway.refund(attempt.payment_intent_id, reason_key=attempt.idempotency_key)
    except gateway.GatewayError:
        logger.exception("Refund of pre-order %s failed; reconciliation will retry", preorder.pk)
        return
    with transaction.atomic():
        locked = PreOrder.objects.select_for_update().get(pk=preorder.pk)
        if locked.status != Status.PAID:
            return
        transition_many(
            [locked], Status.REFUNDED, actor=None, source="system",
            note=f"No ticket left in the pool: refunded ({refund_id})", now=timezone.now(),
        )  # fmt: skip
        email_member_about(preorder, "refunded")
        alert_staff(
            f"Pre-order #{preorder.pk} was paid but {preorder.event.title} had no ticket left; "
            f"the payment was refunded ({refund_id}). Check the event's pool.",
            preorder=preorder,
        )


def alert_staff(message: str, *, preorder=None) -> None:
    from members.selectors import manager_emails

    for email in manager_emails():
        queue_email(
            to_email=email,
            template="staff_alert",
            context={"message": message},
            preorder=preorder,
        )
