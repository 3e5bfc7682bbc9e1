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
