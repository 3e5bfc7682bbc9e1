"""Refunds through localstripe: a manager's refund, one made in Stripe's dashboard, and the
ways a refund could happen twice (double clicks, a redelivered charge.refunded, a lost answer)
— each ends with exactly one refund at Stripe, one email and a void ticket."""

import threading
import time
import uuid

import pytest
import requests
from django.db import connection
from django.test import Client
from django.urls import reverse

from notifications.models import OutboundEmail
from payments import charging, refunds, run_execution
from payments.installation import scoped_key
from payments.models import Refund, StripeEvent
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import stripe_get
from tests.test_webhooks import deliver, stripe_event
from tickets.models import Ticket

pytestmark = pytest.mark.stripe
PASSWORD = "a-Good-passw0rd"


def ticketed(approved_preorder_factory) -> PreOrder:
    """A pre-order charged by a real run through localstripe, its ticket assigned."""
    preorder = approved_preorder_factory()
    close_window(preorder.cycle_id)
    run_execution.run_charges(preorder.cycle_id, trigger="test", early=True)
    preorder = PreOrder.objects.get(pk=preorder.pk)
    assert preorder.status in (Status.PAID, Status.TICKET_SENT)
    assert Ticket.objects.filter(preorder=preorder).exists()
    return preorder


def payment_intent_of(preorder: PreOrder) -> str:
    return preorder.charge_attempts.get(status="succeeded").payment_intent_id


def refund_at_stripe(stripe_url: str, preorder: PreOrder, **params) -> None:
    """A refund made at Stripe directly: in its dashboard, or the manager's request whose answer
    was lost on the way back (then with the manager's refund_key in its metadata)."""
    requests.post(
        f"{stripe_url}/v1/refunds",
        data={"payment_intent": payment_intent_of(preorder), **params},
        auth=("sk_test_presale_tests", ""),
        timeout=10,
    ).raise_for_status()


def manager_refund_key(preorder: PreOrder) -> dict:
    return {"metadata[refund_key]": scoped_key(f"presale-{preorder.pk}-refund-1")}


def stripe_refunds(stripe_url: str, preorder: PreOrder) -> list[dict]:
    return stripe_get(stripe_url, f"refunds?payment_intent={payment_intent_of(preorder)}")["data"]


def charge_refunded_event(stripe_url: str, preorder: PreOrder) -> dict:
    """charge.refunded as Stripe sends it, built from localstripe's own charge (localstripe
    sends no such event itself)."""
    intent = stripe_get(stripe_url, f"payment_intents/{payment_intent_of(preorder)}")
    charge_id = intent["latest_charge"]
    charge_id = charge_id["id"] if isinstance(charge_id, dict) else charge_id
    charge = stripe_get(stripe_url, f"charges/{charge_id}")
    listed = stripe_get(stripe_url, f"refunds?charge={charge_id}")["data"]
    charge["refunds"] = {"object": "list", "data": listed}
    charge["amount_refunded"] = sum(item["amount"] for item in listed)
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    return stripe_event("charge.refunded", charge)


def refund_emails(preorder: PreOrder) -> int:
    return OutboundEmail.objects.filter(preorder=preorder, template="preorder_refunded").count()


