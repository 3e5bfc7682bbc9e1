"""Managers' pages for members, staff roles and invitations."""

import datetime as dt
import re
import threading
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services, staff_services
from members.models import Invitation, Member, MemberLogEntry
from members.roles import Role, role_of
from notifications.models import OutboundEmail
from preorders.models import PreOrder
from preorders.services import PreorderError, place_preorder
from preorders.states import Status
from tests.factories import stored_preorder
from tests.stripe_helpers import new_confirmed_setup_intent

PASSWORD = "a-Good-passw0rd"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, name: str, pk: int, data: dict | None = None) -> str:
    return client.post(reverse(name, args=[pk]), data or {}, follow=True).content.decode()


def fake_preorder(member, event, status: str) -> PreOrder:
    return stored_preorder(member, event, status)


# --- The members page ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_members_page_searches_by_name_or_email_and_filters_by_status(
    staff, make_member, make_event
):
    ada = make_member(email="ada@example.com", full_name="Ada Lovelace")
    make_member(email="bob@example.com", full_name="Bob Builder")
    gone = make_member(email="gone@example.com", full_name="Gone Away", is_active=False)
    fake_preorder(ada, make_event(), Status.PENDING)
    client = signed_in(staff)
    url = reverse("members:staff_members")

    by_name = client.get(url, {"q": "lovelace"}).content.decode()
    by_email = client.get(url, {"q": "BOB@"}).content.decode()
    deactivated = client.get(url, {"status": "deactivated"}).content.decode()
    staff_only = client.get(url, {"status": "staff"}).content.decode()

    assert "Ada Lovelace" in by_name and "Bob Builder" not in by_name
    assert re.search(r"Ada Lovelace.*?<td class=\"num\">1</td>", by_name, re.S)
    assert "Bob Builder" in by_email and "Ada Lovelace" not in by_email
    assert gone.full_name in deactivated and "Ada Lovelace" not in deactivated
    assert "Harriet Staff" in staff_only and "Ada Lovelace" not in staff_only
    assert "1 member" in by_name


@pytest.mark.django_db
def test_a_members_page_shows_their_preorders_and_role(staff, member, make_event):
    preorder = fake_preorder(member, make_event(), Status.APPROVED)

    html = signed_in(staff).get(reverse("members:staff_member", args=[member.pk])).content.decode()

    assert reverse("staff:preorder", args=[preorder.pk]) in html
    assert "Jazz in the Cellar" in html and '<dd data-testid="member-role">None</dd>' in html


# --- Deactivating ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deactivating_cancels_only_a_pending_preorder_and_emails_the_member(
    staff, make_member, make_event, django_capture_on_commit_callbacks
):
    event = make_event()
    pending_member, approved_member = make_member(), make_member()
    pending = fake_preorder(pending_member, event, Status.PENDING)
    approved = fake_preorder(approved_member, event, Status.APPROVED)
    client = signed_in(staff)

    with django_capture_on_commit_callbacks(execute=True):
        first = post(
            client, "members:member_deactivate", pending_member.pk, {"confirm": "deactivate"}
        )
        post(client, "members:member_deactivate", approved_member.pk, {"confirm": "deactivate"})

    assert "a pending one cancelled" in first
    assert PreOrder.objects.get(pk=pending.pk).status == Status.CANCELLED
    assert PreOrder.objects.get(pk=approved.pk).status == Status.APPROVED
    email = OutboundEmail.objects.get(template="preorder_cancelled_by_club")
    assert email.to_email == pending_member.email and "will not be charged" in email.body_text
    assert not Member.objects.filter(pk__in=[pending_member.pk, approved_member.pk], is_active=True)
    entry = pending.log_entries.get(to_status=Status.CANCELLED)
    assert entry.actor == staff and entry.source == "staff"
    assert MemberLogEntry.objects.filter(member=pending_member, action="deactivated").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.CHARGING, Status.PAID, Status.TICKET_SENT])
