"""Rows built straight in the database, for tests about rules that only count or show them."""

import secrets

from preorders.models import PreOrder
from preorders.states import Status


def stored_preorder(member, event, status: str = Status.PENDING, **fields) -> PreOrder:
    """A pre-order as the database holds one, with made-up Stripe ids (never sent to Stripe):
    for rules that count pre-orders or pages that list them. Keyword arguments override any
    field (amount_pence, created_at, card_last4…)."""
    tag = secrets.token_hex(6)
    values = {
        "cycle": event.cycle,
        "status": status,
        "amount_pence": event.member_price_pence,
        "stripe_customer_id": f"cus_{tag}",
        "payment_method_id": f"pm_{tag}",
        "setup_intent_id": f"seti_{tag}",
        "card_brand": "visa",
        "card_last4": "4242",
        **fields,
    }
    return PreOrder.objects.create(member=member, event=event, **values)
