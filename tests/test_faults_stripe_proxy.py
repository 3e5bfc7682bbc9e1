"""The charge run on a hard day, through the Stripe stand-in (devtools/stripe_proxy.py): Stripe
500s, timeouts and answers lost after the charge was made, and webhooks delayed, duplicated,
reordered and dropped. After reconciliation everything is settled, exactly once."""

import datetime as dt
import time
import uuid

import pytest

from devtools.stripe_proxy_runner import running_stripe_proxy
from notifications.models import OutboundEmail
from payments import charging, run_execution
from payments.models import ChargeAttempt, StripeEvent
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]

CHARGES = "POST /v1/payment_intents"


@pytest.fixture
def hard_day(stripe_server, settings):
    """The stand-in in front of this test's localstripe; the app talks to it from now on."""
    with running_stripe_proxy(stripe_server, seed=7) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        settings.STRIPE_TIMEOUT_SECONDS = 2
        yield proxy


def _expected(preorders, cards):
    return {
        p.pk: Status.FAILED if card == DECLINED_OFF_SESSION else Status.TICKET_SENT
        for p, card in zip(preorders, cards, strict=True)
    }


def _place(factory, count: int):
    cards = [SUCCEEDS] * (count - 2) + [DECLINED_OFF_SESSION] * 2
    return [factory(card) for card in cards], cards


def test_500s_timeouts_and_lost_answers_settle_exactly_once(
    hard_day, approved_preorder_factory, settings
):
    preorders, cards = _place(approved_preorder_factory, 12)
    close_window(preorders[0].cycle_id)
    # No SDK retries: every fault reaches the app as "no answer", the hardest case.
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    hard_day.configure(
        error_500=0.25, error_500_endpoint=CHARGES,
        timeout=0.15, timeout_s=3, timeout_endpoint=CHARGES,
        drop_after=0.25, drop_after_endpoint=CHARGES,
    )  # fmt: skip

    run_execution.run_charges(preorders[0].cycle_id, trigger="test", early=True)
    faults = hard_day.stats()["faults"]
    assert sum(faults.values()) > 0, "the stand-in injected no fault: the test proves nothing"
    left_open = ChargeAttempt.objects.filter(status="started").count()
    assert left_open > 0

    hard_day.configure(error_500=0, timeout=0, drop_after=0)  # Stripe recovers
    charging.reconcile(cycle_id=preorders[0].cycle_id, older_than=dt.timedelta(0))

    assert dict(PreOrder.objects.values_list("pk", "status")) == _expected(preorders, cards)
    per_preorder = hard_day.stats()["payment_intents_by_preorder"]
    assert all(n == 1 for n in per_preorder.values()), per_preorder
    # The stand-in counts PaymentIntents that took money (a 402 decline takes none).
    paid = {str(p.pk) for p, card in zip(preorders, cards, strict=True) if card == SUCCEEDS}
    assert set(per_preorder) == paid
    assert Ticket.objects.filter(preorder__isnull=False).count() == 10


def test_with_the_sdk_retrying_lost_answers_are_replayed_not_recharged(
    hard_day, approved_preorder_factory, settings
):
    preorders, cards = _place(approved_preorder_factory, 10)
    close_window(preorders[0].cycle_id)
    settings.STRIPE_MAX_NETWORK_RETRIES = 3
    hard_day.configure(drop_after=0.5, drop_after_endpoint=CHARGES, error_500=0.3)

    run_execution.run_charges(preorders[0].cycle_id, trigger="test", early=True)

    stats = hard_day.stats()
    assert stats["replays"] > 0
    assert dict(PreOrder.objects.values_list("pk", "status")) == _expected(preorders, cards)
    assert all(n == 1 for n in stats["payment_intents_by_preorder"].values())


def test_rate_limited_charges_are_retried_and_none_fails(
    hard_day, approved_preorder_factory, settings
):
    preorders, cards = _place(approved_preorder_factory, 12)
    close_window(preorders[0].cycle_id)
    settings.CHARGE_RATE_PER_SECOND = 100  # outrun the stand-in's limit on purpose
    hard_day.configure(rate_limit=4)

    run_execution.run_charges(preorders[0].cycle_id, trigger="test", early=True)

    assert hard_day.stats()["rate_limited"] > 0
    assert dict(PreOrder.objects.values_list("pk", "status")) == _expected(preorders, cards)


def test_webhooks_late_twice_shuffled_or_lost_change_nothing_twice(
    hard_day, approved_preorder_factory, live_server, settings
):
    preorders, cards = _place(approved_preorder_factory, 10)
    close_window(preorders[0].cycle_id)
    hard_day.configure(
        webhook_delay_s=0.2, webhook_jitter_s=0.3, webhook_duplicate=0.6,
        webhook_reorder=4, webhook_reorder_timeout_s=0.5, webhook_drop=0.2,
    )  # fmt: skip
    hard_day.relay_webhooks(
        f"{live_server.url}/payments/stripe/webhook/",
        settings.STRIPE_WEBHOOK_SECRET,
        endpoint_id=f"faults-{uuid.uuid4().hex[:8]}",
        events=["payment_intent.succeeded", "payment_intent.payment_failed"],
    )
    # Lose some synchronous answers too, so that webhooks settle part of the run.
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    hard_day.configure(drop_after=0.3, drop_after_endpoint=CHARGES)

    run_execution.run_charges(preorders[0].cycle_id, trigger="test", early=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        hard_day.flush_webhooks()
        webhooks = hard_day.stats()["webhooks"]
        # localstripe sends each event about a second after the call: wait for all ten.
        everything_in = webhooks.get("received", 0) >= len(preorders)
        if everything_in and webhooks.get("pending", 0) == 0 and webhooks.get("held", 0) == 0:
            break
        time.sleep(0.3)
    # Whatever webhooks were lost, reconciliation finishes the job.
    charging.reconcile(cycle_id=preorders[0].cycle_id, older_than=dt.timedelta(0))

    assert dict(PreOrder.objects.values_list("pk", "status")) == _expected(preorders, cards)
    assert StripeEvent.objects.filter(deliveries__gt=1).exists()
    ticket_emails = OutboundEmail.objects.filter(template="ticket")
    assert ticket_emails.count() == 8
    assert ticket_emails.values("preorder").distinct().count() == 8
    assert all(n == 1 for n in hard_day.stats()["payment_intents_by_preorder"].values())
