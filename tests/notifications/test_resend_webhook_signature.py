"""Resend's delivery reports are verified with its signing secret (Svix), as MailerSend's are:
a correctly signed bounce is recorded; an unsigned or wrongly signed one changes nothing."""

import json
import uuid

import pytest
from django.test import Client
from django.utils import timezone
from svix.webhooks import Webhook

from notifications.models import OutboundEmail

pytestmark = pytest.mark.django_db
URL = "/anymail/resend/tracking/"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def sent_email(settings) -> OutboundEmail:
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": SECRET}
    return OutboundEmail.objects.create(
        to_email="a@example.com",
        template="ticket",
        subject="Your ticket",
        body_text="…",
        status=OutboundEmail.Status.SENT,
        sent_at=timezone.now(),
        provider_message_id="4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
    )


def bounce(email: OutboundEmail) -> bytes:
    return json.dumps(
        {
            "type": "email.bounced",
            "created_at": "2026-12-01T19:00:05.000Z",
            "data": {
                "email_id": email.provider_message_id,
                "to": [email.to_email],
                "from": "tickets@harrys.club",
                "subject": email.subject,
                "created_at": "2026-12-01T19:00:00.000Z",
                "bounce": {"message": "Mailbox does not exist", "type": "Permanent"},
            },
        }
    ).encode()


def post(body: bytes, secret: str | None):
    headers = {}
    if secret is not None:
        message_id = f"msg_{uuid.uuid4().hex}"
        now = timezone.now()
        signature = Webhook(secret).sign(message_id, now, body.decode())
        headers = {
            "svix-id": message_id,
            "svix-timestamp": str(int(now.timestamp())),
            "svix-signature": signature,
        }
    return Client(raise_request_exception=False).post(
        URL, data=body, content_type="application/json", headers=headers
    )


def test_a_correctly_signed_bounce_marks_the_email_failed(sent_email):
    response = post(bounce(sent_email), SECRET)

    assert response.status_code == 200
    sent_email.refresh_from_db()
    assert sent_email.status == OutboundEmail.Status.FAILED


@pytest.mark.parametrize("secret", [None, "whsec_" + "A" * 32], ids=["unsigned", "wrong-key"])
def test_an_unsigned_or_wrongly_signed_bounce_changes_nothing(sent_email, secret):
    response = post(bounce(sent_email), secret)

    assert 400 <= response.status_code < 500
    sent_email.refresh_from_db()
    assert sent_email.status == OutboundEmail.Status.SENT
