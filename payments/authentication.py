"""Bringing the member back when their bank asks for authentication (Strong Customer
Authentication) on an off-session charge.

Stripe's answer (a 402 `authentication_required` on real Stripe, a 200 `requires_action` on
localstripe) moves the pre-order to "awaiting authentication": its place stays reserved, the
PaymentIntent is kept, and the member is emailed and shown a button to a page that confirms that
PaymentIntent with Stripe.js. A success settles like any payment (settlement.settle, from the
page, the webhook or reconciliation, whichever is first). At the deadline the PaymentIntent is
cancelled at Stripe and the pre-order fails; the freed place goes to the waitlist.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events import london
from notifications.services import email_member_about
from payments import gateway, settlement
from payments.models import ChargeAttempt
from preorders.models import PreOrder
from preorders.services import transition_many
from preorders.states import Status

logger = logging.getLogger(__name__)

DEADLINE_CODE = "authentication_deadline"


class AuthenticationError(Exception):
    """A request the member cannot make now; the message is written for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyConfirmed(AuthenticationError):
    """The member confirmed the payment already (in a tab closed before it told us): it is
    settled now, and they are told so rather than asked again."""


def deadline_after(moment: dt.datetime) -> dt.datetime:
    """When a member asked to authenticate at `moment` must have done so: by default the next
    day at 12:00 London (PRESALE_AUTHENTICATION_DEADLINE_DAYS / _TIME), DST-aware."""
    zone = ZoneInfo(settings.PRESALE_TIME_ZONE)
    hour, minute = (int(part) for part in settings.PRESALE_AUTHENTICATION_DEADLINE_TIME.split(":"))
    day = moment.astimezone(zone).date() + dt.timedelta(
        days=settings.PRESALE_AUTHENTICATION_DEADLINE_DAYS
    )
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def await_authentication(
    attempt: ChargeAttempt, preorder: PreOrder, outcome, *, source: str, now: dt.datetime
) -> None:
    """Inside settlement's transaction, with both rows locked: keep the PaymentIntent open for
    the member until the deadline, and tell them."""
    attempt.status = ChargeAttempt.Status.AWAITING
    attempt.authenticate_by = deadline_after(now)
    attempt.failure_code = outcome.failure_code[:100]
    attempt.save()
    transition_many(
        [preorder], Status.AWAITING_AUTHENTICATION, actor=None, source=source,
        note=f"Bank asked for authentication; deadline {london.when(attempt.authenticate_by)}",
        now=now,
    )  # fmt: skip
    email_member_about(preorder, "authentication_needed", deadline=attempt.authenticate_by)


def awaiting_attempt(preorder: PreOrder) -> ChargeAttempt | None:
    return preorder.charge_attempts.filter(status=ChargeAttempt.Status.AWAITING).first()


@dataclass(frozen=True)
class ConfirmPage:
    preorder: PreOrder
    client_secret: str
    payment_method_id: str
    deadline: dt.datetime


def _own_awaiting(member, preorder_id: int) -> tuple[PreOrder, ChargeAttempt]:
    preorder = (
        PreOrder.objects.select_related("event", "cycle", "member")
        .filter(pk=preorder_id, member=member)
        .first()
    )
    if preorder is None:
        raise AuthenticationError("We could not find that pre-order.")
    attempt = awaiting_attempt(preorder)
    if preorder.status != Status.AWAITING_AUTHENTICATION or attempt is None:
        raise AuthenticationError("This payment does not need confirming any more.")
    if timezone.now() >= attempt.authenticate_by:
        raise AuthenticationError(
            f"The time to confirm this payment ended at {london.when(attempt.authenticate_by)}."
        )
    return preorder, attempt


