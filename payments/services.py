"""Saving a member's card with Stripe: one Customer per member, SetupIntents for off-session use,
and a check of what Stripe says before anything is trusted."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from payments import gateway

Member = get_user_model()


class CardSetupError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class VerifiedCard:
    # None for a card saved earlier (no new SetupIntent); see payments.cards.
    setup_intent_id: str | None
    customer_id: str
    payment_method_id: str
    brand: str
    last4: str


def ensure_customer(member: Member) -> str:
    """The member's Stripe Customer id, created the first time. The member row is locked so that
    two tabs opening the form at once do not create two customers."""
    if member.stripe_customer_id:
        return member.stripe_customer_id
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        if not locked.stripe_customer_id:
            locked.stripe_customer_id = gateway.create_customer(
                email=locked.email, name=locked.full_name, member_id=locked.pk
            )
            locked.save(update_fields=["stripe_customer_id"])
    member.stripe_customer_id = locked.stripe_customer_id
    return member.stripe_customer_id


def start_card_setup(
    member: Member, reuse_setup_intent_id: str | None = None
) -> gateway.SetupIntentHandle:
    """A SetupIntent the browser can confirm with Stripe.js. An unconfirmed one from earlier in
    the session is reused, so reloading the form does not leave a trail of abandoned intents."""
    customer_id = ensure_customer(member)
    if reuse_setup_intent_id and gateway.looks_like("setup_intent", reuse_setup_intent_id):
        try:
            state = gateway.retrieve_setup_intent(reuse_setup_intent_id)
        except gateway.GatewayError:
            state = None
        if state and state.customer_id == customer_id and state.status == "requires_payment_method":
            return gateway.SetupIntentHandle(state.id, state.client_secret, state.status)
    return gateway.create_setup_intent(customer_id=customer_id, member_id=member.pk)


def verify_card_setup(member: Member, setup_intent_id: object) -> VerifiedCard:
    """Ask Stripe about a SetupIntent the browser says it confirmed, and accept it only if it
    succeeded, is for off-session use, and belongs to this member's Customer."""
    if not gateway.looks_like("setup_intent", setup_intent_id):
        raise CardSetupError(
            "The card confirmation is missing or malformed. Please enter your card again."
        )
    if not member.stripe_customer_id:
        raise CardSetupError("That card confirmation does not belong to your account.")
    try:
        state = gateway.retrieve_setup_intent(setup_intent_id)
    except gateway.GatewayError as error:
        raise CardSetupError(error.user_message) from error
    if state.customer_id != member.stripe_customer_id:
        raise CardSetupError("That card confirmation does not belong to your account.")
    if state.status != "succeeded" or not state.payment_method_id:
        raise CardSetupError(
            "Your card has not been confirmed yet. Please enter your card details and try again."
        )
    if state.usage != "off_session":
        raise CardSetupError("That card was not saved for later payments. Please enter it again.")
    try:
        card = gateway.retrieve_card(state.payment_method_id)
        if card.customer_id != member.stripe_customer_id:
            if card.customer_id is not None:
                raise CardSetupError("That card belongs to another account.")
            # Stripe attaches the card on success; a Stripe-compatible server may not.
            gateway.attach_payment_method(card.payment_method_id, member.stripe_customer_id)
    except gateway.GatewayError as error:
        raise CardSetupError(error.user_message) from error
    return VerifiedCard(
        setup_intent_id=state.id,
        customer_id=member.stripe_customer_id,
        payment_method_id=card.payment_method_id,
        brand=card.brand,
        last4=card.last4,
    )
