"""The one module that talks to Stripe. Everything else calls these functions and gets plain
dataclasses back, never Stripe objects, and sees Stripe failures as GatewayError."""

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

import stripe
from django.conf import settings

from payments.installation import scoped_key

_ID_PATTERN = {
    "setup_intent": re.compile(r"^seti_[A-Za-z0-9]{1,250}$"),
    "payment_method": re.compile(r"^pm_[A-Za-z0-9_]{1,250}$"),
}


class GatewayError(Exception):
    """Stripe could not be reached or refused the request. `user_message` is safe to show."""

    def __init__(self, user_message: str, *, code: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


class CardDeclined(GatewayError):
    pass


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


@cache
def _client_for(api_key: str, api_base: str, retries: int, timeout: int) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else {}
    return stripe.StripeClient(
        api_key,
        base_addresses=base,
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def client() -> stripe.StripeClient:
    return _client_for(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


def looks_like(kind: str, value: object) -> bool:
    return isinstance(value, str) and bool(_ID_PATTERN[kind].match(value))


def _translate(error: stripe.StripeError) -> GatewayError:
    if isinstance(error, stripe.CardError):
        return CardDeclined(
            error.user_message or "Your card was declined.", code=getattr(error, "code", None)
        )
    if isinstance(error, stripe.InvalidRequestError) and error.http_status == 404:
        return GatewayError("We could not find that card confirmation.", code="not_found")
    return GatewayError(
        "We could not reach our payment provider. Nothing was saved; please try again.",
        code=getattr(error, "code", None),
    )


def create_customer(*, email: str, name: str, member_id: int) -> str:
    try:
        customer = client().v1.customers.create(
            params={"email": email, "name": name, "metadata": {"member_id": str(member_id)}},
            options={"idempotency_key": scoped_key(f"member-{member_id}-customer")},
        )
    except stripe.StripeError as error:
        raise _translate(error) from error
    return customer.id


def update_customer(customer_id: str, *, email: str, name: str) -> None:
    try:
        client().v1.customers.update(customer_id, params={"email": email, "name": name})
    except stripe.StripeError as error:
        raise _translate(error) from error


def create_setup_intent(*, customer_id: str, member_id: int) -> SetupIntentHandle:
    try:
        intent = client().v1.setup_intents.create(
            params={
                "customer": customer_id,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"member_id": str(member_id)},
            }
        )
    except stripe.StripeError as error:
        raise _translate(error) from error
    return SetupIntentHandle(intent.id, intent.client_secret, intent.status)


def retrieve_setup_intent(setup_intent_id: str) -> SetupIntentState:
    try:
        intent = client().v1.setup_intents.retrieve(setup_intent_id)
    except stripe.StripeError as error:
        raise _translate(error) from error
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
    try:
        method = client().v1.payment_methods.retrieve(payment_method_id)
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _card_details(method)


# --- Saved cards: the Customer's attached card payment methods, as Stripe holds them ---------


@dataclass(frozen=True)
class CustomerCards:
    default_payment_method_id: str | None
    cards: tuple[CardDetails, ...]


def customer_cards(customer_id: str) -> CustomerCards:
    """The cards attached to a Customer (newest first) and the one marked as its default."""
    try:
        customer = client().v1.customers.retrieve(customer_id)
        page = client().v1.payment_methods.list(
            params={"customer": customer_id, "type": "card", "limit": 100}
        )
        cards = tuple(_card_details(method) for method in page.auto_paging_iter())
    except stripe.StripeError as error:
        raise _translate(error) from error
    settings_ = getattr(customer, "invoice_settings", None)
    default = getattr(settings_, "default_payment_method", None) if settings_ else None
    if default is not None and not isinstance(default, str):
        default = default.id
    return CustomerCards(default_payment_method_id=default or None, cards=cards)


def saved_for_off_session(customer_id: str, payment_method_id: str) -> bool:
    """Whether Stripe holds a succeeded off-session SetupIntent of this Customer for this card:
    the cardholder's consent to be charged when not present."""
    try:
        page = client().v1.setup_intents.list(
            params={"customer": customer_id, "payment_method": payment_method_id, "limit": 100}
        )
        return any(
            intent.status == "succeeded" and intent.usage == "off_session"
            for intent in page.auto_paging_iter()
        )
    except stripe.StripeError as error:
        raise _translate(error) from error


def set_default_card(customer_id: str, payment_method_id: str) -> None:
    try:
        client().v1.customers.update(
            customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method_id}},
        )
    except stripe.StripeError as error:
        raise _translate(error) from error


