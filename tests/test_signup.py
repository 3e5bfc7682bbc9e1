"""Accepting an invitation: the only way to become a member. Each link makes at most one account,
and every way a link can be unusable ends on a page that says why, with nothing created."""

import datetime as dt
import secrets

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services
from members.models import Invitation, Member

GOOD_PASSWORD = "Plum-Tree-Lantern-42"
NEW_EMAIL = "newbie@example.com"


@pytest.fixture
def make_invitation(staff):
    def make(email: str = NEW_EMAIL, **fields) -> tuple[Invitation, str]:
        token = secrets.token_urlsafe(32)
        now = timezone.now()
        fields.setdefault("created_at", now)
        fields.setdefault("expires_at", now + dt.timedelta(days=14))
        invitation = Invitation.objects.create(
            email=email, token_hash=services.hash_token(token), invited_by=staff, **fields
        )
        return invitation, token

    return make


@pytest.fixture
def invitation(make_invitation):
    return make_invitation()


def accept_url(token: str) -> str:
    return reverse("members:accept", args=[token])


def form_data(**overrides) -> dict:
    return {
        "full_name": "Nina Newbie",
        "password": GOOD_PASSWORD,
        "password_again": GOOD_PASSWORD,
        **overrides,
    }


def members_other_than_staff():
    return Member.objects.filter(is_staff=False)


def assert_nothing_created(invitation: Invitation) -> None:
    assert not members_other_than_staff().exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert invitation.accepted_by is None


# --- The happy path -----------------------------------------------------------------------


def test_a_valid_link_shows_the_sign_up_form(client, invitation):
    _, token = invitation

    response = client.get(accept_url(token))

    assert response.status_code == 200
    assert NEW_EMAIL in response.text
    assert 'name="full_name"' in response.text
    assert 'name="password"' in response.text
    assert 'name="password_again"' in response.text
    # The page holds a secret link: no cache may keep it.
    assert "no-store" in response["Cache-Control"] or "private" in response["Cache-Control"]


def test_accepting_creates_the_member_logs_them_in_and_lands_on_the_dashboard(client, invitation):
    invite, token = invitation

    response = client.post(accept_url(token), form_data(full_name="  Nina   Newbie "))

    assert response.status_code == 302
    assert response["Location"] == reverse("preorders:dashboard")
    member = members_other_than_staff().get()
    assert member.email == NEW_EMAIL
    assert member.full_name == "Nina Newbie"
    assert member.check_password(GOOD_PASSWORD)
    assert member.is_active and not member.is_staff and not member.is_superuser
    assert client.session["_auth_user_id"] == str(member.pk)
    invite.refresh_from_db()
    assert invite.accepted_by == member
    assert invite.accepted_at is not None
    assert invite.status == "accepted"

    dashboard = client.get(response["Location"])
    assert dashboard.status_code == 200
    assert "Welcome to Harry&#x27;s Club, Nina!" in dashboard.text


def test_the_new_member_can_sign_in_later_with_the_chosen_password(client, invitation):
    _, token = invitation
    client.post(accept_url(token), form_data())
    client.post(reverse("members:logout"))

    assert Client().login(username=NEW_EMAIL, password=GOOD_PASSWORD)


# --- Links that cannot be used ------------------------------------------------------------


def test_the_same_link_twice_shows_a_clear_page_and_makes_no_second_account(client, invitation):
    _, token = invitation
    client.post(accept_url(token), form_data())
    client.post(reverse("members:logout"))

    again = client.get(accept_url(token))
    assert again.status_code == 410
    assert "already been used" in again.text

    posted = client.post(accept_url(token), form_data(full_name="Someone Else"))
    assert posted.status_code == 410
    assert members_other_than_staff().count() == 1
    assert members_other_than_staff().get().full_name == "Nina Newbie"


def test_a_signed_in_member_following_an_invitation_link_goes_to_the_dashboard(
    client, member, invitation
):
    client.force_login(member)
    _, token = invitation

    response = client.post(accept_url(token), form_data())

    assert response.status_code == 302
    assert response["Location"] == reverse("preorders:dashboard")
    assert not Member.objects.filter(email=NEW_EMAIL).exists()
    assert Invitation.objects.get(pk=invitation[0].pk).status == "open"


def test_an_expired_link_shows_a_clear_page_and_creates_nothing(client, invitation):
    invite, token = invitation

    with time_machine.travel(invite.expires_at + dt.timedelta(seconds=1), tick=False):
        shown = client.get(accept_url(token))
        posted = client.post(accept_url(token), form_data())

    assert shown.status_code == 410
    assert "expired" in shown.text
    assert posted.status_code == 410
    assert_nothing_created(invite)


def test_a_link_is_still_good_just_before_it_expires(client, invitation):
    invite, token = invitation

    with time_machine.travel(invite.expires_at - dt.timedelta(seconds=1), tick=False):
        response = client.post(accept_url(token), form_data())

    assert response.status_code == 302
    assert members_other_than_staff().count() == 1


def test_a_link_that_expired_while_the_form_was_open_is_refused(client, make_invitation):
    invite, token = make_invitation(expires_at=timezone.now() + dt.timedelta(minutes=5))
    assert client.get(accept_url(token)).status_code == 200

    with time_machine.travel(invite.expires_at, tick=False):
        response = client.post(accept_url(token), form_data())

    assert response.status_code == 410
    assert_nothing_created(invite)