def confirm_page(member, preorder_id: int) -> ConfirmPage:
    """What the member's browser needs to confirm the payment: only ever for the member whose
    pre-order it is (the client secret can complete the payment)."""
    preorder, attempt = _own_awaiting(member, preorder_id)
    try:
        handle = gateway.ready_for_authentication(
            attempt.payment_intent_id, preorder.payment_method_id
        )
    except gateway.GatewayError as error:
        raise AuthenticationError(error.user_message) from error
    if handle.status == "succeeded":
        outcome = gateway.payment_intent_outcome(attempt.payment_intent_id)
        settlement.settle(attempt.pk, outcome, source="member")
        raise AlreadyConfirmed("Payment confirmed. Your ticket is on its way.")
    return ConfirmPage(
        preorder, handle.client_secret, preorder.payment_method_id, attempt.authenticate_by
    )


def check_after_browser(member, preorder_id: int) -> PreOrder:
    """The browser says Stripe.js finished: ask Stripe (never trust the browser) and settle."""
    preorder, attempt = _own_awaiting(member, preorder_id)
    try:
        outcome = gateway.payment_intent_outcome(attempt.payment_intent_id)
    except gateway.GatewayError as error:
        raise AuthenticationError(
            "We could not check your payment with our payment provider just now. If you "
            "confirmed it, your ticket will follow by email within minutes."
        ) from error
    settlement.settle(attempt.pk, outcome, source="member")
    preorder.refresh_from_db()
    return preorder


def settle_completed(*, older_than: dt.timedelta = dt.timedelta(0)) -> int:
    """Reconciliation's share: ask Stripe about every PaymentIntent waiting for its member and
    settle those that succeeded (a lost webhook, a closed tab)."""
    settled = 0
    cutoff = timezone.now() - older_than
    waiting = ChargeAttempt.objects.filter(
        status=ChargeAttempt.Status.AWAITING, created_at__lte=cutoff
    )
    for attempt in waiting.iterator():
        try:
            outcome = gateway.payment_intent_outcome(attempt.payment_intent_id)
        except gateway.GatewayError:
            continue
        if outcome.status == "succeeded" and settlement.settle(
            attempt.pk, outcome, source="stripe"
        ):
            settled += 1
    return settled


def expire_due(now: dt.datetime | None = None) -> int:
    """Past their deadline: cancel the PaymentIntent at Stripe, then fail the pre-order and free
    its place. A PaymentIntent that cannot be cancelled yet (Stripe unreachable) stays awaiting
    and is tried again at the next tick; one the member completed at the last moment is paid."""
    now = now or timezone.now()
    expired = 0
    due = ChargeAttempt.objects.filter(
        status=ChargeAttempt.Status.AWAITING, authenticate_by__lte=now
    ).values_list("pk", "payment_intent_id")
    for attempt_id, payment_intent_id in list(due):
        try:
            outcome = gateway.cancel_payment_intent(payment_intent_id)
        except gateway.GatewayError:
            logger.warning("Could not cancel %s yet; trying again next time", payment_intent_id)
            continue
        if outcome.status == "succeeded":
            settlement.settle(attempt_id, outcome, source="stripe")
        elif _fail_after_deadline(attempt_id, now):
            expired += 1
    return expired


def _fail_after_deadline(attempt_id: int, now: dt.datetime) -> bool:
    with transaction.atomic():
        attempt = ChargeAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != ChargeAttempt.Status.AWAITING:
            return False
        preorder = (
            PreOrder.objects.select_for_update()
            .select_related("member", "event")
            .get(pk=attempt.preorder_id)
        )
        deadline = attempt.authenticate_by
        attempt.status = ChargeAttempt.Status.FAILED
        attempt.failure_code = DEADLINE_CODE
        attempt.failure_message = "Not confirmed with the bank before the deadline."
        attempt.finished_at = now
        attempt.intent_cancelled_at = now
        attempt.save()
        preorder.failure_reason = f"{DEADLINE_CODE}: not confirmed by {london.when(deadline)}"
        preorder.failure_code = DEADLINE_CODE
        preorder.save(update_fields=["failure_reason", "failure_code"])
        transition_many(
            [preorder], Status.FAILED, actor=None, source="system",
            note=f"Authentication deadline passed; {attempt.payment_intent_id} cancelled",
            now=now,
        )  # fmt: skip
        email_member_about(preorder, "authentication_expired", deadline=deadline)
    return True
