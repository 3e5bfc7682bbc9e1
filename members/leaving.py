"""Leaving the club (UK GDPR erasure): pending pre-orders are cancelled, the Stripe Customer is
deleted, personal data is erased or pseudonymised, and the records the club must keep (payments,
refunds, tickets issued) stay under a pseudonym. What is kept and why: docs/member-data.md."""

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower, Replace
from django.utils import timezone

from members.models import Invitation, Member
from notifications.models import OutboundEmail, OutboundEmailAttachment, OutboxMessage
from payments import gateway
from payments.models import StripeEvent
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import end_undecided
from preorders.states import Status

# While one of these is under way, the member still has a payment or a ticket coming.
BLOCKING_STATUSES = frozenset(
    status
    for status in Status
    if status in {"approved", "charging", "awaiting_authentication", "paid"}
)
ERASED_BODY = "[Erased when the member left the club.]"


class LeaveRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def pseudonym_email(member_id: int) -> str:
    # .invalid is reserved (RFC 2606): no mail can ever be delivered there.
    return f"former-member-{member_id}@members.invalid"


def leave_refusal(member: Member) -> str | None:
    blocking = (
        PreOrder.objects.filter(member=member, status__in=BLOCKING_STATUSES)
        .select_related("event")
        .first()
    )
    if blocking is None:
        return None
    if blocking.status == Status.PAID:
        return (
            f"Your ticket for {blocking.event.title} is being sent to you. Please try again "
            "once it has arrived."
        )
    return (
        f"Your pre-order of {blocking.event.title} is approved and its payment is due or under "
        "way. You can leave the club once it has been charged and your ticket sent, or once it "
        "has failed."
    )


def leave_club(member: Member) -> None:
    """Everything in one transaction: if Stripe cannot delete the Customer, nothing changes."""
    now = timezone.now()
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        if locked.left_at is not None:
            return
        refusal = leave_refusal(locked)
        if refusal:
            raise LeaveRefused(refusal)
        end_undecided(
            locked, source=PreOrderLogEntry.Source.MEMBER, actor=locked,
            note="Member left the club", now=now,
        )  # fmt: skip
        if locked.stripe_customer_id:
            try:
                gateway.delete_customer(locked.stripe_customer_id)
            except gateway.GatewayError as error:
                raise LeaveRefused(
                    "We could not reach our payment provider to delete your saved cards, so "
                    "nothing has changed. Please try again in a few minutes."
                ) from error
        _pseudonymise(locked, now)


def _pseudonymise(member: Member, now) -> None:
    alias = pseudonym_email(member.pk)
    emails = OutboundEmail.objects.filter(member=member)
    # Every address the member had: an earlier one (before an email change), one staff
    # corrected a ticket to, one a change was confirmed from.
    addresses = {member.email.lower()} | {
        address.lower() for address in emails.values_list("to_email", flat=True)
    }
    to_any = Q()
    for address in addresses:
        to_any |= Q(to_email__iexact=address)
    email_ids = list((emails | OutboundEmail.objects.filter(to_any)).values_list("pk", flat=True))
    # Attachments hold the member's name (calendar entry); the rows stay as proof of what was
    # sent and when, without their content.
    OutboundEmailAttachment.objects.filter(email_id__in=email_ids).delete()
    OutboundEmail.objects.filter(pk__in=email_ids).update(
        to_email=alias, body_text=ERASED_BODY, body_html="", error=""
    )
    OutboxMessage.objects.annotate(to_lower=Lower("to")).filter(to_lower__in=addresses).delete()
    invitations = Invitation.objects.annotate(email_lower=Lower("email")).filter(
        Q(accepted_by=member) | Q(email_lower__in=addresses)
    )
    # An unused invitation to their address must not let them back in under the pseudonym.
    invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True).update(revoked_at=now)
    invitations.update(email=alias)
    for address in addresses:
        PreOrderLogEntry.objects.filter(preorder__member=member, note__icontains=address).update(
            note=Replace("note", Value(address), Value(alias))
        )
    for event in StripeEvent.objects.filter(preorder__member=member):
        event.payload = _without_cardholder(event.payload)
        event.save(update_fields=["payload"])
    member.email = alias
    member.full_name = f"Former member {member.pk}"
    member.set_unusable_password()
    member.is_active = False
    member.stripe_customer_id = None
    member.session_epoch += 1
    member.last_login = None
    member.left_at = now
    member.save()


# Where Stripe's objects carry the cardholder (a charge's billing details, a receipt address).
_CARDHOLDER_KEYS = frozenset({"billing_details", "shipping", "receipt_email"})


def _without_cardholder(value):
    if isinstance(value, dict):
        return {
            key: None if key in _CARDHOLDER_KEYS else _without_cardholder(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_cardholder(item) for item in value]
    return value
