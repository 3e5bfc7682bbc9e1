"""Email delivery: every email is a row first and a delivery attempt second; with no provider
configured, mail lands in an in-app outbox that staff can read."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse

from members import services as member_services
from notifications import services
from notifications.models import OutboundEmail, OutboxMessage
from notifications.smtp_url import smtp_options

ROOT = Path(__file__).resolve().parent.parent
OUTBOX_MAILER = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}


class ProviderDownBackend(BaseEmailBackend):
    """Stands in for an email provider that is unreachable."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("provider is down")


FAILING_MAILER = {"default": {"BACKEND": f"{__name__}.ProviderDownBackend"}}
WORKING_MAILER = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def outbox_mailer(settings, db):
    settings.MAILERS = OUTBOX_MAILER


def send_sample_email() -> int:
    message = EmailMultiAlternatives(
        subject="Your ticket for Jazz in the Cellar",
        body="Hello Jane,\nYour ticket is attached.",
        from_email="Harry's Club <tickets@harrys.club>",
        to=["jane@example.com"],
        cc=["office@example.com"],
    )
    message.attach_alternative("<p>Hello Jane, your <b>ticket</b> is attached.</p>", "text/html")
    message.attach("ticket.pdf", b"%PDF-1.4 fake", "application/pdf")
    message.attach("event.ics", "BEGIN:VCALENDAR\nEND:VCALENDAR\n", "text/calendar")
    return message.send()


def queued_email(**fields) -> OutboundEmail:
    fields.setdefault("to_email", "jane@example.com")
    fields.setdefault("template", "test")
    fields.setdefault("subject", "Hello")
    fields.setdefault("body_text", "Plain hello")
    fields.setdefault("body_html", "<p>HTML hello</p>")
    return OutboundEmail.objects.create(**fields)


# --- The outbox backend -------------------------------------------------------------------