def test_a_forged_token_shows_a_not_found_page_and_creates_nothing(client, invitation):
    forged = secrets.token_urlsafe(32)

    shown = client.get(accept_url(forged))
    posted = client.post(accept_url(forged), form_data())

    assert shown.status_code == 404
    assert "This invitation link is not valid." in shown.text
    assert posted.status_code == 404
    assert_nothing_created(invitation[0])


def test_the_stored_hash_itself_does_not_work_as_a_token(client, invitation):
    invite, _ = invitation

    response = client.post(accept_url(invite.token_hash), form_data())

    assert response.status_code == 404
    assert_nothing_created(invite)


@pytest.mark.parametrize("token", ["x", "a" * 19, "a" * 101, "b" * 500])
def test_tokens_of_impossible_length_are_not_found(client, invitation, token):
    response = client.post(accept_url(token), form_data())

    assert response.status_code == 404
    assert "This invitation link is not valid." in response.text
    assert_nothing_created(invitation[0])


def test_a_revoked_link_is_refused(client, make_invitation):
    invite, token = make_invitation(revoked_at=timezone.now())

    response = client.post(accept_url(token), form_data())

    assert response.status_code == 410
    assert "replaced by a newer one" in response.text
    assert_nothing_created(invite)


# --- The form -----------------------------------------------------------------------------


def test_passwords_that_differ_are_refused(client, invitation):
    _, token = invitation

    response = client.post(accept_url(token), form_data(password_again=GOOD_PASSWORD + "x"))

    assert response.status_code == 200
    assert response.context["form"].errors["password_again"] == [
        "The two passwords are not the same."
    ]
    assert_nothing_created(invitation[0])


@pytest.mark.parametrize(
    "weak",
    [
        pytest.param("short1!", id="too-short"),
        pytest.param("password123", id="too-common"),
        pytest.param("8419273650", id="all-numbers"),
        pytest.param(NEW_EMAIL, id="same-as-email"),
    ],
)
def test_weak_passwords_are_refused(client, invitation, weak):
    _, token = invitation

    response = client.post(accept_url(token), form_data(password=weak, password_again=weak))

    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert_nothing_created(invitation[0])


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_a_blank_name_is_refused(client, invitation, name):
    _, token = invitation

    response = client.post(accept_url(token), form_data(full_name=name))

    assert response.status_code == 200
    assert response.context["form"].errors["full_name"]
    assert_nothing_created(invitation[0])


def test_an_overlong_name_is_refused(client, invitation):
    _, token = invitation

    response = client.post(accept_url(token), form_data(full_name="N" * 151))

    assert response.context["form"].errors["full_name"]
    assert_nothing_created(invitation[0])


def test_a_form_error_keeps_the_link_usable(client, invitation):
    _, token = invitation
    client.post(accept_url(token), form_data(password_again="nope"))

    response = client.post(accept_url(token), form_data())

    assert response.status_code == 302
    assert members_other_than_staff().count() == 1


def test_a_post_without_the_csrf_token_is_refused(invitation):
    _, token = invitation
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(accept_url(token), form_data())

    assert response.status_code == 403
    assert_nothing_created(invitation[0])


def test_a_post_with_the_csrf_token_from_the_form_is_accepted(invitation):
    _, token = invitation
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(accept_url(token))
    csrf = page.context["csrf_token"]

    response = browser.post(accept_url(token), form_data(csrfmiddlewaretoken=str(csrf)))

    assert response.status_code == 302
    assert members_other_than_staff().count() == 1


# --- The service directly -----------------------------------------------------------------


def test_accept_invitation_refuses_a_blank_name(invitation):
    _, token = invitation

    with pytest.raises(ValidationError) as caught:
        services.accept_invitation(token, full_name="   ", password=GOOD_PASSWORD)

    assert "full_name" in caught.value.message_dict
    assert_nothing_created(invitation[0])


def test_accept_invitation_refuses_a_non_string_token(invitation):
    with pytest.raises(services.InvitationError) as caught:
        services.usable_invitation(None)
    assert caught.value.reason == "invalid"


def test_accepting_when_the_address_already_has_an_account_says_so(make_member, invitation):
    """Someone invited, then given an account another way (e.g. by an admin), who then follows
    the link: the invitation cannot make a second account and says why."""
    invite, token = invitation
    make_member(email=NEW_EMAIL.upper())

    with pytest.raises(services.InvitationError) as caught:
        services.accept_invitation(token, full_name="Nina Newbie", password=GOOD_PASSWORD)

    assert caught.value.reason == "exists"
    assert get_user_model().objects.filter(email__iexact=NEW_EMAIL).count() == 1
    invite.refresh_from_db()
    assert invite.accepted_at is None


def test_the_page_for_an_address_that_already_has_an_account_points_to_sign_in(
    client, make_member, invitation
):
    _, token = invitation
    make_member(email=NEW_EMAIL)

    response = client.post(accept_url(token), form_data())

    assert response.status_code == 410
    assert "already exists" in response.text
    assert reverse("members:login") in response.text
    assert get_user_model().objects.filter(email__iexact=NEW_EMAIL).count() == 1
