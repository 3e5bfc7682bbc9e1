"""A staff void racing the settlement of a payment for the same (last) ticket: the void must be
refused and the member keep the ticket. Meaningful on PostgreSQL (row locks, SKIP LOCKED)."""

import threading
import time

import pytest
from django.db import connection

from payments import charging, gateway
from payments.models import ChargeAttempt
from payments.settlement import settle
from tests.conftest import close_window
from tests.stripe_helpers import SUCCEEDS
from tickets import services as ticket_services
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def test_refused_void_racing_a_settlement(stripe_server, make_member, make_event, monkeypatch):
    from preorders.decisions import approve
    from preorders.services import place_preorder
    from tests.stripe_helpers import new_confirmed_setup_intent

    event = make_event()
    ticket = Ticket.objects.create(event=event, code="ONLY-ONE")
    member = make_member()
    preorder = place_preorder(
        member, event.pk, new_confirmed_setup_intent(stripe_server, member, SUCCEEDS)
    )
    close_window(event.cycle_id)
    approve(event.pk, [preorder.pk], actor=None)
    run = charging.start_run(event.cycle_id, trigger="test", early=True)
    (attempt_id,) = charging.claim_batch(run, 5)
    attempt = ChargeAttempt.objects.select_related("preorder").get(pk=attempt_id)
    outcome = gateway.charge_off_session(
        amount_pence=attempt.amount_pence,
        customer_id=attempt.preorder.stripe_customer_id,
        payment_method_id=attempt.preorder.payment_method_id,
        idempotency_key=attempt.idempotency_key,
        metadata={"preorder_id": str(preorder.pk), "charge_key": attempt.idempotency_key},
    )
    assert outcome.status == "succeeded"

    original = ticket_services.pool_summary

    def slow_summary(event_id):
        time.sleep(2)  # staff's void request is slow to decide, holding the ticket's row lock
        return original(event_id)

    monkeypatch.setattr(ticket_services, "pool_summary", slow_summary)
    results = {}

    def void():
        try:
            ticket_services.void_ticket(ticket.pk, actor=None)
            results["void"] = "voided"
        except ticket_services.PoolError as error:
            results["void"] = f"refused: {error.message}"
        finally:
            connection.close()

    def pay():
        time.sleep(0.5)
        try:
            settle(attempt_id, outcome, source="stripe")
        finally:
            connection.close()

    threads = [threading.Thread(target=void), threading.Thread(target=pay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    preorder.refresh_from_db()
    assert results["void"].startswith("refused")
    assert preorder.status in ("paid", "ticket_sent"), preorder.status
    assert Ticket.objects.get(pk=ticket.pk).preorder_id == preorder.pk
