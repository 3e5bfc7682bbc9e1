"""A member's saved cards: what Stripe holds for their Customer, never our database alone. A card
is offered only while it is attached to the Customer, saved for off-session use and unexpired;
an id sent by a browser is checked with Stripe before a pre-order may use it."""

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone

from events import london
from payments import gateway
from payments.services import CardSetupError, VerifiedCard

Member = get_user_model()


@dataclass(frozen=True)
class SavedCard:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    expired: bool

    @property
    def label(self) -> str:
        return f"{self.brand.title() or 'Card'} •••• {self.last4}"

    @property
    def expires(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"


def is_expired(exp_month: int, exp_year: int, now: dt.datetime | None = None) -> bool:
    """A card works until the end of its expiry month (UK time)."""
    if not (1 <= exp_month <= 12 and exp_year > 0):
        return True
    today = london.to_london(now or timezone.now())
    return (today.year, today.month) > (exp_year, exp_month)


def member_cards(member: Member, *, now: dt.datetime | None = None) -> list[SavedCard]:
    """Every card attached to the member's Customer at Stripe, the default first, expired ones
    included (marked) so the member can remove them. Raises gateway.GatewayError."""
    if not member.stripe_customer_id:
        return []
    held = gateway.customer_cards(member.stripe_customer_id)
    cards = [
        SavedCard(
            payment_method_id=card.payment_method_id,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            is_default=card.payment_method_id == held.default_payment_method_id,
            expired=is_expired(card.exp_month, card.exp_year, now),
        )
        for card in held.cards
    ]
    return sorted(cards, key=lambda card: not card.is_default)  # stable: newest next


def usable_cards(member: Member, *, now: dt.datetime | None = None) -> list[SavedCard]:
    """The cards a pre-order may use: attached and unexpired. If Stripe cannot be reached, none
    are offered (the member can still enter a card)."""
    try:
        return [card for card in member_cards(member, now=now) if not card.expired]
    except gateway.GatewayError:
        return []


NOT_YOURS = "That card is not one of your saved cards. Please choose another or enter a new one."


def verify_saved_card(member: Member, payment_method_id: object) -> VerifiedCard:
    """Check with Stripe that a saved card may pay a pre-order: it is attached to this member's
    own Customer, unexpired, and was saved for off-session payments."""
    if not gateway.looks_like("payment_method", payment_method_id):
        raise CardSetupError("Please choose one of your saved cards.")
    customer_id = member.stripe_customer_id
    if not customer_id:
        raise CardSetupError(NOT_YOURS)
    try:
        card = gateway.retrieve_card(payment_method_id)
    except gateway.GatewayError as error:
        if error.code == "not_found":
            raise CardSetupError(NOT_YOURS) from error
        raise CardSetupError(error.user_message) from error
    if card.customer_id != customer_id or not card.last4:
        raise CardSetupError(NOT_YOURS)
    if is_expired(card.exp_month, card.exp_year):
        raise CardSetupError(
            f"Your {card.brand.title()} •••• {card.last4} has expired. Please use another card."
        )
    try:
        consented = gateway.saved_for_off_session(customer_id, card.payment_method_id)
    except gateway.GatewayError as error:
        raise CardSetupError(error.user_message) from error
    if not consented:
        raise CardSetupError(
            "That card was not saved for later payments. Please enter it again as a new card."
        )
    return VerifiedCard(
        setup_intent_id=None,
        customer_id=customer_id,
        payment_method_id=card.payment_method_id,
        brand=card.brand,
        last4=card.last4,
    )
