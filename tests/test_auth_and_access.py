"""Signing in and out, resetting a forgotten password, and who may open which page."""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from notifications.models import OutboundEmail, OutboxMessage

PASSWORD = "a-Good-passw0rd"  # the conftest factory's default
NEW_PASSWORD = "Copper-Kettle-Harbour-7"
LOGIN = reverse("members:login")


def log_in(client, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"username": email, "password": password, **extra})


def signed_in_id(client) -> str | None:
    return client.session.get(SESSION_KEY)


# --- Signing in and out -------------------------------------------------------------------


def test_the_login_page_asks_for_email_and_password(client, db):
    response = client.get(LOGIN)

    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text
    assert reverse("members:password_reset") in response.text


def test_a_member_signs_in_with_email_and_password(client, member):
    response = log_in(client, "alice@example.com")

    assert response.status_code == 302
    assert response["Location"] == reverse("preorders:dashboard")
    assert signed_in_id(client) == str(member.pk)


def test_signing_in_ignores_the_case_of_the_email(client, member):
    """Addresses are stored in lower case; people type them however their phone capitalises."""
    response = log_in(client, "Alice@Example.com")

    assert response.status_code == 302
    assert signed_in_id(client) == str(member.pk)


def test_a_wrong_password_is_refused(client, member):
    response = log_in(client, "alice@example.com", "not-my-password")

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "That email and password do not match an account. Please check them and try again, "
        "or reset your password."
    ]
    # Django's own words say the email "may be case-sensitive"; here it is not.
    assert "case-sensitive" not in response.content.decode()
    assert signed_in_id(client) is None


def test_an_unknown_email_is_refused_with_the_same_message(client, member):
    wrong_password = log_in(client, "alice@example.com", "not-my-password")
    unknown = log_in(client, "nobody@example.com", "not-my-password")

    assert unknown.status_code == 200
    assert unknown.context["form"].non_field_errors() == (
        wrong_password.context["form"].non_field_errors()
    )
    assert signed_in_id(client) is None


def test_an_inactive_member_cannot_sign_in(client, make_member):
    make_member(email="gone@example.com", is_active=False)

    response = log_in(client, "gone@example.com")

    assert response.status_code == 200
    assert signed_in_id(client) is None


def test_a_member_deactivated_while_signed_in_loses_access(client, member):
    client.force_login(member)
    member.is_active = False
    member.save(update_fields=["is_active"])

    response = client.get(reverse("preorders:dashboard"))

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_signing_in_returns_to_the_page_asked_for(client, staff):
    wanted = reverse("notifications:outbox")

    response = log_in(client, "staff@example.com", next=wanted)

    assert response["Location"] == wanted


def test_signing_in_never_redirects_off_site(client, member):
    response = log_in(client, "alice@example.com", next="https://evil.example/phish")

    assert response.status_code == 302
    assert response["Location"] == reverse("preorders:dashboard")


def test_a_signed_in_member_visiting_login_goes_to_the_dashboard(client, member):
    client.force_login(member)

    response = client.get(LOGIN)

    assert response.status_code == 302
    assert response["Location"] == reverse("preorders:dashboard")


def test_signing_out_is_a_post(client, member):
    client.force_login(member)

    response = client.post(reverse("members:logout"))

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert signed_in_id(client) is None
    assert client.get(reverse("preorders:dashboard")).status_code == 302


def test_signing_out_by_get_is_refused(client, member):
    """A GET must not sign anyone out: an <img src=".../logout/"> on any site could."""
    client.force_login(member)

    response = client.get(reverse("members:logout"))

    assert response.status_code == 405
    assert signed_in_id(client) == str(member.pk)


# --- Password reset -----------------------------------------------------------------------


def request_reset(client, email: str, capture):
    with capture(execute=True):
        return client.post(reverse("members:password_reset"), {"email": email})


def reset_link(mail, site_url: str) -> str:
    links = re.findall(r"https?://\S+", mail.body)
    link = next(link for link in links if "/password-reset/" in link)
    assert link.startswith(site_url + "/")
    return urlsplit(link).path


