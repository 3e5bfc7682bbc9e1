"""The bank asks three members to authenticate (through plain localstripe, and through the
Stripe stand-in answering as real Stripe does): one completes it in the browser and gets the
ticket, one fails it and then retries successfully, one lets the deadline pass and the
PaymentIntent is found cancelled at Stripe."""

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone

from events.models import PresaleCycle
from payments import authentication, run_execution
from payments.models import ChargeAttempt
from preorders.decisions import approve
from preorders.models import PreOrder
from preorders.states import Status
from tests.axe import axe_violations
from tests.browser import fill_card, log_in
from tests.conftest import _add_tickets, close_window, screenshot
from tests.payments.sca import STRIPE_ANSWERS, intent, place_approved, stripe_answering
from tests.stripe_helpers import NEEDS_3DS, payment_intents_by_preorder

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-Good-passw0rd"


def _confirm(page, base_url: str, member, choice: str, shot: str | None = None) -> None:
    log_in(page, base_url, member.email, PASSWORD)
    notice = page.get_by_test_id("status-message")
    assert "Your bank wants you to confirm this payment. Confirm by 12PM" in notice.inner_text()
    if shot:
        screenshot(page, f"{shot}-dashboard")
    notice.get_by_role("link", name="Confirm with my bank").click()
    page.wait_for_url(re.compile(r"/confirm-payment/$"))
    if shot:
        screenshot(page, f"{shot}-confirm-page")
        assert axe_violations(page) == []
    page.get_by_role("button", name="Confirm with my bank").click()
    page.get_by_role("button", name=choice).click()


@pytest.mark.parametrize("answer", STRIPE_ANSWERS)
def test_members_confirm_retry_or_let_the_deadline_pass(
    answer, live_server, stripe_server, settings, browser, make_member, make_event
):
    event = make_event(public_price_pence=2500, discount_percent=10)
    _add_tickets(event, 5)
    ada, bea, cy = make_member(), make_member(), make_member()
    tag = "sca-402" if "402" in answer else "sca-200"
    # Ada saves her 3-D Secure card in the card form (her bank's check at setup, too).
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, live_server.url, ada.email, PASSWORD)
    page.get_by_role("link", name=f"Pre-order {event.title}").click()
    fill_card(page, NEEDS_3DS)
    page.get_by_role("button", name="Pre-order – no charge now").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    context.close()
    placed = PreOrder.objects.get(member=ada)
    cycle = PresaleCycle.objects.filter(pk=event.cycle_id)
    cycle.update(closed_early_at=timezone.now())
    approve(event.pk, [placed.pk], actor=None)
    cycle.update(closed_early_at=None)
    preorders = {ada.pk: placed}
    preorders |= {m.pk: place_approved(stripe_server, m, event) for m in (bea, cy)}
    with stripe_answering(answer, stripe_server, settings):
        close_window(event.cycle_id)
        run_execution.run_charges(event.cycle_id, trigger="test", early=True)
        assert {p.status for p in _fresh(preorders)} == {Status.AWAITING_AUTHENTICATION}

        context = browser.new_context(viewport={"width": 390, "height": 844})
        context.set_default_timeout(15_000)
        page = context.new_page()
        # Ada completes the bank's check and gets her ticket.
        _confirm(page, live_server.url, ada, "Complete authentication", shot=tag)
        page.wait_for_url(re.compile(rf"/pre-orders/{preorders[ada.pk].pk}/$"))
        assert page.get_by_text("Payment confirmed. Your ticket is on its way.").is_visible()
        assert page.get_by_test_id("status").inner_text() == "Successful – Ticket Sent"
        screenshot(page, f"{tag}-ticket")
        context.close()

        # Bea fails it, is told she can try again, and then completes it.
        context = browser.new_context(viewport={"width": 390, "height": 844})
        context.set_default_timeout(15_000)
        page = context.new_page()
        _confirm(page, live_server.url, bea, "Fail authentication")
        # Back on the same page (the URL alone cannot tell): wait for what it says.
        page.get_by_text("Your bank did not confirm the payment.").wait_for()
        assert page.url.endswith("/confirm-payment/")
        screenshot(page, f"{tag}-failed-try-again")
        page.get_by_role("button", name="Confirm with my bank").click()
        page.get_by_role("button", name="Complete authentication").click()
        page.wait_for_url(re.compile(rf"/pre-orders/{preorders[bea.pk].pk}/$"))
        assert page.get_by_test_id("status").inner_text() == "Successful – Ticket Sent"
        context.close()

        # Cy does nothing; the deadline passes.
        attempt = ChargeAttempt.objects.get(preorder=preorders[cy.pk])
        with time_machine.travel(attempt.authenticate_by + dt.timedelta(minutes=1)):
            assert authentication.expire_due() == 1

    assert intent(stripe_server, attempt.payment_intent_id)["status"] == "canceled"
    statuses = {p.member_id: p.status for p in _fresh(preorders)}
    assert statuses == {
        ada.pk: Status.TICKET_SENT,
        bea.pk: Status.TICKET_SENT,
        cy.pk: Status.FAILED,
    }
    # One PaymentIntent per pre-order, whatever the retries.
    assert payment_intents_by_preorder(stripe_server) == {str(p.pk): 1 for p in preorders.values()}
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in(page, live_server.url, cy.email, PASSWORD)
    message = page.get_by_test_id("status-message").inner_text()
    assert "not confirmed with your bank in time" in message
    assert "authentication" not in message.lower()
    screenshot(page, f"{tag}-deadline-passed")
    context.close()


def _fresh(preorders):
    return list(PreOrder.objects.filter(pk__in=[p.pk for p in preorders.values()]))
