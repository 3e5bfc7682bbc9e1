"""In production the staff-readable outbox (only when chosen, see tests/config) never keeps a
sign-in link: invitations and password resets are withheld; other emails are kept whole."""

import pytest
from django.urls import reverse

from members import services as member_services
from members.models import Invitation
from notifications import services
from notifications.models import OutboxMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_outbox(settings):
    settings.MAILERS = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}
    settings.PRODUCTION = True


def test_an_invitation_link_never_reaches_the_outbox_in_production(
    production_outbox, staff, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member_services.invite_members(["jane@example.com"], invited_by=staff)
    message = OutboxMessage.objects.get()
    assert message.to == "jane@example.com"
    assert "/invite/" not in message.body_text + message.body_html

    client.force_login(staff)
    page = client.get(reverse("notifications:outbox_message", args=[message.pk]))
    assert "/invite/" not in page.text
    assert "personal sign-in link" in page.text


def test_a_password_reset_link_never_reaches_the_outbox_in_production(
    production_outbox, member, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("members:password_reset"), {"email": member.email})

    message = OutboxMessage.objects.get()
    assert "/password-reset/" not in message.body_text + message.body_html


def test_other_emails_are_kept_whole_in_production(production_outbox, member):
    email = services.queue_email(
        to_email=member.email,
        template="staff_alert",
        context={"message": "Pool for Jazz is short by 2"},
    )
    services.deliver(email.pk)

    assert "Pool for Jazz is short by 2" in OutboxMessage.objects.get().body_text


def test_in_development_the_outbox_shows_the_invitation_link(
    settings, staff, django_capture_on_commit_callbacks
):
    settings.MAILERS = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        member_services.invite_members(["jane@example.com"], invited_by=staff)

    assert Invitation.objects.exists()
    assert "/invite/" in OutboxMessage.objects.get().body_text
