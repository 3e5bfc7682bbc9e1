"""UK GDPR: the member downloads everything the club holds about them, and can leave the club:
pending pre-orders cancelled, the Stripe Customer deleted, personal data erased or
pseudonymised, the records the club must keep kept."""

import datetime as dt
import json

import pytest
import requests
from django.test import Client
from django.urls import reverse

from members.leaving import ERASED_BODY, leave_club, pseudonym_email
from members.models import Invitation, Member
from notifications.models import OutboundEmail, OutboundEmailAttachment, OutboxMessage
from payments import gateway
from payments.models import ChargeAttempt, StripeEvent
from payments.settlement import settle
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import place_preorder
from preorders.states import Status
from tests.conftest import _add_tickets
from tests.stripe_helpers import save_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]

PASSWORD = "a-Good-passw0rd"


def _client(member) -> Client:
    client = Client()
    assert client.login(username=member.email, password=PASSWORD)
    return client


def _past_paid(member, make_event, open_cycle, *, code: str = "") -> PreOrder:
    """A pre-order of three weeks ago, charged and ticketed (or failed with `code`)."""
    from events.selectors import cycle_for_week

    cycle = cycle_for_week(open_cycle.week_start - dt.timedelta(weeks=3))
    event = make_event(cycle=cycle, title="Old gig")
    _add_tickets(event, 1)
    preorder = PreOrder.objects.create(
        member=member,
        event=event,
        cycle=cycle,
        status=Status.CHARGING,
        amount_pence=2250,
        stripe_customer_id=member.stripe_customer_id or "cus_gone",
        payment_method_id="pm_old",
        card_brand="visa",
        card_last4="4242",
    )
    attempt = ChargeAttempt.objects.create(
        preorder=preorder, idempotency_key=f"past-{preorder.pk}", amount_pence=2250
    )
    outcome = (
        gateway.ChargeOutcome("failed", f"pi_f{preorder.pk}", code, "Raw Stripe words.")
        if code
        else gateway.ChargeOutcome("succeeded", f"pi_s{preorder.pk}")
    )
    settle(attempt.pk, outcome, source="stripe")
    return PreOrder.objects.get(pk=preorder.pk)


