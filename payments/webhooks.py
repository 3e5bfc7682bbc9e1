"""The Stripe webhook endpoint: verify the signature on the raw body, store the event once, and
answer fast. Duplicate deliveries are acknowledged and change nothing."""

import logging
from contextlib import nullcontext

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import gateway
from payments.models import StripeEvent
from payments.signals import stripe_event_stored

logger = logging.getLogger(__name__)

# Stripe's events are a few KB; anything far larger is not from Stripe.
MAX_BODY_BYTES = 256 * 1024


@csrf_exempt  # Stripe cannot send a CSRF token; the signature is what authenticates the call.
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        return HttpResponse("Payload too large", status=413)
    payload = request.body
    try:
        event = gateway.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except gateway.BadSignature as error:
        logger.warning("Rejected a Stripe webhook: %s", error)
        return HttpResponseBadRequest("Bad signature")
    event = _without_nul(event)
    event_id = event.get("id")
    event_type = event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        return HttpResponseBadRequest("Not a Stripe event")
    try:
        stored = _store(event_id, event_type, event)
    except IntegrityError:
        StripeEvent.objects.filter(stripe_id=event_id).update(deliveries=F("deliveries") + 1)
        return HttpResponse("Duplicate, already received", status=200)
    if settings.STRIPE_WEBHOOK_PROCESSING == "task":
        # Once the row is committed: at once in autocommit, at the caller's commit otherwise.
        transaction.on_commit(lambda: dispatch_event(stored.pk))
    return HttpResponse("Received", status=200)


def _store(event_id: str, event_type: str, event: dict) -> StripeEvent:
    """One INSERT; IntegrityError if the event is already stored. Served by gunicorn the view
    runs in autocommit, where that statement is its own transaction: a repeat's failed INSERT
    leaves the connection usable, so an explicit transaction would only add the BEGIN and
    COMMIT round trips (webhook bench, docs/benchmarks.md). Inside a caller's transaction a
    savepoint keeps that transaction usable after a repeat."""
    in_transaction = transaction.get_connection().in_atomic_block
    with transaction.atomic() if in_transaction else nullcontext():
        return StripeEvent.objects.create(
            stripe_id=event_id,
            type=event_type,
            payload=event,
            livemode=bool(event.get("livemode")),
        )


def dispatch_event(event_pk: int) -> None:
    """Handle the event in the background; if the broker cannot take it, the event stays
    "received" and the periodic sweep (payments.tasks.process_pending_events) handles it."""
    try:
        stripe_event_stored.send(sender=StripeEvent, event_pk=event_pk)
    except Exception:
        logger.exception("Could not enqueue Stripe event %s; the sweep will handle it", event_pk)


def _without_nul(value):
    """PostgreSQL stores no NUL character in text or JSON; Stripe's own fields never hold one,
    so one in customer-supplied text is replaced rather than failing the delivery forever."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value
