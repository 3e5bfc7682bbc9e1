"""Real webhooks: localstripe signs and POSTs payment_intent.* events to the app running under
pytest-django's live server, about a second after each charge. The synchronous charge path
settles first, so each webhook must be matched to its pre-order and change nothing; when the
answer to the charge call is lost, the webhook settles it on its own."""

import datetime as dt
import time
import uuid

import pytest
import requests
from django.conf import settings

from notifications.models import OutboundEmail
from payments import charging, run_execution
from payments.models import ChargeAttempt, StripeEvent
from payments.settlement import settle
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import (
    DECLINED_OFF_SESSION,
    NEEDS_3DS,
    SUCCEEDS,
    payment_intents_by_preorder,
    stripe_get,
)
from tests.test_webhooks import send_to_stripe
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]

PAYMENT_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed"]
ENDPOINT = "/payments/stripe/webhook/"


@pytest.fixture
def register_webhook(live_server, stripe_server):
    """register_webhook(secret=...) points a new localstripe webhook endpoint (payment events
    only) at this test's live server. localstripe keeps endpoints across DELETE /_config/data
    and cannot delete one, so each gets a unique id and is switched off (subscribed to no real
    event type) when the test ends: later tests never receive this test's events."""
    registered = []

    def register(secret: str | None = None) -> str:
        registration = f"webhook-tests-{uuid.uuid4().hex[:12]}"
        response = requests.post(
            f"{stripe_server}/_config/webhooks/{registration}",
            data={
                "url": live_server.url + ENDPOINT,
                "secret": secret or settings.STRIPE_WEBHOOK_SECRET,
                "events[]": PAYMENT_EVENTS,
            },
            timeout=10,
        )
        response.raise_for_status()
        registered.append(registration)
        return registration

    yield register
    for registration in registered:
        requests.post(
            f"{stripe_server}/_config/webhooks/{registration}",
            data={"url": "http://127.0.0.1:9/", "secret": "whsec_off", "events[]": ["none.none"]},
            timeout=10,
        ).raise_for_status()


def wait_for_events(count: int, *, timeout: float = 10.0) -> list[StripeEvent]:
    """This test's payment events once `count` of them have arrived and been handled. Events of
    the previous test's charges can still arrive (localstripe sends about a second late); they
    match no charge here and are stored as ignored, so they are left out."""
    deadline = time.monotonic() + timeout
    while True:
        events = list(
            StripeEvent.objects.filter(type__in=PAYMENT_EVENTS)
            .exclude(status__in=[StripeEvent.Status.RECEIVED, StripeEvent.Status.IGNORED])
            .order_by("id")
        )
        if len(events) >= count:
            return events
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(events)} of {count} webhook events handled after {timeout:.0f} s: "
                f"{list(StripeEvent.objects.values_list('type', 'status', 'result'))}"
            )
        time.sleep(0.05)


def intent_of(event: StripeEvent) -> dict:
    return event.payload["data"]["object"]


def emails(preorder: PreOrder, template: str) -> int:
    return OutboundEmail.objects.filter(preorder=preorder, template=template).count()


def claim(preorders: list[PreOrder]) -> list[ChargeAttempt]:
    close_window(preorders[0].cycle_id)
    run = charging.start_run(preorders[0].cycle_id, trigger="test", early=True)
    charging.claim_batch(run, len(preorders))
    return [
        ChargeAttempt.objects.select_related("preorder").get(preorder=preorder)
        for preorder in preorders
    ]