def test_deactivating_leaves_a_charging_or_paid_preorder_alone(
    staff, make_member, make_event, django_capture_on_commit_callbacks, status
):
    """Issue 8 §2: "approved/charging/paid ones are untouched" (approved is tested above)."""
    member = make_member()
    preorder = fake_preorder(member, make_event(), status)

    with django_capture_on_commit_callbacks(execute=True):
        post(signed_in(staff), "members:member_deactivate", member.pk, {"confirm": "deactivate"})

    assert not Member.objects.get(pk=member.pk).is_active
    assert PreOrder.objects.get(pk=preorder.pk).status == status
    assert not preorder.log_entries.filter(to_status=Status.CANCELLED).exists()
    assert not OutboundEmail.objects.filter(template="preorder_cancelled_by_club").exists()


@pytest.mark.django_db
def test_a_deactivated_member_cannot_sign_in_and_their_session_ends(staff, member):
    session = signed_in(member)
    assert session.get(reverse("preorders:dashboard")).status_code == 200

    staff_services.deactivate(member.pk, actor=staff)

    answer = session.get(reverse("preorders:dashboard"))
    assert answer.status_code == 302 and urlsplit(answer["Location"]).path == "/login/"
    assert not Client().login(username=member.email, password=PASSWORD)
    staff_services.reactivate(member.pk, actor=staff)
    assert Client().login(username=member.email, password=PASSWORD)


@pytest.mark.django_db
@pytest.mark.stripe
def test_a_deactivated_member_cannot_pre_order(stripe_server, staff, member, make_event):
    event = make_event()
    setup_intent = new_confirmed_setup_intent(stripe_server, member)
    staff_services.deactivate(member.pk, actor=staff)

    with pytest.raises(PreorderError, match="not active"):
        place_preorder(member, event.pk, setup_intent)
    assert not PreOrder.objects.exists()


@pytest.mark.django_db
def test_deactivation_needs_the_tick_and_never_applies_to_yourself(staff, member):
    client = signed_in(staff)

    assert "Tick the confirmation" in post(client, "members:member_deactivate", member.pk)
    assert "your own account" in post(
        client, "members:member_deactivate", staff.pk, {"confirm": "deactivate"}
    )
    assert Member.objects.filter(is_active=False).count() == 0


# --- Roles ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manager_gives_and_removes_a_staff_role(staff, member):
    client = signed_in(staff)
    events = reverse("staff:events")

    html = post(client, "members:member_role", member.pk, {"role": "Reviewer"})
    assert "now has the Reviewer role" in html
    assert signed_in(Member.objects.get(pk=member.pk)).get(events).status_code == 200

    post(client, "members:member_role", member.pk, {"role": ""})
    assert role_of(Member.objects.get(pk=member.pk)) is None
    assert signed_in(Member.objects.get(pk=member.pk)).get(events).status_code == 403
    assert list(MemberLogEntry.objects.filter(member=member).values_list("detail", flat=True)) == [
        "Reviewer → no staff role",
        "no staff role → Reviewer",
    ]
    page = client.get(reverse("members:staff_member", args=[member.pk])).content.decode()
    history = page.split('data-testid="account-log"', 1)[1].split("</ul>", 1)[0]
    assert "Reviewer → no staff role" in history and f"by {staff.full_name}" in history


@pytest.mark.django_db
def test_the_last_manager_cannot_remove_their_own_manager_role(staff, make_staff):
    client = signed_in(staff)

    html = post(client, "members:member_role", staff.pk, {"role": "Reviewer"})

    assert "You are the last manager" in html
    assert role_of(Member.objects.get(pk=staff.pk)) == Role.MANAGER
    make_staff("Manager", email="other@example.com")
    post(client, "members:member_role", staff.pk, {"role": "Reviewer"})
    assert role_of(Member.objects.get(pk=staff.pk)) == Role.REVIEWER


@pytest.mark.django_db
def test_a_role_that_does_not_exist_changes_nothing(staff, member):
    html = post(signed_in(staff), "members:member_role", member.pk, {"role": "Emperor"})

    assert "Choose a role from the list." in html
    assert role_of(Member.objects.get(pk=member.pk)) is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["members:member_role", "members:member_deactivate"])
def test_a_reviewer_cannot_change_accounts(reviewer, member, name):
    answer = signed_in(reviewer).post(
        reverse(name, args=[member.pk]), {"role": "Manager", "confirm": "deactivate"}
    )

    assert answer.status_code == 403
    member.refresh_from_db()
    assert member.is_active and role_of(member) is None


