"""Delivery reports from the email provider (anymail's tracking webhooks): a bounce or a
failure marks the email's row failed, so staff see it and can resend."""

from anymail.signals import AnymailTrackingEvent

from notifications.models import OutboundEmail

FAILED_EVENTS = {"bounced", "rejected", "failed"}


def on_tracking_event(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    event_type = event.event_type
    # Resend reports a failed send as its own type, which anymail does not map.
    esp_type = event.esp_event.get("type") if isinstance(event.esp_event, dict) else None
    if event_type == "unknown" and esp_type == "email.failed":
        event_type = "failed"
    if event_type not in FAILED_EVENTS or not event.message_id:
        return
    reason = event.description or event.mta_response or event_type
    OutboundEmail.objects.filter(provider_message_id=str(event.message_id)).update(
        status=OutboundEmail.Status.FAILED,
        error=f"{esp_name} reported {event_type}: {reason}"[:2000],
    )
