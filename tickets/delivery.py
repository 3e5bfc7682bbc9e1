"""Getting a ticket to its member: the email (with a QR code and a calendar entry), the
dashboard's QR code, and the staff's resend tool. Resending never charges or assigns again."""

import datetime as dt
import io
import logging

import segno
from django.db import transaction
from django.utils import timezone
from icalendar import Calendar
from icalendar import Event as CalendarEvent

from notifications.models import OutboundEmail
from notifications.services import Attachment, email_member_about
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import transition_many
from preorders.states import Status
from tickets.models import Ticket
from tickets.signals import ticket_due

logger = logging.getLogger(__name__)

QR_CONTENT_ID = "ticket-qr@harrys.club"
TICKET_TEMPLATE = "ticket"
EVENT_LENGTH = dt.timedelta(hours=3)


class ResendError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def qr_symbol(code: str) -> segno.QRCode:
    """The ticket's QR code: exactly its code, nothing else. Always a full QR code: for short
    text segno would otherwise pick a Micro QR code, which phone cameras, the browser's
    BarcodeDetector and jsQR cannot read. The quiet zone (border) is the 4 modules the QR
    standard asks for."""
    return segno.make_qr(code, error="m")


QR_BORDER = 4


def qr_png(code: str) -> bytes:
    buffer = io.BytesIO()
    qr_symbol(code).save(buffer, kind="png", scale=8, border=QR_BORDER)
    return buffer.getvalue()


def qr_svg(code: str) -> str:
    """An inline <svg> of the ticket's QR code, for the dashboard."""
    return qr_symbol(code).svg_inline(
        scale=6, border=QR_BORDER, title=f"Ticket {code}", omitsize=True
    )


def calendar_entry(preorder: PreOrder, ticket: Ticket) -> bytes:
    event = preorder.event
    calendar = Calendar()
    calendar.add("prodid", "-//Harry's Club//Presale//EN")
    calendar.add("version", "2.0")
    entry = CalendarEvent()
    entry.add("uid", f"ticket-{ticket.pk}@harrys.club")
    entry.add("dtstamp", timezone.now())
    entry.add("dtstart", event.starts_at)
    entry.add("dtend", event.starts_at + EVENT_LENGTH)
    entry.add("summary", event.title)
    entry.add("location", event.venue)
    entry.add("description", f"Harry's Club ticket {ticket.code} for {preorder.member.full_name}.")
    calendar.add_component(entry)
    return calendar.to_ical()


def queue_ticket_email(
    preorder: PreOrder, ticket: Ticket, *, to_email: str | None = None, hand_off: bool = True
):
    return email_member_about(
        preorder,
        TICKET_TEMPLATE,
        to_email=to_email,
        hand_off=hand_off,
        attachments=[
            Attachment("ticket-qr.png", qr_png(ticket.code), "image/png", QR_CONTENT_ID),
            Attachment("event.ics", calendar_entry(preorder, ticket), "text/calendar"),
        ],
        ticket=ticket,
        qr_content_id=QR_CONTENT_ID,
    )


def send_ticket(preorder_id: int, *, hand_off: bool = True) -> OutboundEmail | None:
    """Email a paid pre-order its ticket, once: a second call finds the email and does nothing.
    `hand_off=False`: the caller sends it (tickets.tasks, in the same task)."""
    with transaction.atomic():
        preorder = (
            PreOrder.objects.select_for_update(of=("self",))
            .select_related("member", "event")
            .get(pk=preorder_id)
        )
        if preorder.status not in (Status.PAID, Status.TICKET_SENT):
            return None
        already = OutboundEmail.objects.filter(preorder=preorder, template=TICKET_TEMPLATE)
        if already.exclude(status=OutboundEmail.Status.SUPERSEDED).exists():
            return None
        ticket = Ticket.objects.filter(preorder=preorder).first()
        if ticket is None:
            return None
        return queue_ticket_email(preorder, ticket, hand_off=hand_off)


def dispatch_ticket(preorder_id: int) -> None:
    try:
        ticket_due.send(sender=Ticket, preorder_id=preorder_id)
    except Exception:  # broker down: reconciliation finds paid pre-orders without an email
        logger.exception("Ticket of pre-order %s not handed to a worker yet", preorder_id)


def mark_ticket_sent(email: OutboundEmail) -> None:
    """Once a ticket email has been delivered, the pre-order is "Successful – Ticket Sent"."""
    if email.template != TICKET_TEMPLATE or email.preorder_id is None:
        return
    with transaction.atomic():
        preorder = PreOrder.objects.select_for_update().get(pk=email.preorder_id)
        if preorder.status == Status.PAID:
            transition_many(
                [preorder], Status.TICKET_SENT, actor=None, source="system",
                note=f"Ticket emailed to {email.to_email}", now=timezone.now(),
            )  # fmt: skip


def resend_ticket(preorder_id: int, *, actor, to_email: str | None = None) -> OutboundEmail:
    """Send a paid pre-order's ticket again, optionally to a corrected address."""
    preorder = PreOrder.objects.select_related("member", "event").get(pk=preorder_id)
    ticket = Ticket.objects.filter(preorder=preorder).first()
    if ticket is None or preorder.status not in (Status.PAID, Status.TICKET_SENT):
        raise ResendError("Only a paid pre-order with a ticket can have its ticket resent.")
    with transaction.atomic():
        # An older ticket email still waiting or failed must not go out later, maybe to a
        # wrong address: the new one replaces it.
        OutboundEmail.objects.filter(
            preorder=preorder,
            template=TICKET_TEMPLATE,
            status__in=[OutboundEmail.Status.QUEUED, OutboundEmail.Status.FAILED],
        ).update(status=OutboundEmail.Status.SUPERSEDED)
        email = queue_ticket_email(preorder, ticket, to_email=to_email)
        PreOrderLogEntry.objects.create(
            preorder=preorder,
            source=PreOrderLogEntry.Source.STAFF,
            actor=actor,
            action="ticket_resent",
            from_status=preorder.status,
            to_status=preorder.status,
            note=f"Ticket email resent to {email.to_email}",
        )
    return email


def resend_failed_ticket_emails(event_id: int, *, actor) -> int:
    """Resend every ticket of an event whose latest ticket email failed."""
    latest_failed = [
        preorder_id
        for preorder_id, status in _latest_ticket_email_status(event_id).items()
        if status == OutboundEmail.Status.FAILED
    ]
    for preorder_id in latest_failed:
        resend_ticket(preorder_id, actor=actor)
    return len(latest_failed)


def _latest_ticket_email_status(event_id: int) -> dict[int, str]:
    latest: dict[int, str] = {}
    for preorder_id, status in (
        # A refunded pre-order's ticket is void: its failed email is not one to resend.
        OutboundEmail.objects.filter(
            template=TICKET_TEMPLATE,
            preorder__event_id=event_id,
            preorder__status__in=[Status.PAID, Status.TICKET_SENT],
        )
        .order_by("created_at", "id")
        .values_list("preorder_id", "status")
    ):
        latest[preorder_id] = status
    return latest


def failed_ticket_email_count(event_id: int) -> int:
    return sum(
        1
        for status in _latest_ticket_email_status(event_id).values()
        if status == OutboundEmail.Status.FAILED
    )
