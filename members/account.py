"""The member's own account: name and email (a new address is confirmed by a link sent to it),
signing out other sessions, and their saved cards at Stripe (default, remove)."""

import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse

from members.models import Member
from notifications.services import queue_email
from payments import gateway
from payments.cards import member_cards
from preorders.models import PreOrder
from preorders.states import Status

logger = logging.getLogger(__name__)

EMAIL_CHANGE_SALT = "members.account.email-change"
EMAIL_CHANGE_VALID_SECONDS = 3 * 24 * 3600
# A card paying for a pre-order in one of these cannot be removed: the charge is due or under
# way, and replacing the card is no longer allowed.
CARD_LOCKED_STATUSES = frozenset(
    status for status in Status if status in {"approved", "charging", "awaiting_authentication"}
)


class AccountError(Exception):
    """A request the rules refuse. The message is written for the member."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def update_details(member: Member, *, full_name: object, email: object) -> str | None:
    """Save the name at once; a new email address only gets a confirmation link (returned).
    Both are checked first: a refusal changes nothing."""
    full_name = " ".join(str(full_name).split())
    if not full_name:
        raise AccountError("Please tell us your name.")
    if len(full_name) > 150:
        raise AccountError("Please keep your name under 150 characters.")
    new_email = _normalised_email(email)
    if new_email != member.email:
        _check_available(new_email)
    with transaction.atomic():
        Member.objects.filter(pk=member.pk).update(full_name=full_name)
        member.full_name = full_name
        _sync_customer_after_commit(member)
        if new_email != member.email:
            return request_email_change(member, new_email)
    return None


def _sync_customer_after_commit(member: Member) -> None:
    """Stripe's Customer carries the member's name and email (Stripe may email receipts to
    it). Our database is the record: if Stripe cannot be reached the change stands, and the
    next change of details sends both again."""
    customer_id, email, name = member.stripe_customer_id, member.email, member.full_name
    if not customer_id:
        return

    def sync() -> None:
        try:
            gateway.update_customer(customer_id, email=email, name=name)
        except gateway.GatewayError:
            logger.warning("Stripe customer %s keeps old details for now", customer_id)

    transaction.on_commit(sync)


def _check_available(email: str) -> None:
    if Member.objects.filter(email__iexact=email).exists():
        raise AccountError("Another account already uses that address.")


def _normalised_email(raw: object) -> str:
    email = str(raw).strip().lower()
    try:
        if len(email) > 254:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise AccountError("Please enter a valid email address.") from None
    return email


def request_email_change(member: Member, new_email: object) -> str:
    """Send a confirmation link to the new address; nothing changes until it is followed."""
    email = _normalised_email(new_email)
    if email == member.email:
        raise AccountError("That is already your email address.")
    _check_available(email)
    token = signing.dumps(
        {"m": member.pk, "from": member.email, "to": email}, salt=EMAIL_CHANGE_SALT
    )
    queue_email(
        to_email=email,
        template="email_change_confirm",
        context={
            "member": member,
            "new_email": email,
            "confirm_url": settings.SITE_URL + reverse("members:confirm_email", args=[token]),
        },
        member=member,
    )
    return email


def email_change_in(member: Member, token: str) -> str:
    """The new address a confirmation link carries, if it is this member's, unexpired, and their
    address has not changed since it was sent (so each link works once)."""
    try:
        data = signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_VALID_SECONDS)
    except signing.SignatureExpired:
        raise AccountError("This link has expired. Please ask for a new one.") from None
    except signing.BadSignature:
        raise AccountError("This link is not valid.") from None
    if data.get("m") != member.pk:
        raise AccountError("This link is for another account. Please sign in as its owner.")
    if data.get("from") != member.email:
        raise AccountError("This link has already been used or replaced by a newer one.")
    return data["to"]


def confirm_email_change(member: Member, token: str) -> str:
    """Move the account to the new address and tell the old one."""
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        new_email = email_change_in(locked, token)
        if Member.objects.filter(email__iexact=new_email).exclude(pk=locked.pk).exists():
            raise AccountError("Another account now uses that address.")
        old_email = locked.email
        locked.email = new_email
        locked.save(update_fields=["email"])
        _sync_customer_after_commit(locked)
        queue_email(
            to_email=old_email,
            template="email_changed_notice",
            context={"member": locked, "old_email": old_email, "new_email": new_email},
            member=locked,
        )
    member.email = new_email
    return new_email


def sign_out_other_sessions(member: Member) -> None:
    """Every session but the caller's stops being valid; the view then refreshes its own."""
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        locked.session_epoch += 1
        locked.save(update_fields=["session_epoch"])
    member.session_epoch = locked.session_epoch


# --- Saved cards ---------------------------------------------------------------------------


def own_card(member: Member, payment_method_id: object):
    """The member's card as Stripe holds it, or AccountError."""
    not_yours = AccountError("That card is not one of your saved cards.")
    if not member.stripe_customer_id or not gateway.looks_like("payment_method", payment_method_id):
        raise not_yours
    try:
        card = next(
            (c for c in member_cards(member) if c.payment_method_id == payment_method_id), None
        )
    except gateway.GatewayError as error:
        raise AccountError(error.user_message) from error
    if card is None:
        raise not_yours
    return card


def set_default_card(member: Member, payment_method_id: object) -> None:
    card = own_card(member, payment_method_id)
    if card.expired:
        raise AccountError(f"Your {card.label} has expired, so it cannot be your default card.")
    try:
        gateway.set_default_card(member.stripe_customer_id, card.payment_method_id)
    except gateway.GatewayError as error:
        raise AccountError(error.user_message) from error


def card_removal_refusal(member: Member, payment_method_id: str) -> str | None:
    """Why this card cannot be removed now, or None."""
    using = (
        PreOrder.objects.filter(member=member, payment_method_id=payment_method_id)
        .filter(status__in=CARD_LOCKED_STATUSES | {Status.PENDING})
        .select_related("event", "cycle")
        .first()
    )
    if using is None:
        return None
    if using.status == Status.PENDING:
        return (
            f"This card is on your pending pre-order of {using.event.title}. To remove it, "
            "first choose another card for that pre-order (Edit pre-order), or cancel it."
        )
    from events import london

    return (
        f"This card pays for your approved pre-order of {using.event.title}, charged at "
        f"{london.when(using.cycle.charge_at)}. You can remove it once that payment is done."
    )


def remove_card(member: Member, payment_method_id: object) -> str:
    """Detach a card from the member's Customer at Stripe. Done under the member's row lock,
    which a pre-order taking up a saved card also holds, so the two never cross."""
    with transaction.atomic():
        Member.objects.select_for_update().filter(pk=member.pk).first()
        card = own_card(member, payment_method_id)
        refusal = card_removal_refusal(member, card.payment_method_id)
        if refusal:
            raise AccountError(refusal)
        try:
            gateway.detach_payment_method(card.payment_method_id)
        except gateway.GatewayError as error:
            raise AccountError(error.user_message) from error
    return card.label
