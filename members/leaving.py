"""Leaving the club (UK GDPR erasure): pending pre-orders are cancelled, the Stripe Customer is
deleted, personal data is erased or pseudonymised, and the records the club must keep (payments,
refunds, tickets issued) stay under a pseudonym. What is kept and why: docs/member-data.md."""

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Replace
from django.utils import timezone

from members.models import Invitation, Member
from notifications.models import OutboundEmail, OutboundEmailAttachment, OutboxMessage
from payments import gateway
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import transition
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
        for preorder in PreOrder.objects.filter(member=locked, status=Status.PENDING):
            transition(
                preorder.pk,
                Status.CANCELLED,
                source=PreOrderLogEntry.Source.MEMBER,
                actor=locked,
                note="Member left the club",
                now=now,
            )
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
    old_email = member.email
    alias = pseudonym_email(member.pk)
    Invitation.objects.filter(accepted_by=member).update(email=alias)
    emails = OutboundEmail.objects.filter(member=member) | OutboundEmail.objects.filter(
        to_email__iexact=old_email
    )
    email_ids = list(emails.values_list("pk", flat=True))
    # Attachments hold the member's name (calendar entry); the rows stay as proof of what was
    # sent and when, without their content.
    OutboundEmailAttachment.objects.filter(email_id__in=email_ids).delete()
    OutboundEmail.objects.filter(pk__in=email_ids).update(
        to_email=alias, body_text=ERASED_BODY, body_html="", error=""
    )
    OutboxMessage.objects.filter(to__icontains=old_email).delete()
    PreOrderLogEntry.objects.filter(preorder__member=member, note__icontains=old_email).update(
        note=Replace("note", Value(old_email), Value(alias))
    )
    member.email = alias
    member.full_name = f"Former member {member.pk}"
    member.set_unusable_password()
    member.is_active = False
    member.stripe_customer_id = None
    member.session_epoch += 1
    member.left_at = now
    member.save()