@pytest.mark.django_db(transaction=True)
def test_two_managers_demoting_each_other_at_once_leave_one_manager(make_staff):
    first = make_staff("Manager", email="first@example.com")
    second = make_staff("Manager", email="second@example.com")
    barrier = threading.Barrier(2)
    refused: list[str] = []

    def demote(actor, target):
        try:
            barrier.wait()
            staff_services.change_role(target.pk, "Reviewer", actor=actor)
        except staff_services.AccountError as error:
            refused.append(error.message)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    roles = sorted(str(role_of(m)) for m in Member.objects.filter(pk__in=[first.pk, second.pk]))
    assert roles == ["Manager", "Reviewer"]
    assert len(refused) == 1 and "last manager" in refused[0]


# --- Invitations ----------------------------------------------------------------------------------


@pytest.fixture
def invite(staff, django_capture_on_commit_callbacks):
    def run(email: str) -> Invitation:
        with django_capture_on_commit_callbacks(execute=True):
            services.invite_members([email], invited_by=staff)
        return Invitation.objects.filter(email=email).order_by("-pk").first()

    return run


def token_in(message) -> str:
    """The link's token, from the email as delivered (the stored copy is blanked once sent)."""
    return re.search(r"/invite/([^/]+)/", message.body).group(1)


@pytest.mark.django_db
def test_every_invitation_is_listed_with_its_state(staff, invite, make_member):
    sent = invite("sent@example.com")
    used = invite("used@example.com")
    used.accepted_at, used.accepted_by = timezone.now(), make_member(email="used@example.com")
    used.save()
    expired = invite("expired@example.com")
    Invitation.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - dt.timedelta(days=20),
        expires_at=timezone.now() - dt.timedelta(days=6),
    )
    revoked = invite("revoked@example.com")
    Invitation.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    client = signed_in(staff)
    url = reverse("members:invitations")

    html = client.get(url).content.decode()
    states = re.findall(r'<td data-testid="invitation-state">(\w+)', html)
    only_expired = client.get(url, {"state": "expired"}).content.decode()

    assert sorted(states) == ["Expired", "Revoked", "Sent", "Used"]
    assert "expired@example.com" in only_expired and sent.email not in only_expired


@pytest.mark.django_db
def test_revoking_an_invitation_kills_its_link(staff, invite, mailoutbox):
    invitation = invite("jane@example.com")
    token = token_in(mailoutbox[-1])

    html = post(signed_in(staff), "members:invitation_revoke", invitation.pk)

    assert "Revoked the invitation for jane@example.com" in html
    with pytest.raises(services.InvitationError) as refused:
        services.usable_invitation(token)
    assert refused.value.reason == "revoked"


@pytest.mark.django_db
def test_resending_issues_a_new_link_and_revokes_the_old(
    staff, invite, django_capture_on_commit_callbacks, mailoutbox
):
    old = invite("jane@example.com")
    old_token = token_in(mailoutbox[-1])

    with django_capture_on_commit_callbacks(execute=True):
        html = post(signed_in(staff), "members:invitation_resend", old.pk)

    assert "Sent a new link to jane@example.com" in html
    assert OutboundEmail.objects.filter(template="invitation").count() == 2
    assert [message.to for message in mailoutbox] == [["jane@example.com"]] * 2
    new_token = token_in(mailoutbox[-1])
    assert new_token != old_token
    assert services.usable_invitation(new_token).email == "jane@example.com"
    with pytest.raises(services.InvitationError):
        services.usable_invitation(old_token)


@pytest.mark.django_db
def test_a_used_invitation_cannot_be_revoked_or_resent(staff, invite, make_member):
    used = invite("used@example.com")
    used.accepted_at, used.accepted_by = timezone.now(), make_member(email="used@example.com")
    used.save()
    client = signed_in(staff)

    assert "already joined" in post(client, "members:invitation_resend", used.pk)
    assert "already been used" in post(client, "members:invitation_revoke", used.pk)
    assert Invitation.objects.count() == 1 and Invitation.objects.get().revoked_at is None
