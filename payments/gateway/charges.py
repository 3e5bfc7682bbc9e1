"""Off-session charges: the PaymentIntents of the charge run, their outcomes, and the
on-session authentication a bank may ask for."""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import stripe
from django.conf import settings

from payments.gateway.client import (
    StripeUnavailable,
    answer_required,
    client,
    translate_error,
)

CURRENCY = "gbp"


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
        raise translate_error(error) from error
    return _outcome_of(intent)


def cancel_payment_intent(payment_intent_id: str) -> ChargeOutcome:
    """Cancel a PaymentIntent we have given up on, so that a late authentication by the
    cardholder cannot take money for a pre-order already failed, and say how it ended: "failed"
    (code "canceled") once cancelled, or "succeeded" if the cardholder was quicker. Raises
    StripeUnavailable when Stripe cannot be asked (the caller tries again later)."""
    with answer_required():
        try:
            client().v1.payment_intents.cancel(payment_intent_id)
        except stripe.InvalidRequestError:
            # Not cancellable any more: already cancelled, or it succeeded meanwhile.
            outcome = payment_intent_outcome(payment_intent_id)
            if outcome.status == "succeeded":
                return outcome
            if _intent_status(payment_intent_id) != "canceled":
                raise
    return ChargeOutcome("failed", payment_intent_id, "canceled", "Payment cancelled.")


def _intent_status(payment_intent_id: str) -> str:
    with answer_required():
        return client().v1.payment_intents.retrieve(payment_intent_id).status


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
    with answer_required("We could not reach our payment provider. Please try again in a minute."):
        intent = client().v1.payment_intents.retrieve(payment_intent_id)
        if intent.status == "requires_payment_method":
            client().v1.payment_intents.update(
                payment_intent_id, params={"payment_method": payment_method_id}
            )
            intent = client().v1.payment_intents.confirm(payment_intent_id)
    return AuthenticationHandle(intent.id, intent.client_secret, intent.status)


def payment_intent_outcome(payment_intent_id: str) -> ChargeOutcome:
    with answer_required():
        intent = client().v1.payment_intents.retrieve(payment_intent_id)
    return _outcome_of(intent)


def find_charge(*, customer_id: str, idempotency_key: str) -> ChargeOutcome | None:
    """The PaymentIntent a charge attempt created, found by the key in its metadata, or None if
    Stripe never got that request. Lists are strongly consistent (search is not)."""
    with answer_required():
        page = client().v1.payment_intents.list(params={"customer": customer_id, "limit": 100})
        for intent in page.auto_paging_iter():
            metadata = intent.metadata.to_dict() if intent.metadata else {}
            if metadata.get("charge_key") == idempotency_key:
                return _outcome_of(intent)
    return None


def outcome_from_event_object(intent: dict) -> ChargeOutcome:
    """The outcome a payment_intent.* webhook carries (already verified by its signature)."""
    return _outcome_of(stripe.PaymentIntent.construct_from(intent, settings.STRIPE_SECRET_KEY))