def settings_chosen_with(**env: str) -> dict:
    """Django's test runner swaps MAILERS for locmem, so read what settings.py chooses in a
    fresh interpreter with a controlled environment."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"RESEND_API_KEY", "MAILERSEND_API_TOKEN", "SMTP_URL", "DJANGO_ENV"}
    }
    script = (
        "import json; from config import settings as s; "
        "print(json.dumps({'provider': s.EMAIL_PROVIDER, 'mailers': s.MAILERS}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


def test_with_no_provider_configured_mail_goes_to_the_outbox():
    assert settings_chosen_with() == {"provider": "outbox", "mailers": OUTBOX_MAILER}


def test_an_smtp_url_selects_the_smtp_backend():
    chosen = settings_chosen_with(SMTP_URL="smtp://u:p%40w@smtp.example.com:587?tls=1")

    assert chosen["provider"] == "smtp"
    mailer = chosen["mailers"]["default"]
    assert mailer["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert mailer["OPTIONS"]["password"] == "p@w"
    assert mailer["OPTIONS"]["use_tls"] is True


def test_the_outbox_backend_stores_text_html_and_attachment_names(outbox_mailer, mailoutbox):
    assert send_sample_email() == 1

    stored = OutboxMessage.objects.get()
    assert stored.subject == "Your ticket for Jazz in the Cellar"
    assert stored.from_email == "Harry's Club <tickets@harrys.club>"
    assert stored.to == "jane@example.com, office@example.com"
    assert stored.body_text == "Hello Jane,\nYour ticket is attached."
    assert stored.body_html == "<p>Hello Jane, your <b>ticket</b> is attached.</p>"
    assert stored.attachment_names == "ticket.pdf, event.ics"
    assert stored.message_id.startswith("<") and stored.message_id.endswith(">")
    # Nothing left the building.
    assert mailoutbox == []


def test_the_outbox_backend_stores_a_plain_message_too(outbox_mailer):
    EmailMultiAlternatives("Hi", "Just text", to=["sam@example.com"]).send()

    stored = OutboxMessage.objects.get()
    assert stored.body_text == "Just text"
    assert stored.body_html == ""
    assert stored.attachment_names == ""


def test_the_outbox_backend_counts_every_message_sent_in_one_go(outbox_mailer):
    from django.core.mail import mailers

    messages = [EmailMultiAlternatives(f"n{n}", "x", to=[f"{n}@example.com"]) for n in range(3)]

    assert mailers["default"].send_messages(messages) == 3
    assert OutboxMessage.objects.count() == 3


def test_a_queued_email_delivered_to_the_outbox_shows_up_for_staff(
    outbox_mailer, client, staff, django_capture_on_commit_callbacks
):
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("members:invitations"), {"emails": "jane@example.com"})

    assert OutboundEmail.objects.get().status == OutboundEmail.Status.SENT
    stored = OutboxMessage.objects.get()
    assert stored.to == "jane@example.com"
    assert "/invite/" in stored.body_text
    assert "/invite/" in stored.body_html


# --- The staff outbox pages ---------------------------------------------------------------


def test_staff_see_the_message_in_the_outbox_list_and_open_it(outbox_mailer, client, staff):
    send_sample_email()
    stored = OutboxMessage.objects.get()
    client.force_login(staff)

    listing = client.get(reverse("notifications:outbox"))
    assert listing.status_code == 200
    assert "Your ticket for Jazz in the Cellar" in listing.text
    detail_url = reverse("notifications:outbox_message", args=[stored.pk])
    assert detail_url in listing.text

    detail = client.get(detail_url)
    assert detail.status_code == 200
    assert "Hello Jane,\nYour ticket is attached." in detail.text
    assert "ticket.pdf, event.ics" in detail.text
    assert "office@example.com" in detail.text


def test_the_html_preview_is_sandboxed_and_cannot_run_script(client, staff):
    stored = OutboxMessage.objects.create(
        message_id="<x@test>",
        from_email="tickets@harrys.club",
        to="jane@example.com",
        subject="Hostile",
        body_text="<script>alert('text')</script>",
        body_html="<script>alert('html')</script>",
    )
    client.force_login(staff)

    detail = client.get(reverse("notifications:outbox_message", args=[stored.pk]))

    assert "<script>" not in detail.text
    assert "sandbox" in detail.text


def test_an_empty_outbox_says_so(client, staff):
    client.force_login(staff)
    assert "No emails yet." in client.get(reverse("notifications:outbox")).text


def test_the_outbox_pages_its_list(client, staff):
    OutboxMessage.objects.bulk_create(
        OutboxMessage(message_id=f"<{n}@t>", from_email="a@b.c", to="x@y.z", subject=f"S{n}")
        for n in range(51)
    )
    client.force_login(staff)

    first = client.get(reverse("notifications:outbox"))
    second = client.get(reverse("notifications:outbox"), {"page": 2})

    assert "Page 1 of 2" in first.text
    assert second.status_code == 200
    assert len(second.context["page"].object_list) == 1


def test_a_missing_outbox_message_is_404_for_staff(client, staff):
    client.force_login(staff)
    assert client.get(reverse("notifications:outbox_message", args=[999999])).status_code == 404


def test_a_member_cannot_see_the_outbox_or_its_messages(outbox_mailer, client, member):
    send_sample_email()
    stored = OutboxMessage.objects.get()
    client.force_login(member)

    listing = client.get(reverse("notifications:outbox"))
    detail = client.get(reverse("notifications:outbox_message", args=[stored.pk]))

    assert listing.status_code == 403
    assert detail.status_code == 403
    assert "Hello Jane" not in detail.text


# --- Delivery, failure and retry ----------------------------------------------------------


def test_queue_email_renders_a_row_and_delivers_only_after_commit(
    member, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        email = services.queue_email(
            to_email="alice@example.com",
            template="password_reset",
            context={"email": "alice@example.com", "uid": "MQ", "token": "abc-123"},
            member=member,
        )
    assert email.status == OutboundEmail.Status.QUEUED
    assert email.subject == "Reset your Harry's Club password"
    assert "/password-reset/MQ/abc-123/" in email.body_text
    assert email.body_html
    assert mailoutbox == []

    for callback in callbacks:
        callback()

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == 1
    assert email.sent_at is not None
    assert len(mailoutbox) == 1
    sent = mailoutbox[0]
    assert sent.to == ["alice@example.com"]
    assert sent.subject == email.subject
    assert "/password-reset/MQ/abc-123/" in sent.body
    assert sent.alternatives[0].mimetype == "text/html"
    # The stored copy no longer holds the one-time link once it has been delivered.
    assert email.body_text == services.REDACTED
    assert email.body_html == ""


def test_a_provider_failure_is_recorded_on_the_row_not_raised(settings, db):
    settings.MAILERS = FAILING_MAILER
    email = queued_email()

    result = services.deliver(email.pk)

    email.refresh_from_db()
    assert result.status == email.status == OutboundEmail.Status.FAILED
    assert email.attempts == 1
    assert email.error == "ConnectionRefusedError: provider is down"
    assert email.sent_at is None


def test_a_failed_email_is_sent_when_retried_and_attempts_are_counted(settings, db, mailoutbox):
    settings.MAILERS = FAILING_MAILER
    email = queued_email()
    services.deliver(email.pk)
    services.deliver(email.pk)

    settings.MAILERS = WORKING_MAILER
    services.deliver(email.pk)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == 3
    assert email.error == ""
    assert email.sent_at is not None
    assert len(mailoutbox) == 1


def test_delivering_a_sent_email_again_does_not_send_it_twice(db, mailoutbox):
    email = queued_email()
    services.deliver(email.pk)

    services.deliver(email.pk)

    email.refresh_from_db()
    assert email.attempts == 1
    assert len(mailoutbox) == 1


def test_an_email_outage_does_not_break_inviting(
    settings, client, staff, mailoutbox, django_capture_on_commit_callbacks
):
    settings.MAILERS = FAILING_MAILER
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("members:invitations"), {"emails": "jane@example.com"})

    assert response.status_code == 200
    assert response.context["report"].invited == ["jane@example.com"]
    email = OutboundEmail.objects.get()
    assert email.status == OutboundEmail.Status.FAILED
    assert "provider is down" in email.error


def test_emails_are_not_sent_when_the_invitation_is_rolled_back(
    staff, mailoutbox, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                member_services.invite_members(["jane@example.com"], invited_by=staff)
                raise RuntimeError("something later in the request failed")
        except RuntimeError:
            pass

    assert callbacks == []
    assert OutboundEmail.objects.count() == 0
    assert mailoutbox == []


# --- SMTP_URL -----------------------------------------------------------------------------


def test_smtp_url_with_starttls():
    assert smtp_options("smtp://mailer:s3cret@mail.example.com:587?tls=1") == {
        "host": "mail.example.com",
        "port": 587,
        "username": "mailer",
        "password": "s3cret",
        "use_ssl": False,
        "use_tls": True,
        "timeout": 20,
    }


def test_smtps_url_uses_implicit_tls_on_465_by_default():
    options = smtp_options("smtps://mailer:pw@mail.example.com")
    assert options["port"] == 465
    assert options["use_ssl"] is True
    assert options["use_tls"] is False


def test_smtps_never_also_asks_for_starttls():
    # Django's SMTP backend refuses use_ssl and use_tls together.
    options = smtp_options("smtps://mail.example.com?tls=1")
    assert options["use_ssl"] is True
    assert options["use_tls"] is False


def test_plain_smtp_without_credentials_defaults_to_port_25():
    assert smtp_options("smtp://localhost") == {
        "host": "localhost",
        "port": 25,
        "username": "",
        "password": "",
        "use_ssl": False,
        "use_tls": False,
        "timeout": 20,
    }


@pytest.mark.parametrize(
    ("query", "use_tls"), [("tls=1", True), ("tls=true", True), ("tls=0", False), ("", False)]
)
def test_smtp_tls_flag(query, use_tls):
    assert smtp_options(f"smtp://h.example.com:2525?{query}")["use_tls"] is use_tls


def test_percent_encoded_credentials_are_decoded():
    options = smtp_options("smtp://user%40example.com:p%40ss%3Aw%2Fo%25rd@smtp.example.com:587")
    assert options["username"] == "user@example.com"
    assert options["password"] == "p@ss:w/o%rd"


def test_a_plus_in_the_password_stays_a_plus():
    assert smtp_options("smtp://u:a+b@smtp.example.com")["password"] == "a+b"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mail.example.com",
        "http://mail.example.com",
        "smtp://",
        "smtp:///just-a-path",
        "smtp://mail.example.com:notaport",
        "smtp://mail.example.com:99999",
    ],
)
def test_bad_smtp_urls_raise_value_error(url):
    with pytest.raises(ValueError):
        smtp_options(url)
