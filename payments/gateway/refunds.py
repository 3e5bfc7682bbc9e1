"""Refunds: a late payment given back, and the refunds a manager asks for."""

from dataclasses import dataclass

import stripe

from payments.gateway.client import GatewayError, StripeUnavailable, answer_required, client


def refund(payment_intent_id: str, *, reason_key: str) -> str:
    with answer_required():
        refund_object = client().v1.refunds.create(
            params={"payment_intent": payment_intent_id},
            options={"idempotency_key": f"refund-{reason_key}"},
        )
    return refund_object.id


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
    with answer_required():
        page = client().v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
        for refund_object in page.auto_paging_iter():
            metadata = refund_object.metadata.to_dict() if refund_object.metadata else {}
            if metadata.get("refund_key") == refund_key:
                return _refund_result(refund_object)
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
