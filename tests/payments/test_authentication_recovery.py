"""A bank asking for authentication off-session, through plain localstripe (200
requires_action) and through the Stripe stand-in answering as real Stripe does (402
authentication_required, PaymentIntent left requires_payment_method): the member is asked to
confirm, can retry, and at the deadline the PaymentIntent is cancelled at Stripe."""

import datetime as dt

import pytest
import time_machine

from notifications.models import OutboundEmail
from payments import authentication, charging, run_execution
from payments.models import ChargeAttempt
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import _add_tickets, close_window
from tests.payments.sca import (
    STRIPE_ANSWERS,
    authenticate_as_stripe_js,
    intent,
    place_approved,
    stripe_answering,
)
from tests.stripe_helpers import payment_intents_by_preorder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


@pytest.fixture
def event(make_event):
    event = make_event(public_price_pence=2500, discount_percent=10)
    _add_tickets(event, 5)
    return event


def _run(preorder):
    close_window(preorder.cycle_id)
    run_execution.run_charges(preorder.cycle_id, trigger="test", early=True)


@pytest.mark.parametrize("answer", STRIPE_ANSWERS)
def test_authentication_required_keeps_the_place_and_asks_the_member(
    answer, stripe_server, settings, make_member, event
):
    preorder = place_approved(stripe_server, make_member(), event)
    with stripe_answering(answer, stripe_server, settings):
        _run(preorder)

    preorder.refresh_from_db()
    assert preorder.status == Status.AWAITING_AUTHENTICATION
    attempt = ChargeAttempt.objects.get(preorder=preorder)
    assert attempt.status == ChargeAttempt.Status.AWAITING
    # The PaymentIntent is kept open at Stripe, in the state each kind of Stripe leaves it.
    expected = "requires_action" if answer.startswith("localstripe") else "requires_payment_method"
    assert intent(stripe_server, attempt.payment_intent_id)["status"] == expected
    # Deadline: the next day at 12:00 London.
    local = attempt.authenticate_by.astimezone(dt.timezone(dt.timedelta(0)))
    assert attempt.authenticate_by > attempt.created_at
    assert (attempt.authenticate_by - attempt.created_at) < dt.timedelta(days=2)
    assert local.minute == 0
    assert charging.report(preorder.cycle_id).awaiting_authentication == 1
    # The place stays reserved: the pool counts it.
    from tickets.selectors import pool_summary

    assert pool_summary(event.pk).holding == 1
    email = OutboundEmail.objects.get(preorder=preorder, template="authentication_needed")
    assert "Your bank wants you to confirm this payment. Confirm by 12PM" in email.body_text
    assert f"/pre-orders/{preorder.pk}/confirm-payment/" in email.body_text
    assert "authentication_required" not in email.body_text  # members never see Stripe's codes


@pytest.mark.parametrize("answer", STRIPE_ANSWERS)
def test_authenticated_payment_is_paid_and_ticketed(
    answer, stripe_server, settings, make_member, event
):
    member = make_member()
    preorder = place_approved(stripe_server, member, event)
    with stripe_answering(answer, stripe_server, settings):
        _run(preorder)
        # First try: the member fails the bank's check; they may try again.
        page = authentication.confirm_page(member, preorder.pk)
        assert intent(stripe_server, page.client_secret.split("_secret_")[0])["status"] == (
            "requires_action"
        )
        authenticate_as_stripe_js(stripe_server, page.client_secret, success=False)
        assert authentication.check_after_browser(member, preorder.pk).status == (
            Status.AWAITING_AUTHENTICATION
        )
        # Second try: the same PaymentIntent, challenged again, completed.
        page = authentication.confirm_page(member, preorder.pk)
        authenticate_as_stripe_js(stripe_server, page.client_secret, success=True)
        preorder = authentication.check_after_browser(member, preorder.pk)

    assert preorder.status in (Status.PAID, Status.TICKET_SENT)
    preorder.refresh_from_db()
    assert preorder.status == Status.TICKET_SENT
    assert preorder.ticket is not None
    # One PaymentIntent, confirmed on-session: never a second charge.
    assert payment_intents_by_preorder(stripe_server) == {str(preorder.pk): 1}
    assert ChargeAttempt.objects.get(preorder=preorder).status == ChargeAttempt.Status.SUCCEEDED