def detach_payment_method(payment_method_id: str) -> None:
    try:
        client().v1.payment_methods.detach(payment_method_id)
    except stripe.StripeError as error:
        raise _translate(error) from error


def delete_customer(customer_id: str) -> None:
    """Delete a Customer (and with it, at Stripe, its saved cards). Already gone is fine."""
    try:
        client().v1.customers.delete(customer_id)
    except stripe.InvalidRequestError as error:
        if error.http_status != 404:
            raise _translate(error) from error
    except stripe.StripeError as error:
        raise _translate(error) from error


def attach_payment_method(payment_method_id: str, customer_id: str) -> None:
    try:
        client().v1.payment_methods.attach(payment_method_id, params={"customer": customer_id})
    except stripe.StripeError as error:
        raise _translate(error) from error


class BadSignature(Exception):
    pass


def verify_webhook(payload: bytes, signature_header: str | None) -> dict:
    """The event, as a plain dict, if the Stripe-Signature header is valid for this payload."""
    if not signature_header:
        raise BadSignature("Missing Stripe-Signature header.")
    try:
        # The SDK's check, the same one construct_event makes (HMAC-SHA256 of "timestamp.body"
        # against any v1 signature, timestamp within the default tolerance); construct_event
        # would also build StripeObjects, unused here (they cannot be stored as JSON as they are:
        # to_dict() leaves objects nested in lists of lists as StripeObjects).
        stripe.WebhookSignature.verify_header(
            payload,
            signature_header,
            settings.STRIPE_WEBHOOK_SECRET,
            stripe.Webhook.DEFAULT_TOLERANCE,
        )
        data = json.loads(payload)
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise BadSignature(str(error)) from error
    if not isinstance(data, dict):
        raise BadSignature("The payload is not a Stripe event.")
    return data


# --- Off-session charges -------------------------------------------------------------------


CURRENCY = "gbp"


class StripeUnavailable(GatewayError):
    """We do not know what Stripe did (network failure, timeout, 5xx after retries)."""


@dataclass(frozen=True)
class ChargeOutcome:
    """What Stripe says about a charge. `status` is "succeeded", "failed", "processing" or
    "requires_action" (the bank wants the cardholder to authenticate)."""

    status: str
    payment_intent_id: str | None
    failure_code: str = ""
    failure_message: str = ""
    # What the PaymentIntent says it is, where Stripe told us (None: not known). Settlement
    # checks them against the attempt before moving any state.
    amount: int | None = None
    currency: str | None = None
    customer_id: str | None = None
    livemode: bool | None = None
    charge_key: str | None = None

    def described_by(self, intent) -> "ChargeOutcome":
        """This outcome with the facts a PaymentIntent object carries."""
        customer = getattr(intent, "customer", None)
        metadata = getattr(intent, "metadata", None)
        return replace(
            self,
            amount=getattr(intent, "amount", None),
            currency=getattr(intent, "currency", None),
            customer_id=customer if isinstance(customer, str) else getattr(customer, "id", None),
            livemode=getattr(intent, "livemode", None),
            charge_key=(metadata.to_dict() if metadata else {}).get("charge_key"),
        )


# Codes that mean "the cardholder must authenticate": Stripe's off-session refusal, and a
# failed on-session attempt (which the member may try again until the deadline).
AUTHENTICATION_CODES = frozenset(
    {"authentication_required", "payment_intent_authentication_failure"}
)
AUTHENTICATION_MESSAGE = "Your bank wants you to confirm this payment."


def _outcome_of(intent) -> ChargeOutcome:
    return _bare_outcome_of(intent).described_by(intent)


def _bare_outcome_of(intent) -> ChargeOutcome:
    status = intent.status
    if status == "succeeded":
        return ChargeOutcome("succeeded", intent.id)
    if status == "processing":
        return ChargeOutcome("processing", intent.id)
    error = intent.last_payment_error
    code = (getattr(error, "code", None) or "") if error else ""
    if status == "requires_action" or (
        status == "requires_payment_method" and code in AUTHENTICATION_CODES
    ):
        # Off-session, nobody can authenticate: the bank wants the cardholder present (real
        # Stripe: 402 and requires_payment_method; localstripe: 200 and requires_action).
        return ChargeOutcome(
            "requires_action", intent.id, "authentication_required", AUTHENTICATION_MESSAGE
        )
    return ChargeOutcome(
        "failed",
        intent.id,
        (getattr(error, "decline_code", None) or code or status) if error else status,
        (getattr(error, "message", None) or "") if error else f"Payment {status}.",
    )


