"""Webhook signatures: a Stripe event is trusted only if it is signed with our secret."""

import json

import stripe
from django.conf import settings


class BadSignature(Exception):
    pass


def verify_webhook(payload: bytes, signature_header: str | None) -> dict:
    """The event, as a plain dict, if the Stripe-Signature header is valid for this payload."""
    if not signature_header:
        raise BadSignature("Missing Stripe-Signature header.")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature_header, settings.STRIPE_WEBHOOK_SECRET
        )
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise BadSignature(str(error)) from error
    except (AttributeError, TypeError) as error:
        # Correctly signed, but JSON that is not an object (a list, a string, null).
        raise BadSignature("The payload is not a Stripe event.") from error
    # The verified body itself, parsed plainly: the SDK's to_dict() leaves objects nested in
    # lists of lists as StripeObjects, which cannot be stored as JSON.
    data = json.loads(payload)
    if not isinstance(data, dict) or event is None:
        raise BadSignature("The payload is not a Stripe event.")
    return data