def test_only_the_owner_gets_the_client_secret(stripe_server, make_member, event, client):
    owner, other = make_member(), make_member()
    preorder = place_approved(stripe_server, owner, event)
    _run(preorder)
    with pytest.raises(authentication.AuthenticationError):
        authentication.confirm_page(other, preorder.pk)
    client.force_login(other)
    response = client.get(f"/pre-orders/{preorder.pk}/confirm-payment/", follow=True)
    assert b"_secret_" not in response.content
    client.force_login(owner)
    response = client.get(f"/pre-orders/{preorder.pk}/confirm-payment/")
    assert response.status_code == 200
    assert b"_secret_" in response.content
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("answer", STRIPE_ANSWERS)
def test_deadline_cancels_the_payment_intent_at_stripe(
    answer, stripe_server, settings, make_member, event
):
    preorder = place_approved(stripe_server, make_member(), event)
    with stripe_answering(answer, stripe_server, settings):
        _run(preorder)
        attempt = ChargeAttempt.objects.get(preorder=preorder)
        assert authentication.expire_due() == 0  # not yet
        with time_machine.travel(attempt.authenticate_by + dt.timedelta(seconds=1)):
            assert authentication.expire_due() == 1
            assert authentication.expire_due() == 0  # once

    assert intent(stripe_server, attempt.payment_intent_id)["status"] == "canceled"
    preorder.refresh_from_db()
    assert preorder.status == Status.FAILED
    attempt.refresh_from_db()
    assert attempt.intent_cancelled_at is not None
    email = OutboundEmail.objects.get(preorder=preorder, template="authentication_expired")
    assert "was not confirmed with your bank by 12PM" in email.body_text
    assert "authentication" not in email.subject.lower()
    from tickets.selectors import pool_summary

    assert pool_summary(event.pk).holding == 0  # the place is free again


@pytest.mark.parametrize("answer", STRIPE_ANSWERS)
def test_without_the_recovery_it_fails_and_the_payment_intent_is_cancelled(
    answer, stripe_server, settings, make_member, event
):
    settings.PRESALE_AUTHENTICATION_RECOVERY = False
    preorder = place_approved(stripe_server, make_member(), event)
    with stripe_answering(answer, stripe_server, settings):
        _run(preorder)
    preorder.refresh_from_db()
    assert preorder.status == Status.FAILED
    attempt = ChargeAttempt.objects.get(preorder=preorder)
    assert attempt.failure_code == "authentication_required"
    assert attempt.intent_cancelled_at is not None
    assert intent(stripe_server, attempt.payment_intent_id)["status"] == "canceled"
    assert OutboundEmail.objects.filter(preorder=preorder, template="payment_failed").count() == 1


def test_a_payment_completed_but_not_reported_is_settled_by_reconciliation(
    stripe_server, make_member, event
):
    member = make_member()
    preorder = place_approved(stripe_server, member, event)
    _run(preorder)
    page = authentication.confirm_page(member, preorder.pk)
    authenticate_as_stripe_js(stripe_server, page.client_secret, success=True)
    # The tab was closed before it told us, and the webhook was lost.
    charging.reconcile(older_than=dt.timedelta(0))
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT


def test_coming_back_to_a_payment_confirmed_already_settles_it_and_says_so(
    stripe_server, make_member, event, client
):
    from django.contrib.messages import get_messages
    from django.urls import reverse

    member = make_member()
    preorder = place_approved(stripe_server, member, event)
    _run(preorder)
    page = authentication.confirm_page(member, preorder.pk)
    authenticate_as_stripe_js(stripe_server, page.client_secret, success=True)
    # The tab was closed before it told us; the member opens the link in the email again.
    client.force_login(member)
    response = client.get(reverse("payments:confirm_payment", args=[preorder.pk]))
    assert response.url == reverse("preorders:detail", args=[preorder.pk])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Payment confirmed. Your ticket is on its way."
    ]
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT
    assert payment_intents_by_preorder(stripe_server) == {str(preorder.pk): 1}
