"""The outbox preview shows a ticket email's QR code: the inline image (cid:) is kept in the
stored HTML as a data URI, since the outbox keeps no attachments and a browser cannot open cid:."""

import base64

import pytest
from django.urls import reverse

from notifications.models import OutboundEmail, OutboundEmailAttachment, OutboxMessage
from notifications.services import deliver
from tickets.delivery import QR_CONTENT_ID, qr_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox_mailer(settings):
    settings.MAILERS = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}


def test_the_qr_code_of_a_ticket_email_shows_in_the_outbox_preview(outbox_mailer, client, staff):
    png = qr_png("JAZZ-0001")
    email = OutboundEmail.objects.create(
        to_email="alice@example.com",
        template="ticket",
        subject="Your ticket",
        body_text="Your ticket JAZZ-0001",
        body_html=f'<p>Show this:</p><img src="cid:{QR_CONTENT_ID}" alt="QR code">',
    )
    OutboundEmailAttachment.objects.create(
        email=email,
        filename="ticket-qr.png",
        mimetype="image/png",
        content=png,
        content_id=QR_CONTENT_ID,
    )
    OutboundEmailAttachment.objects.create(
        email=email, filename="event.ics", mimetype="text/calendar", content=b"BEGIN:VCALENDAR"
    )

    deliver(email.pk)

    stored = OutboxMessage.objects.get()
    assert "cid:" not in stored.body_html
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in stored.body_html
    assert stored.attachment_names == "ticket-qr.png, event.ics"
    client.force_login(staff)
    page = client.get(reverse("notifications:outbox_message", args=[stored.pk])).content.decode()
    assert "data:image/png;base64," in page