def test_webhooks_after_the_charge_run_are_matched_and_change_nothing(
    register_webhook, stripe_server, approved_preorder_factory
):
    good = approved_preorder_factory(SUCCEEDS)
    declined = approved_preorder_factory(DECLINED_OFF_SESSION)
    register_webhook()
    close_window(good.cycle_id)
    run_execution.run_charges(good.cycle_id, trigger="test", early=True)
    # The synchronous answers have settled both already.
    good, declined = PreOrder.objects.get(pk=good.pk), PreOrder.objects.get(pk=declined.pk)
    assert (good.status, declined.status) == (Status.TICKET_SENT, Status.FAILED)

    events = {event.type: event for event in wait_for_events(2)}
    assert set(events) == set(PAYMENT_EVENTS)
    succeeded = events["payment_intent.succeeded"]
    failed = events["payment_intent.payment_failed"]
    good_attempt = ChargeAttempt.objects.get(preorder=good)
    declined_attempt = ChargeAttempt.objects.get(preorder=declined)

    assert (succeeded.status, succeeded.result, succeeded.preorder_id) == (
        StripeEvent.Status.PROCESSED,
        "succeeded: already settled",
        good.pk,
    )
    assert intent_of(succeeded)["id"] == good_attempt.payment_intent_id
    assert intent_of(succeeded)["metadata"]["charge_key"] == good_attempt.idempotency_key
    assert (failed.status, failed.result, failed.preorder_id) == (
        StripeEvent.Status.PROCESSED,
        "failed: already settled",
        declined.pk,
    )
    assert intent_of(failed)["metadata"]["charge_key"] == declined_attempt.idempotency_key
    # The decline's PaymentIntent id is known now, from the answer or from the webhook.
    assert declined_attempt.payment_intent_id == intent_of(failed)["id"]
    assert succeeded.deliveries == failed.deliveries == 1

    good, declined = PreOrder.objects.get(pk=good.pk), PreOrder.objects.get(pk=declined.pk)
    assert (good.status, declined.status) == (Status.TICKET_SENT, Status.FAILED)
    assert declined.failure_reason.startswith("card_declined")
    assert (good_attempt.status, declined_attempt.status) == ("succeeded", "failed")
    assert Ticket.objects.filter(preorder=good).count() == 1
    assert not Ticket.objects.filter(preorder=declined).exists()
    assert (emails(good, "ticket"), emails(good, "payment_failed")) == (1, 0)
    assert (emails(declined, "ticket"), emails(declined, "payment_failed")) == (0, 1)
    for preorder, target in ((good, Status.PAID), (declined, Status.FAILED)):
        assert preorder.log_entries.filter(to_status=target).count() == 1
    assert payment_intents_by_preorder(stripe_server) == {str(good.pk): 1, str(declined.pk): 1}


def test_a_delivery_signed_with_another_secret_is_refused(
    register_webhook, approved_preorder_factory, caplog
):
    preorder = approved_preorder_factory(SUCCEEDS)
    # localstripe posts to its endpoints one after another, in the order they were registered:
    # by the time the good delivery is handled, the forged one has been answered.
    register_webhook(secret="whsec_someone_else")
    register_webhook()
    close_window(preorder.cycle_id)
    run_execution.run_charges(preorder.cycle_id, trigger="test", early=True)
    (event,) = wait_for_events(1)
    assert event.deliveries == 1
    assert StripeEvent.objects.count() == 1

    def rejected():
        return [r for r in caplog.records if r.getMessage().startswith("Rejected a Stripe webhook")]

    # On a busy machine the forged delivery's answer can trail the good one's handling.
    deadline = time.monotonic() + 15
    while not rejected() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(rejected()) == 1
    assert "signature" in rejected()[0].getMessage().lower()


