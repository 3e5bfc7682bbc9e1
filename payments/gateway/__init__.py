"""The one package that talks to Stripe. Everything else calls these functions and gets plain
dataclasses back, never Stripe objects, and sees Stripe failures as GatewayError.

    from payments import gateway
    gateway.charge_off_session(...)

client: the StripeClient and error translation · customers: Customers, saved cards,
SetupIntents · charges: off-session PaymentIntents and authentication · refunds · signatures:
webhook verification."""

from payments.gateway.charges import (
    AUTHENTICATION_CODES,
    AUTHENTICATION_MESSAGE,
    CURRENCY,
    RATE_LIMIT_BACKOFF,
    AuthenticationHandle,
    ChargeOutcome,
    cancel_payment_intent,
    charge_off_session,
    find_charge,
    outcome_from_event_object,
    payment_intent_outcome,
    ready_for_authentication,
)
from payments.gateway.client import (
    CardDeclined,
    GatewayError,
    StripeUnavailable,
    client,
    looks_like,
)
from payments.gateway.customers import (
    CardDetails,
    CustomerCards,
    SetupIntentHandle,
    SetupIntentState,
    attach_payment_method,
    create_customer,
    create_setup_intent,
    customer_cards,
    delete_customer,
    detach_payment_method,
    retrieve_card,
    retrieve_setup_intent,
    saved_for_off_session,
    set_default_card,
    update_customer,
)
from payments.gateway.refunds import (
    ChargeRefunds,
    RefundResult,
    find_refund,
    refund,
    refund_payment,
    refunds_from_event_object,
)
from payments.gateway.signatures import BadSignature, verify_webhook

__all__ = [
    "AUTHENTICATION_CODES",
    "AUTHENTICATION_MESSAGE",
    "CURRENCY",
    "RATE_LIMIT_BACKOFF",
    "AuthenticationHandle",
    "BadSignature",
    "CardDeclined",
    "CardDetails",
    "ChargeOutcome",
    "ChargeRefunds",
    "CustomerCards",
    "GatewayError",
    "RefundResult",
    "SetupIntentHandle",
    "SetupIntentState",
    "StripeUnavailable",
    "attach_payment_method",
    "cancel_payment_intent",
    "charge_off_session",
    "client",
    "create_customer",
    "create_setup_intent",
    "customer_cards",
    "delete_customer",
    "detach_payment_method",
    "find_charge",
    "find_refund",
    "looks_like",
    "outcome_from_event_object",
    "payment_intent_outcome",
    "ready_for_authentication",
    "refund",
    "refund_payment",
    "refunds_from_event_object",
    "retrieve_card",
    "retrieve_setup_intent",
    "saved_for_off_session",
    "set_default_card",
    "update_customer",
    "verify_webhook",
]
