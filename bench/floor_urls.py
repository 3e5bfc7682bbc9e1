"""Bench-only URLconf (selected by bench/floor_settings.py, never by config/urls.py): the floor
that webhook ingestion is measured against. Its view does only what any webhook endpoint must:
check the Stripe signature and insert the event row, a repeat being ignored by the database."""

import json

import stripe
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.health import healthz
from payments.models import StripeEvent

# Columns whose defaults live in Python (models.py), given here so one statement does it all.
_INSERT = f"""
    INSERT INTO {StripeEvent._meta.db_table}
        (stripe_id, type, payload, livemode, received_at, deliveries, status, attempts, error,
         result)
    VALUES (%s, %s, %s::jsonb, %s, now(), 1, 'received', 0, '', '')
    ON CONFLICT (stripe_id) DO NOTHING
"""  # noqa: S608 (the table name is the model's, not input)


@csrf_exempt  # Stripe sends no CSRF token; the signature authenticates the call.
def floor_webhook(request: HttpRequest) -> HttpResponse:
    payload = request.body
    try:
        # The SDK's HMAC and timestamp check alone: construct_event would also build objects.
        stripe.WebhookSignature.verify_header(
            payload,
            request.headers.get("Stripe-Signature"),
            settings.STRIPE_WEBHOOK_SECRET,
            stripe.Webhook.DEFAULT_TOLERANCE,
        )
        event = json.loads(payload)
        values = [event["id"], event["type"], payload.decode(), bool(event.get("livemode"))]
    except (ValueError, KeyError, TypeError, stripe.SignatureVerificationError):
        return HttpResponseBadRequest("Bad signature")
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, values)
    return HttpResponse("Received")


urlpatterns = [
    path("healthz", healthz),
    # The app's own path (payments/urls.py), so the generator posts to one URL for both.
    path("payments/stripe/webhook/", floor_webhook),
]