def assert_refunded_once(stripe_url: str, preorder: PreOrder, code: str) -> None:
    preorder.refresh_from_db()
    assert preorder.status == Status.REFUNDED
    at_stripe = stripe_refunds(stripe_url, preorder)
    assert [item["amount"] for item in at_stripe] == [preorder.amount_pence]
    assert refund_emails(preorder) == 1
    assert Refund.objects.filter(preorder=preorder, status="succeeded").count() == 1
    ticket = Ticket.objects.get(code=code)
    assert ticket.preorder_id is None and ticket.voided_at is not None
    assert preorder.log_entries.filter(to_status=Status.REFUNDED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_manager_refunds_a_ticketed_preorder_in_full(
    stripe_server, approved_preorder_factory, staff
):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code

    refund = refunds.refund_preorder(preorder.pk, actor=staff, reason="  Event moved,  sorry ")

    assert refund.status == "succeeded" and refund.reason == "Event moved, sorry"
    assert refund.stripe_refund_id.startswith("re_")
    assert refund.idempotency_key == scoped_key(f"presale-{preorder.pk}-refund-1")
    assert_refunded_once(stripe_server, preorder, code)
    email = OutboundEmail.objects.get(preorder=preorder, template="preorder_refunded")
    assert "£22.50" in email.body_text and "Event moved, sorry" in email.body_text
    assert code in email.body_text and "will not be accepted" in email.body_text
    actions = list(preorder.log_entries.values_list("action", "actor_id"))
    assert ("refund_requested", staff.pk) in actions and ("status", staff.pk) in actions
    assert preorder.event.log_entries.filter(action="ticket_void", actor=staff).exists()
    # The pool's places do not move: the ticket left the supply as the place was given up.
    from tickets.selectors import pool_summary

    summary = pool_summary(preorder.event_id)
    assert summary.left == summary.supply - summary.holding
    assert summary.void == 1 and summary.holding == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_refund_is_refused_and_stripe_is_not_called(
    stripe_server, approved_preorder_factory, staff
):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    refunds.refund_preorder(preorder.pk, actor=staff, reason="Asked by the member")

    with pytest.raises(refunds.RefundError, match="already been refunded"):
        refunds.refund_preorder(preorder.pk, actor=staff, reason="Again")

    assert_refunded_once(stripe_server, preorder, code)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_refund_without_a_usable_reason_changes_nothing(
    stripe_server, approved_preorder_factory, staff, reason
):
    preorder = ticketed(approved_preorder_factory)

    with pytest.raises(refunds.RefundError):
        refunds.refund_preorder(preorder.pk, actor=staff, reason=reason)

    assert PreOrder.objects.get(pk=preorder.pk).status == preorder.status
    assert not Refund.objects.exists() and stripe_refunds(stripe_server, preorder) == []


@pytest.mark.django_db(transaction=True)
def test_only_a_paid_preorder_can_be_refunded(stripe_server, approved_preorder_factory, staff):
    approved = approved_preorder_factory()
    pending = approved_preorder_factory(approve=False)

    for preorder in (approved, pending):
        with pytest.raises(refunds.RefundError, match="Only a paid pre-order"):
            refunds.refund_preorder(preorder.pk, actor=staff, reason="Why not")
        assert PreOrder.objects.get(pk=preorder.pk).status == preorder.status
    assert not Refund.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_double_clicks_refund_once(stripe_server, approved_preorder_factory, staff):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    url = reverse("payments:refund", args=[preorder.pk])
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def click():
        try:
            client = Client()
            client.force_login(staff)
            barrier.wait()
            answers.append(
                client.post(url, {"reason": "Double click", "confirm": "refund"}).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert answers == [302] * 4
    assert_refunded_once(stripe_server, preorder, code)


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_charge_refunded_after_a_managers_refund_changes_nothing(
    stripe_server, approved_preorder_factory, staff, client
):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    refunds.refund_preorder(preorder.pk, actor=staff, reason="Event cancelled")
    event = charge_refunded_event(stripe_server, preorder)

    for _ in range(3):
        assert deliver(client, event).status_code == 200

    assert_refunded_once(stripe_server, preorder, code)
    stored = StripeEvent.objects.get(stripe_id=event["id"])
    assert stored.deliveries == 3 and stored.result == "already refunded"


@pytest.mark.django_db(transaction=True)
def test_a_refund_made_in_the_stripe_dashboard_is_reflected_once(
    stripe_server, approved_preorder_factory, staff, client
):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    refund_at_stripe(stripe_server, preorder)
    first = charge_refunded_event(stripe_server, preorder)
    # Stripe may send the same change as a second event, too.
    second = {**first, "id": f"evt_{uuid.uuid4().hex[:24]}"}

    for event in (first, first, second):
        assert deliver(client, event).status_code == 200

    assert_refunded_once(stripe_server, preorder, code)
    refund = Refund.objects.get(preorder=preorder)
    assert refund.source == "dashboard" and refund.requested_by is None
    assert StripeEvent.objects.get(stripe_id=first["id"]).result == "refunded"
    assert StripeEvent.objects.get(stripe_id=second["id"]).result == "already refunded"
    with pytest.raises(refunds.RefundError, match="already been refunded"):
        refunds.refund_preorder(preorder.pk, actor=staff, reason="Again")
    assert len(stripe_refunds(stripe_server, preorder)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_partial_dashboard_refund_keeps_the_ticket_and_tells_managers(
    stripe_server, approved_preorder_factory, staff, client
):
    preorder = ticketed(approved_preorder_factory)
    refund_at_stripe(stripe_server, preorder, amount=500)

    deliver(client, charge_refunded_event(stripe_server, preorder))

    assert PreOrder.objects.get(pk=preorder.pk).status == preorder.status
    assert Ticket.objects.filter(preorder=preorder, voided_at__isnull=True).exists()
    assert preorder.log_entries.filter(action="partial_refund").exists()
    alert = OutboundEmail.objects.get(template="staff_alert", to_email=staff.email)
    assert "£5 of £22.50" in alert.body_text


@pytest.mark.django_db(transaction=True)
def test_a_lost_answer_is_finished_from_stripe_without_a_second_refund(
    stripe_server, approved_preorder_factory, staff, settings
):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: no answer at all

    with pytest.raises(refunds.RefundError, match="did not answer"):
        refunds.refund_preorder(preorder.pk, actor=staff, reason="Lost answer")
    settings.STRIPE_API_BASE = stripe_server
    with pytest.raises(refunds.RefundError, match="already under way"):
        refunds.refund_preorder(preorder.pk, actor=staff, reason="Impatient")
    assert Refund.objects.get().status == "requested"
    assert PreOrder.objects.get(pk=preorder.pk).status == preorder.status

    # Stripe did make the refund after all (the answer was lost on the way back).
    refund_at_stripe(stripe_server, preorder, **manager_refund_key(preorder))
    settings.CHARGE_STALE_AFTER_SECONDS = 0
    time.sleep(0.01)

    assert charging.reconcile()["refunds_finished"] == 1

    assert_refunded_once(stripe_server, preorder, code)


@pytest.mark.django_db(transaction=True)
def test_a_request_stripe_never_got_is_sent_again_by_reconciliation(
    stripe_server, approved_preorder_factory, staff, settings
):
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    with pytest.raises(refunds.RefundError):
        refunds.refund_preorder(preorder.pk, actor=staff, reason="Lost request")
    settings.STRIPE_API_BASE = stripe_server
    settings.CHARGE_STALE_AFTER_SECONDS = 0
    time.sleep(0.01)

    assert refunds.finish_stale_refunds() == 1
    assert refunds.finish_stale_refunds() == 0

    assert_refunded_once(stripe_server, preorder, code)


@pytest.mark.django_db(transaction=True)
def test_clicks_and_redelivered_charge_refunded_racing_a_lost_answer_refund_once(
    stripe_server, approved_preorder_factory, staff, settings
):
    """The worst case of "whatever is clicked or redelivered": the manager's refund reached
    Stripe but its answer was lost, and then, all at once, the manager clicks Refund again in
    three tabs while Stripe delivers charge.refunded three times (one event, redelivered) and
    once more as a second event. Then reconciliation runs. One refund at Stripe, one email, and
    the refund stays the manager's (not taken for a dashboard refund)."""
    preorder = ticketed(approved_preorder_factory)
    code = preorder.ticket.code
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: the answer is lost
    with pytest.raises(refunds.RefundError, match="did not answer"):
        refunds.refund_preorder(preorder.pk, actor=staff, reason="Away that night")
    settings.STRIPE_API_BASE = stripe_server
    refund_at_stripe(stripe_server, preorder, **manager_refund_key(preorder))  # Stripe made it
    event = charge_refunded_event(stripe_server, preorder)
    again = {**event, "id": f"evt_{uuid.uuid4().hex[:24]}"}
    url = reverse("payments:refund", args=[preorder.pk])
    barrier = threading.Barrier(7)
    answers: list[tuple[str, int]] = []

    def click():
        client = Client()
        client.force_login(staff)
        barrier.wait()
        answers.append(
            ("click", client.post(url, {"reason": "Again", "confirm": "refund"}).status_code)
        )

    def webhook(payload):
        client = Client()
        barrier.wait()
        answers.append(("webhook", deliver(client, payload).status_code))

    def in_thread(work, *args):
        def run():
            try:
                work(*args)
            finally:
                connection.close()

        return threading.Thread(target=run)

    threads = [in_thread(click) for _ in range(3)]
    threads += [in_thread(webhook, event) for _ in range(3)] + [in_thread(webhook, again)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    settings.CHARGE_STALE_AFTER_SECONDS = 0
    time.sleep(0.01)
    refunds.finish_stale_refunds()

    assert sorted(answers) == [("click", 302)] * 3 + [("webhook", 200)] * 4
    assert_refunded_once(stripe_server, preorder, code)
    refund = Refund.objects.get(preorder=preorder)
    assert (refund.source, refund.requested_by) == ("staff", staff)
    assert refund.reason == "Away that night"
    assert len(stripe_refunds(stripe_server, preorder)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_cannot_refund_a_manager_can(
    stripe_server, approved_preorder_factory, staff, reviewer
):
    preorder = ticketed(approved_preorder_factory)
    url = reverse("payments:refund", args=[preorder.pk])
    data = {"reason": "Member asked", "confirm": "refund"}
    as_reviewer, as_manager = Client(), Client()
    as_reviewer.force_login(reviewer)
    as_manager.force_login(staff)

    assert as_reviewer.post(url, data).status_code == 403
    assert not Refund.objects.exists()
    page = as_reviewer.get(reverse("staff:preorder", args=[preorder.pk]))
    assert b"Refund this payment" not in page.content

    page = as_manager.get(reverse("staff:preorder", args=[preorder.pk]))
    assert b"Refund this payment" in page.content
    answer = as_manager.post(url, data, follow=True)
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.REFUNDED
    assert "Refunded £22.50 to" in answer.content.decode()
    assert b'data-testid="refund-record"' in answer.content
    assert b"Refund this payment" not in answer.content


@pytest.mark.django_db(transaction=True)
def test_the_form_needs_the_confirmation_ticked(stripe_server, approved_preorder_factory, staff):
    preorder = ticketed(approved_preorder_factory)
    client = Client()
    client.force_login(staff)

    answer = client.post(
        reverse("payments:refund", args=[preorder.pk]), {"reason": "No tick"}, follow=True
    )

    assert "Tick the confirmation" in answer.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_ticket_email_not_yet_delivered_never_goes_out_after_the_refund(
    stripe_server, approved_preorder_factory, staff
):
    from tickets.delivery import failed_ticket_email_count, resend_failed_ticket_emails

    preorder = ticketed(approved_preorder_factory)
    OutboundEmail.objects.filter(preorder=preorder, template="ticket").update(
        status=OutboundEmail.Status.FAILED
    )
    assert failed_ticket_email_count(preorder.event_id) == 1

    refunds.refund_preorder(preorder.pk, actor=staff, reason="Email bounced, member asked")

    ticket_email = OutboundEmail.objects.get(preorder=preorder, template="ticket")
    assert ticket_email.status == OutboundEmail.Status.SUPERSEDED
    assert failed_ticket_email_count(preorder.event_id) == 0
    assert resend_failed_ticket_emails(preorder.event_id, actor=staff) == 0


@pytest.mark.django_db
def test_a_signed_event_with_objects_nested_in_lists_of_lists_is_stored_plainly(client):
    # Found by the webhook fuzz test: the SDK's to_dict() left these as StripeObjects.
    event = stripe_event("charge.refunded", {"id": "ch_nested", "x": [[{"y": [[{}]]}]]})

    assert deliver(client, event).status_code == 200

    stored = StripeEvent.objects.get(stripe_id=event["id"])
    assert stored.payload["data"]["object"]["x"] == [[{"y": [[{}]]}]]
