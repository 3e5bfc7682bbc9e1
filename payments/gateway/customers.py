"""Customers, their saved cards and the SetupIntents that save them."""

from dataclasses import dataclass

import stripe

from payments.gateway.client import client, translated_errors
from payments.installation import scoped_key


@dataclass(frozen=True)
class SetupIntentHandle:
    id: str
    client_secret: str
    status: str


@dataclass(frozen=True)
class SetupIntentState:
    id: str
    client_secret: str
    status: str
    customer_id: str | None
    payment_method_id: str | None
    usage: str


@dataclass(frozen=True)
class CardDetails:
    payment_method_id: str
    customer_id: str | None
    brand: str
    last4: str
    exp_month: int = 0
    exp_year: int = 0


def create_customer(*, email: str, name: str, member_id: int) -> str:
    with translated_errors():
        customer = client().v1.customers.create(
            params={"email": email, "name": name, "metadata": {"member_id": str(member_id)}},
            options={"idempotency_key": scoped_key(f"member-{member_id}-customer")},
        )
    return customer.id


def update_customer(customer_id: str, *, email: str, name: str) -> None:
    with translated_errors():
        client().v1.customers.update(customer_id, params={"email": email, "name": name})


def create_setup_intent(*, customer_id: str, member_id: int) -> SetupIntentHandle:
    with translated_errors():
        intent = client().v1.setup_intents.create(
            params={
                "customer": customer_id,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"member_id": str(member_id)},
            }
        )
    return SetupIntentHandle(intent.id, intent.client_secret, intent.status)


def retrieve_setup_intent(setup_intent_id: str) -> SetupIntentState:
    with translated_errors():
        intent = client().v1.setup_intents.retrieve(setup_intent_id)
    customer = intent.customer
    payment_method = intent.payment_method
    return SetupIntentState(
        id=intent.id,
        client_secret=intent.client_secret,
        status=intent.status,
        customer_id=customer if isinstance(customer, str) or customer is None else customer.id,
        payment_method_id=(
            payment_method
            if isinstance(payment_method, str) or payment_method is None
            else payment_method.id
        ),
        usage=intent.usage,
    )


def _card_details(method) -> CardDetails:
    card = method.card if method.type == "card" else None
    customer = method.customer
    return CardDetails(
        payment_method_id=method.id,
        customer_id=customer if isinstance(customer, str) or customer is None else customer.id,
        brand=(card.brand if card else "") or "",
        last4=(card.last4 if card else "") or "",
        exp_month=int(card.exp_month or 0) if card else 0,
        exp_year=int(card.exp_year or 0) if card else 0,
    )


def retrieve_card(payment_method_id: str) -> CardDetails:
    with translated_errors():
        method = client().v1.payment_methods.retrieve(payment_method_id)
    return _card_details(method)


# --- Saved cards: the Customer's attached card payment methods, as Stripe holds them ---------


@dataclass(frozen=True)
class CustomerCards:
    default_payment_method_id: str | None
    cards: tuple[CardDetails, ...]


def customer_cards(customer_id: str) -> CustomerCards:
    """The cards attached to a Customer (newest first) and the one marked as its default."""
    with translated_errors():
        customer = client().v1.customers.retrieve(customer_id)
        page = client().v1.payment_methods.list(
            params={"customer": customer_id, "type": "card", "limit": 100}
        )
        cards = tuple(_card_details(method) for method in page.auto_paging_iter())
    settings_ = getattr(customer, "invoice_settings", None)
    default = getattr(settings_, "default_payment_method", None) if settings_ else None
    if default is not None and not isinstance(default, str):
        default = default.id
    return CustomerCards(default_payment_method_id=default or None, cards=cards)


def saved_for_off_session(customer_id: str, payment_method_id: str) -> bool:
    """Whether Stripe holds a succeeded off-session SetupIntent of this Customer for this card:
    the cardholder's consent to be charged when not present."""
    with translated_errors():
        page = client().v1.setup_intents.list(
            params={"customer": customer_id, "payment_method": payment_method_id, "limit": 100}
        )
        return any(
            intent.status == "succeeded" and intent.usage == "off_session"
            for intent in page.auto_paging_iter()
        )


def set_default_card(customer_id: str, payment_method_id: str) -> None:
    with translated_errors():
        client().v1.customers.update(
            customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method_id}},
        )


def detach_payment_method(payment_method_id: str) -> None:
    with translated_errors():
        client().v1.payment_methods.detach(payment_method_id)


def delete_customer(customer_id: str) -> None:
    """Delete a Customer (and with it, at Stripe, its saved cards). Already gone is fine."""
    with translated_errors():
        try:
            client().v1.customers.delete(customer_id)
        except stripe.InvalidRequestError as error:
            if error.http_status != 404:
                raise


def attach_payment_method(payment_method_id: str, customer_id: str) -> None:
    with translated_errors():
        client().v1.payment_methods.attach(payment_method_id, params={"customer": customer_id})
