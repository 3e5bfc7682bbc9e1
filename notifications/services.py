"""Emails: rendered from templates into an OutboundEmail row inside the caller's transaction, and
delivered only after that transaction commits."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from notifications.models import OutboundEmail

logger = logging.getLogger(__name__)

# Emails that carry a one-time secret link: once delivered, their stored copy is blanked so a
# leaked database does not leak working links.
SECRET_TEMPLATES = frozenset({"invitation", "password_reset"})
REDACTED = "[Removed after sending: this email held a one-time link.]"


def render_email(template: str, context: dict) -> tuple[str, str, str]:
    context = {"site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"emails/{template}_subject.txt", context, using="text")
    text = render_to_string(f"emails/{template}.txt", context, using="text")
    html = render_to_string(f"emails/{template}.html", context)
    return " ".join(subject.split()), text, html


def queue_email(
    *, to_email: str, template: str, context: dict, member=None, preorder=None
) -> OutboundEmail:
    subject, text, html = render_email(template, context)
    email = OutboundEmail.objects.create(
        to_email=to_email,
        template=template,
        subject=subject,
        body_text=text,
        body_html=html,
        member=member,
        preorder=preorder,
    )
    transaction.on_commit(lambda: deliver(email.pk))
    return email


def deliver(email_id: int) -> OutboundEmail:
    """Try to send one queued email. A failure is recorded on the row, not raised: the row stays
    retryable and the caller's request is not broken by an email outage."""
    email = OutboundEmail.objects.get(pk=email_id)
    if email.status == OutboundEmail.Status.SENT:
        return email
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to_email],
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    email.attempts += 1
    try:
        message.send()
    except Exception as error:  # any provider or network failure
        logger.warning("Email %s to %s failed: %s", email.pk, email.to_email, error)
        email.status = OutboundEmail.Status.FAILED
        email.error = f"{type(error).__name__}: {error}"[:2000]
    else:
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.error = ""
        status = getattr(message, "anymail_status", None)
        if status is not None and status.message_id:
            email.provider_message_id = str(status.message_id)
        if email.template in SECRET_TEMPLATES:
            email.body_text = REDACTED
            email.body_html = ""
    email.save(
        update_fields=[
            "status",
            "attempts",
            "error",
            "sent_at",
            "provider_message_id",
            "body_text",
            "body_html",
        ]
    )
    return email