def charge_off_session(
    *,
    amount_pence: int,
    customer_id: str,
    payment_method_id: str,
    idempotency_key: str,
    metadata: dict[str, str],
    before_each_try: Callable[[], None] | None = None,
) -> ChargeOutcome:
    """Create and confirm a PaymentIntent for a saved card, with nobody present. Declines and
    authentication demands are outcomes, not exceptions; only not knowing raises.
    `before_each_try` paces every request, retries included (the charge run's token bucket)."""
    for pause in RATE_LIMIT_BACKOFF:
        if before_each_try is not None:
            before_each_try()
        try:
            return _charge_once(
                amount_pence=amount_pence,
                customer_id=customer_id,
                payment_method_id=payment_method_id,
                idempotency_key=idempotency_key,
                metadata=metadata,
            )
        except stripe.RateLimitError:
            # A 429 means Stripe did not process the request, and the SDK does not retry a
            # rate-limit 429 itself: wait and send it again (same key).
            time.sleep(pause * (1 + random.random()))  # noqa: S311 - jitter, not a secret
    raise StripeUnavailable("Stripe kept refusing: rate limited.")


# Seconds to wait before each new try after a 429 (a 429 was not processed, so trying again is
# always safe): about half a minute in all.
RATE_LIMIT_BACKOFF = (0.25, 0.5, 1, 2, 3, 5, 8, 10)


