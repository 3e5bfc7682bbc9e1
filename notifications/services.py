"""Emails: rendered from templates into an OutboundEmail row inside the caller's transaction, and
delivered only after that transaction commits."""

import datetime as dt
import email.message
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from notifications.models import OutboundEmail, OutboundEmailAttachment
from notifications.signals import email_committed, email_sent

logger = logging.getLogger(__name__)

# Emails that carry a one-time secret link: once delivered, their stored copy is blanked so a
# leaked database does not leak working links.
SECRET_TEMPLATES = frozenset({"invitation", "password_reset", "email_change_confirm"})
REDACTED = "[Removed after sending: this email held a one-time link.]"


def contact_line() -> str:
    return f"Questions? Write to {settings.CLUB_CONTACT_EMAIL} or reply to this email."


def render_email(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, text and HTML of an email. Every one ends with the club's contact address (the
    HTML layout carries it; the text gets it here, so no template can leave it out)."""
    context = {
        "site_url": settings.SITE_URL,
        "contact_email": settings.CLUB_CONTACT_EMAIL,
        **context,
    }
    subject = render_to_string(f"emails/{template}_subject.txt", context, using="text")
    text = render_to_string(f"emails/{template}.txt", context, using="text")
    html = render_to_string(f"emails/{template}.html", context)
    text = f"{text.rstrip()}\n\n--\n{contact_line()}\n"
    return " ".join(subject.split()), text, html


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str
    content_id: str = ""  # for an image shown inline in the HTML


def queue_email(
    *,
    to_email: str,
    template: str,
    context: dict,
    member=None,
    preorder=None,
    attachments: Sequence[Attachment] = (),
    hand_off: bool = True,
) -> OutboundEmail:
    """Store the email, and once committed hand it to a worker to send (`hand_off=False`: the
    caller, itself a task, sends it; the sweep still finds it if that never happens)."""
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
    OutboundEmailAttachment.objects.bulk_create(
        OutboundEmailAttachment(
            email=email,
            filename=item.filename,
            mimetype=item.mimetype,
            content=item.content,
            content_id=item.content_id,
        )
        for item in attachments
    )
    if hand_off:
        transaction.on_commit(lambda: dispatch(email.pk))
    return email


def email_member_about(
    preorder,
    template: str,
    *,
    to_email: str | None = None,
    attachments: Sequence[Attachment] = (),
    hand_off: bool = True,
    **context,
) -> OutboundEmail:
    """An email to a pre-order's member about it: the template gets the pre-order, its member
    and its event (and `context`), and the row is filed under both, for the member's page, the
    pre-order's page and the data download."""
    member = preorder.member
    return queue_email(
        to_email=to_email or member.email,
        template=template,
        context={"preorder": preorder, "member": member, "event": preorder.event, **context},
        member=member,
        preorder=preorder,
        attachments=attachments,
        hand_off=hand_off,
    )


def dispatch(email_id: int) -> None:
    """Hand an email to the background worker; if the broker cannot take it, the periodic sweep
    (notifications.tasks.sweep_unsent_emails) picks the row up later."""
    try:
        email_committed.send(sender=OutboundEmail, email_id=email_id)
    except Exception:  # broker down (or, inline, the task itself): the row is safe
        logger.exception("Email %s was not handed to a worker; the sweep will retry it.", email_id)


def _build_message(email: OutboundEmail) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to_email],
        reply_to=[settings.CLUB_CONTACT_EMAIL],
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    # The in-app outbox reads this to keep sign-in links out of staff's sight in production.
    message.presale_template = email.template
    for item in email.attachments.all():
        maintype, subtype = item.mimetype.split("/", 1)
        part = email_message_part()
        part.set_content(
            bytes(item.content),
            maintype=maintype,
            subtype=subtype,
            disposition="inline" if item.content_id else "attachment",
            filename=item.filename,
            cid=f"<{item.content_id}>" if item.content_id else None,
        )
        message.attach(part)
    return message


def email_message_part() -> email.message.MIMEPart:
    return email.message.MIMEPart()


SEND_LEASE = dt.timedelta(minutes=10)


def _claim(email_id: int) -> OutboundEmail | None:
    """Take the row for sending, so a retry, the sweep and a resend never send it twice."""
    now = timezone.now()
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().get(pk=email_id)
        if email.status in (OutboundEmail.Status.SENT, OutboundEmail.Status.SUPERSEDED):
            return None
        if (
            email.status == OutboundEmail.Status.SENDING
            and email.claimed_at
            and email.claimed_at > now - SEND_LEASE
        ):
            return None
        email.status = OutboundEmail.Status.SENDING
        email.claimed_at = now
        email.attempts += 1
        email.save(update_fields=["status", "claimed_at", "attempts"])
    return email


def deliver(email_id: int) -> OutboundEmail:
    """Try to send one email. A failure is recorded on the row, not raised: the row stays
    retryable and the caller's request is not broken by an email outage."""
    email = _claim(email_id)
    if email is None:
        return OutboundEmail.objects.get(pk=email_id)
    message = _build_message(email)
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
            "status", "error", "sent_at", "provider_message_id", "body_text", "body_html"
        ]
    )  # fmt: skip
    if email.status == OutboundEmail.Status.SENT:
        email_sent.send(sender=OutboundEmail, email=email)
    return email