def test_a_member_can_reset_a_forgotten_password_through_the_emailed_link(
    client, member, mailoutbox, settings, django_capture_on_commit_callbacks
):
    response = request_reset(client, "alice@example.com", django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == reverse("members:password_reset_done")
    queued = OutboundEmail.objects.get()
    assert queued.to_email == "alice@example.com"
    assert queued.template == "password_reset"
    assert queued.member == member
    assert queued.status == OutboundEmail.Status.SENT
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["alice@example.com"]
    assert "password" in mail.subject.lower()

    # Django swaps the token in the link for a session-held one and redirects.
    link = reset_link(mail, settings.SITE_URL)
    landing = client.get(link)
    assert landing.status_code == 302
    set_password_url = landing["Location"]
    assert set_password_url.endswith("/set-password/")

    form_page = client.get(set_password_url)
    assert form_page.status_code == 200
    assert form_page.context["validlink"]

    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("members:password_reset_complete")
    assert client.get(done["Location"]).status_code == 200

    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert not member.check_password(PASSWORD)
    assert log_in(client, "alice@example.com", NEW_PASSWORD).status_code == 302


def test_a_reset_link_works_only_once(
    client, member, mailoutbox, settings, django_capture_on_commit_callbacks
):
    request_reset(client, "alice@example.com", django_capture_on_commit_callbacks)
    link = reset_link(mailoutbox[0], settings.SITE_URL)
    set_password_url = client.get(link)["Location"]
    client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    again = client.get(link, follow=True)

    assert not again.context["validlink"]
    assert "not valid any more" in again.text


def test_a_reset_for_an_email_in_another_case_still_reaches_the_member(
    client, member, mailoutbox, django_capture_on_commit_callbacks
):
    request_reset(client, "ALICE@example.com", django_capture_on_commit_callbacks)

    assert [mail.to for mail in mailoutbox] == [["alice@example.com"]]


def test_a_weak_new_password_is_refused(
    client, member, mailoutbox, settings, django_capture_on_commit_callbacks
):
    request_reset(client, "alice@example.com", django_capture_on_commit_callbacks)
    set_password_url = client.get(reset_link(mailoutbox[0], settings.SITE_URL))["Location"]

    response = client.post(set_password_url, {"new_password1": "123", "new_password2": "123"})

    assert response.status_code == 200
    assert response.context["form"].errors
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


@pytest.mark.parametrize("email", ["nobody@example.com", "gone@example.com"])
def test_a_reset_for_an_unknown_or_inactive_address_looks_the_same_and_sends_nothing(
    client, member, make_member, mailoutbox, django_capture_on_commit_callbacks, email
):
    make_member(email="gone@example.com", is_active=False)

    response = request_reset(client, email, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == reverse("members:password_reset_done")
    page = client.get(response["Location"])
    assert "Check your email" in page.text
    assert OutboundEmail.objects.count() == 0
    assert mailoutbox == []


def test_a_forged_reset_link_is_refused(client, member):
    response = client.get(
        reverse("members:password_reset_confirm", args=["MQ", "abc-0123456789abcdef"]), follow=True
    )

    assert response.status_code == 200
    assert not response.context["validlink"]


# --- Who may open which page --------------------------------------------------------------


@pytest.fixture
def outbox_message(db):
    return OutboxMessage.objects.create(
        message_id="<1@test>",
        from_email="tickets@harrys.club",
        to="jane@example.com",
        subject="Your ticket",
        body_text="Hello Jane",
    )


@pytest.fixture
def staff_urls(outbox_message):
    return [
        reverse("members:invitations"),
        reverse("notifications:outbox"),
        reverse("notifications:outbox_message", args=[outbox_message.pk]),
    ]


def test_the_dashboard_is_the_site_root(db):
    assert reverse("preorders:dashboard") == "/"


def test_anonymous_visitors_are_sent_to_sign_in_for_the_dashboard(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/"


def test_anonymous_visitors_are_sent_to_sign_in_for_staff_pages(client, staff_urls):
    for url in staff_urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert urlsplit(response["Location"]).path == LOGIN, url
        assert f"next={url}" in response["Location"].replace("%2F", "/"), url


def test_anonymous_posts_to_staff_pages_do_nothing(client, db):
    response = client.post(reverse("members:invitations"), {"emails": "jane@example.com"})

    assert response.status_code == 302
    from members.models import Invitation

    assert not Invitation.objects.exists()


def test_members_who_are_not_staff_get_403_on_staff_pages(client, member, staff_urls):
    client.force_login(member)
    for url in staff_urls:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "You don't have access to this page." in response.text, url


def test_members_who_are_not_staff_cannot_invite(client, member):
    client.force_login(member)

    response = client.post(reverse("members:invitations"), {"emails": "friend@example.com"})

    assert response.status_code == 403
    from members.models import Invitation

    assert not Invitation.objects.exists()


def test_staff_can_open_staff_pages(client, staff, staff_urls):
    client.force_login(staff)
    for url in staff_urls:
        assert client.get(url).status_code == 200, url


def test_a_member_can_open_the_dashboard(client, member):
    client.force_login(member)

    assert client.get("/").status_code == 200


def test_staff_see_the_staff_links_and_members_do_not(client, member, staff):
    invite_url = reverse("members:invitations")
    client.force_login(member)
    assert invite_url not in client.get("/").text

    client.force_login(staff)
    assert invite_url in client.get("/").text