def _charge_once(
    *,
    amount_pence: int,
    customer_id: str,
    payment_method_id: str,
    idempotency_key: str,
    metadata: dict[str, str],
) -> ChargeOutcome:
    try:
        intent = client().v1.payment_intents.create(
            params={
                "amount": amount_pence,
                "currency": CURRENCY,
                "customer": customer_id,
                "payment_method": payment_method_id,
                "off_session": True,
                "confirm": True,
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.CardError as error:
        body = error.error
        intent = getattr(body, "payment_intent", None) if body else None
        intent_id = getattr(intent, "id", None) if intent else None
        if error.code in AUTHENTICATION_CODES:
            # Real Stripe's answer to an off-session charge of a 3-D Secure card: a 402 whose
            # PaymentIntent is still open (requires_payment_method), never cancelled by Stripe.
            outcome = ChargeOutcome(
                "requires_action", intent_id, "authentication_required", AUTHENTICATION_MESSAGE
            )
            return outcome.described_by(intent) if intent else outcome
        outcome = ChargeOutcome(
            "failed",
            intent_id,
            (getattr(body, "decline_code", None) or error.code or "card_declined"),
            error.user_message or "Your card was declined.",
        )
        return outcome.described_by(intent) if intent else outcome
    except (stripe.APIConnectionError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.RateLimitError:
        raise  # charge_off_session waits and tries again
    except stripe.IdempotencyError as error:
        # The same key is still being processed (another worker, a resend): the outcome is
        # unknown, not a refusal; reconciliation finds it.
        raise StripeUnavailable("Stripe is still processing this charge.") from error
    except stripe.StripeError as error:
        if error.http_status and error.http_status >= 500:
            raise StripeUnavailable("Stripe failed.") from error
        raise _translate(error) from error
    return _outcome_of(intent)


def cancel_payment_intent(payment_intent_id: str) -> ChargeOutcome:
    """Cancel a PaymentIntent we have given up on, so that a late authentication by the
    cardholder cannot take money for a pre-order already failed, and say how it ended: "failed"
    (code "canceled") once cancelled, or "succeeded" if the cardholder was quicker. Raises
    StripeUnavailable when Stripe cannot be asked (the caller tries again later)."""
    try:
        client().v1.payment_intents.cancel(payment_intent_id)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.InvalidRequestError:
        # Not cancellable any more: already cancelled, or it succeeded meanwhile.
        outcome = payment_intent_outcome(payment_intent_id)
        if outcome.status == "succeeded":
            return outcome
        if _intent_status(payment_intent_id) != "canceled":
            raise
    except stripe.StripeError as error:
        raise _translate(error) from error
    return ChargeOutcome("failed", payment_intent_id, "canceled", "Payment cancelled.")


def _intent_status(payment_intent_id: str) -> str:
    try:
        return client().v1.payment_intents.retrieve(payment_intent_id).status
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error


@dataclass(frozen=True)
class AuthenticationHandle:
    """What the member's browser needs to confirm a PaymentIntent on-session."""

    payment_intent_id: str
    client_secret: str
    status: str


def ready_for_authentication(
    payment_intent_id: str, payment_method_id: str
) -> AuthenticationHandle:
    """The PaymentIntent, ready for Stripe.js's confirmCardPayment in the member's browser. One
    left requires_payment_method (real Stripe's 402, or an authentication the member failed) is
    given its saved card again and confirmed, which brings back the bank's challenge."""
    try:
        intent = client().v1.payment_intents.retrieve(payment_intent_id)
        if intent.status == "requires_payment_method":
            client().v1.payment_intents.update(
                payment_intent_id, params={"payment_method": payment_method_id}
            )
            intent = client().v1.payment_intents.confirm(payment_intent_id)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable(
            "We could not reach our payment provider. Please try again in a minute."
        ) from error
    except stripe.StripeError as error:
        raise _translate(error) from error
    return AuthenticationHandle(intent.id, intent.client_secret, intent.status)


def payment_intent_outcome(payment_intent_id: str) -> ChargeOutcome:
    try:
        intent = client().v1.payment_intents.retrieve(payment_intent_id)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _outcome_of(intent)


def find_charge(*, customer_id: str, idempotency_key: str) -> ChargeOutcome | None:
    """The PaymentIntent a charge attempt created, found by the key in its metadata, or None if
    Stripe never got that request. Lists are strongly consistent (search is not)."""
    try:
        page = client().v1.payment_intents.list(params={"customer": customer_id, "limit": 100})
        for intent in page.auto_paging_iter():
            metadata = intent.metadata.to_dict() if intent.metadata else {}
            if metadata.get("charge_key") == idempotency_key:
                return _outcome_of(intent)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.StripeError as error:
        raise _translate(error) from error
    return None


def refund(payment_intent_id: str, *, reason_key: str) -> str:
    try:
        refund_object = client().v1.refunds.create(
            params={"payment_intent": payment_intent_id},
            options={"idempotency_key": f"refund-{reason_key}"},
        )
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.StripeError as error:
        raise _translate(error) from error
    return refund_object.id


# --- Refunds a manager asks for ---------------------------------------------------------------


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # "succeeded", "pending", "requires_action", "failed" or "canceled"
    amount_pence: int


def _refund_result(refund_object) -> RefundResult:
    return RefundResult(refund_object.id, refund_object.status or "", refund_object.amount or 0)


def refund_payment(
    *, payment_intent_id: str, amount_pence: int, idempotency_key: str, metadata: dict[str, str]
) -> RefundResult:
    """Refund `amount_pence` of a PaymentIntent. The key makes a resend replay the first refund
    at Stripe; `metadata["refund_key"]` lets find_refund recognise it where keys are ignored."""
    try:
        refund_object = client().v1.refunds.create(
            params={
                "payment_intent": payment_intent_id,
                "amount": amount_pence,
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.IdempotencyError as error:
        raise StripeUnavailable("Stripe is still processing this refund.") from error
    except stripe.StripeError as error:
        if error.http_status and error.http_status >= 500:
            raise StripeUnavailable("Stripe failed.") from error
        raise GatewayError(
            "Stripe refused the refund: " + (error.user_message or "no reason given") + ".",
            code=getattr(error, "code", None),
        ) from error
    return _refund_result(refund_object)


def find_refund(*, payment_intent_id: str, refund_key: str) -> RefundResult | None:
    """The refund a request with this key made, or None if Stripe never got that request."""
    try:
        page = client().v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
        for refund_object in page.auto_paging_iter():
            metadata = refund_object.metadata.to_dict() if refund_object.metadata else {}
            if metadata.get("refund_key") == refund_key:
                return _refund_result(refund_object)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise StripeUnavailable("Stripe did not answer.") from error
    except stripe.StripeError as error:
        raise _translate(error) from error
    return None


@dataclass(frozen=True)
class ChargeRefunds:
    """What a charge.refunded webhook says: how much of which payment has gone back."""

    payment_intent_id: str | None
    amount_pence: int
    amount_refunded_pence: int
    refund_id: str | None  # the latest refund, when the event lists them

    @property
    def in_full(self) -> bool:
        return self.amount_pence > 0 and self.amount_refunded_pence >= self.amount_pence


def refunds_from_event_object(charge: dict) -> ChargeRefunds:
    intent = charge.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    refunds = (charge.get("refunds") or {}).get("data") or []
    latest = max(refunds, key=lambda item: item.get("created") or 0, default=None)
    return ChargeRefunds(
        payment_intent_id=intent if isinstance(intent, str) else None,
        amount_pence=int(charge.get("amount") or 0),
        amount_refunded_pence=int(charge.get("amount_refunded") or 0),
        refund_id=latest.get("id") if isinstance(latest, dict) else None,
    )


def outcome_from_event_object(intent: dict) -> ChargeOutcome:
    """The outcome a payment_intent.* webhook carries (already verified by its signature)."""
    return _outcome_of(stripe.PaymentIntent.construct_from(intent, settings.STRIPE_SECRET_KEY))
