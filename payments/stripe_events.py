"""Handling stored Stripe events. Events may repeat, arrive out of order, or arrive before the
charge run heard Stripe's answer: handlers only settle an attempt that is still open, so the
first of the two to arrive moves the state and the second does nothing."""

import logging

from django.db import transaction
from django.utils import timezone

from config import log_context
from payments import gateway
from payments.models import ChargeAttempt, StripeEvent
from payments.settlement import settle

logger = logging.getLogger(__name__)

HANDLED = {"payment_intent.succeeded", "payment_intent.payment_failed"}


def process_event(event_pk: int) -> StripeEvent:
    """Handle one stored event once; replaying a processed one does nothing."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED):
            return event
        event.attempts += 1
        event.save(update_fields=["attempts"])
    try:
        status, result, preorder_id = _handle(event)
    except Exception as error:  # recorded for the webhook log and its replay button
        logger.exception("Stripe event %s failed", event.stripe_id)
        status, result, preorder_id = StripeEvent.Status.FAILED, "", None
        event.error = f"{type(error).__name__}: {error}"[:2000]
    else:
        event.error = ""
    event.status = status
    event.result = result[:255]
    event.preorder_id = preorder_id or event.preorder_id
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "result", "preorder", "processed_at", "error"])
    return event


def _handle(event: StripeEvent) -> tuple[str, str, int | None]:
    if event.type not in HANDLED:
        logger.info("Stripe event type %s is not handled; acknowledged", event.type)
        return StripeEvent.Status.IGNORED, "type not handled", None
    intent = (event.payload.get("data") or {}).get("object") or {}
    metadata = intent.get("metadata") or {}
    attempt = (
        ChargeAttempt.objects.filter(payment_intent_id=intent.get("id")).first()
        if intent.get("id")
        else None
    ) or ChargeAttempt.objects.filter(idempotency_key=metadata.get("charge_key") or "").first()
    if attempt is None:
        return StripeEvent.Status.IGNORED, "not a presale charge", None
    with log_context.bound(preorder_id=attempt.preorder_id, charge_attempt_id=attempt.pk):
        outcome = gateway.outcome_from_event_object(intent)
        if event.type == "payment_intent.payment_failed" and outcome.status == "succeeded":
            # The event contradicts itself: ask Stripe.
            outcome = gateway.payment_intent_outcome(intent["id"])
        changed = settle(attempt.pk, outcome, source="stripe")
        logger.info("Stripe event %s (%s): %s", event.stripe_id, event.type, outcome.status)
    result = f"{outcome.status}: {'settled' if changed else 'already settled'}"
    return StripeEvent.Status.PROCESSED, result, attempt.preorder_id
