"""Sign-up reports the password rules together with every other error, in the first answer."""

import datetime as dt
import secrets

import pytest
from django.urls import reverse
from django.utils import timezone

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