@pytest.mark.parametrize(
    ("number", "outcome", "status"),
    [(SUCCEEDS, "succeeded", Status.TICKET_SENT), (DECLINED_OFF_SESSION, "failed", Status.FAILED)],
)
def test_when_the_answer_to_the_charge_is_lost_the_webhook_settles_it(
    register_webhook, stripe_server, approved_preorder_factory, number, outcome, status
):
    (attempt,) = claim([approved_preorder_factory(number)])
    register_webhook()
    answer = send_to_stripe(attempt)  # Stripe acted; the run never heard back
    assert answer.status == outcome
    assert PreOrder.objects.get(pk=attempt.preorder_id).status == Status.CHARGING

    (event,) = wait_for_events(1)
    assert (event.status, event.result, event.preorder_id) == (
        StripeEvent.Status.PROCESSED,
        f"{outcome}: settled",
        attempt.preorder_id,
    )
    preorder = PreOrder.objects.get(pk=attempt.preorder_id)
    assert preorder.status == status
    attempt.refresh_from_db()
    assert attempt.status == outcome
    assert attempt.payment_intent_id == intent_of(event)["id"]

    # The late answer, then reconciliation, find it settled.
    assert settle(attempt.pk, answer, source="stripe") is False
    counts = charging.reconcile(cycle_id=preorder.cycle_id, older_than=dt.timedelta(0))
    assert counts == {
        "settled": 0,
        "resent": 0,
        "unreachable": 0,
        "refunded": 0,
        "refunds_finished": 0,
    }
    assert PreOrder.objects.get(pk=preorder.pk).status == status
    assert Ticket.objects.filter(preorder=preorder).count() == (1 if outcome == "succeeded" else 0)
    assert emails(preorder, "ticket") == (1 if outcome == "succeeded" else 0)
    assert emails(preorder, "payment_failed") == (0 if outcome == "succeeded" else 1)
    assert payment_intents_by_preorder(stripe_server) == {str(preorder.pk): 1}


def test_an_off_session_3ds_charge_failed_by_the_run_cannot_take_money_later(
    register_webhook, stripe_server, make_member, make_event, settings
):
    """Off-session, a 3-D Secure card comes back `requires_action`: the run fails the pre-order.
    If that PaymentIntent is left open, the cardholder can still authenticate it, Stripe takes
    the money and sends payment_intent.succeeded — which must not leave the member charged
    without a ticket (cancel the PaymentIntent when failing it, or refund what arrives).
    This is the brief's rule (no authentication recovery); tests/payments/ cover it switched on."""
    settings.PRESALE_AUTHENTICATION_RECOVERY = False
    from preorders.decisions import approve
    from preorders.services import place_preorder
    from tests.stripe_helpers import new_authenticated_setup_intent

    event = make_event()
    Ticket.objects.create(event=event, code="T-3DS-LATE")
    member = make_member()
    preorder = place_preorder(
        member, event.pk, new_authenticated_setup_intent(stripe_server, member, NEEDS_3DS)
    )
    close_window(event.cycle_id)
    approve(event.pk, [preorder.pk], actor=None)
    register_webhook()
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    preorder = PreOrder.objects.get(pk=preorder.pk)
    assert preorder.status == Status.FAILED
    assert preorder.failure_reason.startswith("authentication_required")
    attempt = ChargeAttempt.objects.get(preorder=preorder)
    intent = stripe_get(stripe_server, f"payment_intents/{attempt.payment_intent_id}")

    authenticated = requests.post(
        f"{stripe_server}/v1/payment_intents/{intent['id']}/_authenticate",
        data={"client_secret": intent["client_secret"], "success": "true"},
        auth=("sk_test_presale_tests", ""),
        timeout=10,
    )
    if authenticated.status_code != 200:
        return  # the PaymentIntent was cancelled: no money can move
    (webhook,) = wait_for_events(1)
    charged = stripe_get(stripe_server, f"payment_intents/{intent['id']}")
    refunds = stripe_get(stripe_server, f"refunds?payment_intent={intent['id']}")["data"]
    refunded = sum(refund["amount"] for refund in refunds)
    has_ticket = Ticket.objects.filter(preorder=preorder).exists()
    assert charged["status"] != "succeeded" or refunded == charged["amount"] or has_ticket, (
        f"pre-order {preorder.pk} is {PreOrder.objects.get(pk=preorder.pk).status}, charged "
        f"{charged['amount']}p ({charged['status']}), refunded {refunded}p, no ticket; the "
        f"webhook says {webhook.result!r}"
    )
