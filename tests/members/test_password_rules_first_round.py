"""Every form that sets a password (sign-up, the account page, a password reset) reports the
password rules together with every other error, in the first answer."""

import datetime as dt
import secrets

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from members import services
from members.models import Invitation, Member

pytestmark = [pytest.mark.django_db]


def test_a_weak_password_is_reported_with_the_other_errors_at_once(client, staff):
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    Invitation.objects.create(
        email="nina.newbie@example.com",
        token_hash=services.hash_token(token),
        invited_by=staff,
        created_at=now,
        expires_at=now + dt.timedelta(days=14),
    )
    response = client.post(
        reverse("members:accept", args=[token]),
        {"full_name": "", "password": "1234", "password_again": "12345"},
    )
    errors = response.context["form"].errors
    assert set(errors) == {"full_name", "password", "password_again"}
    assert any("too short" in e for e in errors["password"])
    assert any("entirely numeric" in e for e in errors["password"])

    # A password too like the address is caught in the first round too.
    response = client.post(
        reverse("members:accept", args=[token]),
        {
            "full_name": "",
            "password": "nina.newbie@example",
            "password_again": "nina.newbie@example",
        },
    )
    errors = response.context["form"].errors
    assert set(errors) == {"full_name", "password"}
    assert any("too similar" in e for e in errors["password"])
    assert not Member.objects.filter(email="nina.newbie@example.com").exists()


def test_the_account_page_reports_the_rules_with_a_wrong_old_password_and_a_mismatch(member):
    client = Client()
    client.force_login(member)
    response = client.post(
        reverse("members:account_password"),
        {"old_password": "wrong", "new_password1": "1234", "new_password2": "12345"},
    )
    assert response.status_code == 400
    errors = response.context["password_form"].errors
    assert set(errors) == {"old_password", "new_password1", "new_password2"}
    assert any("too short" in e for e in errors["new_password1"])
    assert any("entirely numeric" in e for e in errors["new_password1"])
    page = response.content.decode()
    assert "too short" in page and "didn’t match" in page
    member.refresh_from_db()
    assert member.check_password("a-Good-passw0rd")


def test_a_password_reset_reports_the_rules_with_a_mismatch(client, member):
    uid = urlsafe_base64_encode(force_bytes(member.pk))
    token = default_token_generator.make_token(member)
    # Django swaps the token in the link for a session-held one, then shows the form.
    form_page = client.get(
        reverse("members:password_reset_confirm", args=[uid, token]), follow=True
    )
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": "alice", "new_password2": "alicf"})
    errors = response.context["form"].errors
    assert set(errors) == {"new_password1", "new_password2"}
    assert any("too short" in e for e in errors["new_password1"])
    assert any("too similar" in e for e in errors["new_password1"])
    member.refresh_from_db()
    assert member.check_password("a-Good-passw0rd")