def test_the_data_download_holds_everything_about_the_member_and_nothing_else(
    stripe_server, member, make_member, make_event, open_cycle, staff
):
    card = save_card(stripe_server, member)
    paid = _past_paid(member, make_event, open_cycle)
    failed_member = make_member()
    _past_paid(failed_member, make_event, open_cycle, code="insufficient_funds")
    pending = place_preorder(member, make_event(title="This week").pk, payment_method_id=card)

    response = _client(member).get(reverse("members:data_export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="harrys-club-my-data-')
    data = json.loads(response.content)
    assert data["profile"]["email"] == "alice@example.com"
    assert data["profile"]["name"] == "Alice Archer"
    assert data["saved_cards"] == [
        {"brand": "visa", "last4": "4242", "expires": "12/34", "default": False}
    ]
    by_id = {p["id"]: p for p in data["preorders"]}
    assert set(by_id) == {paid.pk, pending.pk}
    assert by_id[paid.pk]["ticket"]["code"] == paid.ticket.code
    assert by_id[paid.pk]["payments"][0]["status"] == "succeeded"
    assert [e["to"] for e in by_id[pending.pk]["history"]] == ["pending"]
    assert {e["kind"] for e in data["emails"]} >= {"ticket", "preorder_placed"}
    assert all(e["to"] == "alice@example.com" for e in data["emails"])
    assert failed_member.email not in response.content.decode()
    assert data["profile"]["invited_as"] is None  # this member was made, not invited
    assert data["account_history"] == [] and by_id[paid.pk]["refunds"] == []
    assert by_id[paid.pk]["ticket"]["checked_in_at"] is None

    # A refund, a check-in at the door and a manager's action are the member's data too.
    from members.models import MemberLogEntry
    from payments.models import Refund
    from tickets.models import CheckIn

    CheckIn.objects.create(ticket=paid.ticket, checked_in_by=staff)
    Refund.objects.create(
        preorder=paid, idempotency_key="k-1", payment_intent_id="pi_x", amount_pence=2250,
        reason="Show cancelled", source=Refund.Source.STAFF, requested_by=staff,
    )  # fmt: skip
    MemberLogEntry.objects.create(member=member, actor=staff, action="reactivated")
    again = json.loads(_client(member).get(reverse("members:data_export")).content)
    again_by_id = {p["id"]: p for p in again["preorders"]}
    (refund,) = again_by_id[paid.pk]["refunds"]
    assert (refund["amount_pence"], refund["reason"]) == (2250, "Show cancelled")
    assert refund["status"] == "Sent to Stripe"
    assert again_by_id[paid.pk]["ticket"]["checked_in_at"] is not None
    assert [entry["what"] for entry in again["account_history"]] == ["Reactivated"]

    failed = _client(failed_member).get(reverse("members:data_export")).content.decode()
    assert "insufficient_funds" not in failed and "Raw Stripe words" not in failed
    assert "Your card did not have enough funds" in failed
    assert Client().get(reverse("members:data_export")).status_code == 302


def test_leaving_cancels_deletes_erases_and_keeps_what_the_club_must(
    stripe_server, member, make_event, open_cycle, staff
):
    card = save_card(stripe_server, member)
    customer_id = member.stripe_customer_id
    paid = _past_paid(member, make_event, open_cycle)
    pending = place_preorder(member, make_event(title="This week").pk, payment_method_id=card)
    PreOrderLogEntry.objects.create(
        preorder=paid, source="system", action="ticket", note="Ticket emailed to alice@example.com"
    )
    Invitation.objects.create(
        email="alice@example.com",
        token_hash="x" * 64,
        invited_by=staff,
        created_at=member.date_joined - dt.timedelta(days=1),
        expires_at=member.date_joined + dt.timedelta(days=1),
        accepted_at=member.date_joined,
        accepted_by=member,
    )
    client = _client(member)
    page = client.get(reverse("members:leave")).content.decode()
    assert "your saved cards are deleted at Stripe" in page

    wrong = client.post(reverse("members:leave"), {"password": "nope"})
    assert wrong.status_code == 400
    assert Member.objects.get(pk=member.pk).left_at is None

    response = client.post(reverse("members:leave"), {"password": PASSWORD})
    assert response.status_code == 200
    assert "You have left Harry's Club" in response.content.decode()

    gone = Member.objects.get(pk=member.pk)
    alias = pseudonym_email(member.pk)
    assert (gone.email, gone.full_name, gone.is_active) == (
        alias,
        f"Former member {member.pk}",
        False,
    )
    assert not gone.has_usable_password() and gone.stripe_customer_id is None
    assert gone.last_login is None
    assert gone.left_at is not None
    assert PreOrder.objects.get(pk=pending.pk).status == Status.CANCELLED
    assert not OutboundEmail.objects.filter(preorder=pending, template="preorder_cancelled")
    # The Customer and its cards are gone at Stripe.
    answer = requests.get(
        f"{stripe_server}/v1/customers/{customer_id}",
        auth=("sk_test_presale_tests", ""),
        timeout=10,
    )
    assert answer.status_code == 404
    # Kept: the payment, its ticket, the pre-order's history, with no name or address in them.
    kept = PreOrder.objects.get(pk=paid.pk)
    assert kept.status == Status.TICKET_SENT and kept.ticket.code
    assert ChargeAttempt.objects.get(preorder=kept).status == "succeeded"
    assert kept.log_entries.get(action="ticket").note == f"Ticket emailed to {alias}"
    assert Invitation.objects.get(accepted_by=gone).email == alias
    emails = OutboundEmail.objects.filter(member=gone)
    assert emails.exists()
    assert set(emails.values_list("to_email", "body_text", "body_html").distinct()) == {
        (alias, ERASED_BODY, "")
    }
    assert not OutboundEmailAttachment.objects.filter(email__member=gone).exists()
    # Signed out, and cannot sign in again.
    assert client.get(reverse("preorders:dashboard")).status_code == 302
    assert not Client().login(username="alice@example.com", password=PASSWORD)
    assert not Client().login(username=alias, password=PASSWORD)


@pytest.mark.parametrize(
    "status", [Status.APPROVED, Status.CHARGING, Status.AWAITING_AUTHENTICATION, Status.PAID]
)
def test_leaving_is_refused_while_a_preorder_is_approved_or_charging(
    stripe_server, member, make_event, status
):
    card = save_card(stripe_server, member)
    preorder = place_preorder(member, make_event().pk, payment_method_id=card)
    PreOrder.objects.filter(pk=preorder.pk).update(status=status)
    client = _client(member)
    page = client.get(reverse("members:leave")).content.decode()
    assert "Jazz in the Cellar" in page and 'name="password"' not in page
    response = client.post(reverse("members:leave"), {"password": PASSWORD})
    assert response.status_code == 400
    member.refresh_from_db()
    assert (member.email, member.left_at, member.is_active) == ("alice@example.com", None, True)
    assert PreOrder.objects.get(pk=preorder.pk).status == status


def test_leaving_changes_nothing_when_stripe_cannot_delete_the_customer(
    stripe_server, member, make_event, settings
):
    card = save_card(stripe_server, member)
    preorder = place_preorder(member, make_event().pk, payment_method_id=card)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    response = _client(member).post(reverse("members:leave"), {"password": PASSWORD})
    assert response.status_code == 400
    assert "nothing has changed" in response.content.decode()
    member.refresh_from_db()
    assert (member.email, member.left_at) == ("alice@example.com", None)
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.PENDING


def test_leaving_takes_a_waitlisted_preorder_out_of_the_line(stripe_server, member, make_event):
    card = save_card(stripe_server, member)
    preorder = place_preorder(member, make_event().pk, payment_method_id=card)
    PreOrder.objects.filter(pk=preorder.pk).update(status=Status.WAITLISTED, waitlist_position=1)
    leave_club(member)
    left = PreOrder.objects.get(pk=preorder.pk)
    # Not promoted to a freed place later, charged to a deleted Customer and emailed nowhere.
    assert left.status == Status.NOT_ALLOCATED
    assert left.log_entries.filter(note="Member left the club").exists()


def test_leaving_erases_every_address_the_member_had_and_the_cardholder_at_stripe(
    member, make_event, staff
):
    old, alias = "alice.old@example.com", pseudonym_email(member.pk)
    event = make_event()
    preorder = PreOrder.objects.create(
        member=member, event=event, cycle=event.cycle, status=Status.FAILED,
        amount_pence=2250, stripe_customer_id="cus_x", payment_method_id="pm_x",
    )  # fmt: skip
    # Sent before an email change, to the address the member had then.
    OutboundEmail.objects.create(
        to_email=old, template="preorder_placed", subject="Placed", body_text="Hi Alice",
        member=member,
    )  # fmt: skip
    OutboxMessage.objects.create(to=old, subject="Placed", body_text="Hi Alice")
    OutboxMessage.objects.create(to="Alice@Example.com", subject="Placed", body_text="Hi Alice")
    # Someone else's address that merely contains the member's: untouched.
    OutboxMessage.objects.create(to="malice@example.com", subject="Theirs", body_text="Hi Mal")
    PreOrderLogEntry.objects.create(
        preorder=preorder, source="staff", action="ticket_resent", note=f"Resent to {old}"
    )
    now = member.date_joined
    Invitation.objects.create(
        email=old, token_hash="a" * 64, invited_by=staff, created_at=now,
        expires_at=now + dt.timedelta(days=1), revoked_at=now,
    )  # fmt: skip
    reinvite = Invitation.objects.create(
        email="alice@example.com", token_hash="b" * 64, invited_by=staff, created_at=now,
        expires_at=now + dt.timedelta(days=400),
    )  # fmt: skip
    refunded = StripeEvent.objects.create(
        stripe_id="evt_refund", type="charge.refunded", preorder=preorder,
        payload={"data": {"object": {"id": "ch_1", "amount": 2250, "billing_details": {
            "name": "Alice Archer", "email": "alice@example.com"}, "receipt_email": old}}},
    )  # fmt: skip

    leave_club(member)

    assert not OutboundEmail.objects.exclude(to_email=alias).filter(member=member).exists()
    assert set(OutboxMessage.objects.values_list("to", flat=True)) == {"malice@example.com"}
    assert preorder.log_entries.get(action="ticket_resent").note == f"Resent to {alias}"
    assert set(Invitation.objects.values_list("email", flat=True)) == {alias}
    reinvite.refresh_from_db()
    assert reinvite.revoked_at is not None
    refunded.refresh_from_db()
    charge = refunded.payload["data"]["object"]
    assert (charge["billing_details"], charge["receipt_email"]) == (None, None)
    assert (charge["id"], charge["amount"]) == ("ch_1", 2250)
