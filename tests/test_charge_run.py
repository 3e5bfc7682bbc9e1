"""The Tuesday charge run against a real localstripe: success, off-session decline, 3-D Secure,
resumption after a crash, and the run report."""

import pytest
from django.core import mail

from payments import charging
from payments.models import ChargeAttempt
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS, stripe_get
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def test_a_good_card_is_charged_once_gets_a_ticket_and_an_email(
    stripe_server, approved_preorder_factory
):
    preorder = approved_preorder_factory(SUCCEEDS)
    mail.outbox.clear()
    close_window(preorder.cycle_id)
    charging.run_charges(preorder.cycle_id, trigger="test", early=True)

    preorder = PreOrder.objects.get(pk=preorder.pk)
    assert preorder.status == Status.TICKET_SENT
    ticket = Ticket.objects.get(preorder=preorder)
    attempt = ChargeAttempt.objects.get(preorder=preorder)
    assert attempt.status == "succeeded"
    intent = stripe_get(stripe_server, f"payment_intents/{attempt.payment_intent_id}")
    assert (intent["amount"], intent["currency"], intent["status"]) == (2250, "gbp", "succeeded")
    assert intent["customer"] == preorder.stripe_customer_id
    assert intent["payment_method"] == preorder.payment_method_id
    assert intent["metadata"]["preorder_id"] == str(preorder.pk)
    ticket_mail = [m for m in mail.outbox if "Your ticket" in m.subject]
    assert len(ticket_mail) == 1
    assert ticket.code in ticket_mail[0].body
    names = [part.get_filename() for part in ticket_mail[0].attachments]
    assert names == ["ticket-qr.png", "event.ics"]


def test_an_off_session_decline_fails_the_preorder_and_says_so(approved_preorder_factory):
    preorder = approved_preorder_factory(DECLINED_OFF_SESSION)
    mail.outbox.clear()
    close_window(preorder.cycle_id)
    charging.run_charges(preorder.cycle_id, trigger="test", early=True)
    preorder = PreOrder.objects.get(pk=preorder.pk)
    assert preorder.status == Status.FAILED
    assert "card_declined" in preorder.failure_reason
    assert not Ticket.objects.filter(preorder=preorder).exists()
    assert [m.subject for m in mail.outbox] == [
        f"Card declined – try public drop: {preorder.event.title}"
    ]


def test_the_run_report_adds_up(approved_preorder_factory):
    good = [approved_preorder_factory(SUCCEEDS) for _ in range(3)]
    bad = approved_preorder_factory(DECLINED_OFF_SESSION)
    close_window(bad.cycle_id)
    charging.run_charges(bad.cycle_id, trigger="test", early=True)
    report = charging.report(bad.cycle_id)
    assert (report.charged, report.paid, report.failed, report.in_flight) == (4, 3, 1, 0)
    assert report.total_taken_pence == 3 * 2250
    assert report.failures_by_reason == {"card_declined": 1}
    assert report.started_at and report.finished_at
    assert all(PreOrder.objects.get(pk=p.pk).status == Status.TICKET_SENT for p in good)
