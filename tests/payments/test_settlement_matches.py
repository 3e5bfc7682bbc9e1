"""A webhook or reconciliation settles a charge attempt only when the PaymentIntent is that
attempt's: same PaymentIntent (once known), amount, currency, customer and charge_key, and the
livemode of our key. Anything else is refused, recorded (on the event, or logged), and changes
nothing."""

import datetime as dt

import pytest

from payments import charging
from payments.installation import installation_prefix
from payments.models import ChargeAttempt, Installation, StripeEvent
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import SUCCEEDS
from tests.test_webhooks import deliver, intent_object, stripe_event

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def attempt(approved_preorder_factory) -> ChargeAttempt:
    preorder = approved_preorder_factory(SUCCEEDS)
    close_window(preorder.cycle_id)
    run = charging.start_run(preorder.cycle_id, trigger="test", early=True)
    (attempt_id,) = charging.claim_batch(run, 1)
    return ChargeAttempt.objects.select_related("preorder").get(pk=attempt_id)


def succeeded(attempt: ChargeAttempt, **changes) -> dict:
    intent = intent_object(attempt, "succeeded")
    metadata_changes = changes.pop("metadata", {})
    intent.update(changes)
    intent["metadata"].update(metadata_changes)
    return stripe_event("payment_intent.succeeded", intent)


def assert_unsettled(attempt: ChargeAttempt, reason: str) -> None:
    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.STARTED
    assert PreOrder.objects.get(pk=attempt.preorder_id).status == Status.CHARGING
    event = StripeEvent.objects.get()
    assert event.status == StripeEvent.Status.FAILED
    assert reason in event.error


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount": "other"}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"customer": "cus_someone_else"}, "customer"),
        ({"livemode": True}, "livemode"),
    ],
)
def test_a_payment_intent_that_differs_from_the_attempt_settles_nothing(
    client, attempt, changes, reason
):
    if changes.get("amount") == "other":
        changes["amount"] = attempt.amount_pence + 1

    assert deliver(client, succeeded(attempt, **changes)).status_code == 200

    assert_unsettled(attempt, reason)


def test_another_payment_intent_than_the_one_recorded_settles_nothing(client, attempt):
    ChargeAttempt.objects.filter(pk=attempt.pk).update(payment_intent_id="pi_recorded")

    deliver(client, succeeded(attempt, id="pi_another"))

    assert_unsettled(attempt, "PaymentIntent")


def test_the_matching_payment_intent_settles_it(client, attempt):
    deliver(client, succeeded(attempt))

    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.SUCCEEDED
    assert PreOrder.objects.get(pk=attempt.preorder_id).status == Status.TICKET_SENT


# --- The installation prefix ------------------------------------------------------------------


def test_every_charge_key_carries_this_installations_prefix_generated_once(attempt):
    prefix = installation_prefix()

    assert attempt.idempotency_key == f"{prefix}-presale-{attempt.preorder_id}-charge-1"
    assert Installation.objects.get().prefix == prefix
    assert installation_prefix() == prefix
    assert len(prefix) >= 10


def test_the_prefix_can_be_set(settings, attempt):
    settings.PRESALE_INSTALLATION_ID = "staging"
    assert installation_prefix() == "staging"


def test_another_installations_charge_of_the_same_preorder_number_is_not_ours(client, attempt):
    """Another database on the same Stripe account has its own pre-order with our id: its
    webhooks (same account, same endpoint list) name a charge_key without our prefix."""
    theirs = f"hcother0000-presale-{attempt.preorder_id}-charge-1"
    deliver(client, succeeded(attempt, metadata={"charge_key": theirs}))

    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.STARTED
    event = StripeEvent.objects.get()
    assert (event.status, event.result) == (StripeEvent.Status.IGNORED, "not a presale charge")


# --- Reconciliation ---------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", [False, True], ids=["found by charge_key", "recorded"])
def test_reconciliation_settles_nothing_from_a_payment_intent_that_differs(attempt, recorded):
    """Reconciliation asks Stripe about a charge with no answer: by the PaymentIntent recorded,
    or by the attempt's charge_key. A PaymentIntent there for another amount (say, made by hand
    with our key in its metadata) is not this charge: the attempt stays open, and is logged."""
    from payments.gateway.client import client

    preorder = attempt.preorder
    intent = client().v1.payment_intents.create(
        params={
            "amount": attempt.amount_pence + 100, "currency": "gbp",
            "customer": preorder.stripe_customer_id, "payment_method": preorder.payment_method_id,
            "off_session": True, "confirm": True,
            "metadata": {"charge_key": attempt.idempotency_key},
        }
    )  # fmt: skip
    assert intent.status == "succeeded"
    if recorded:
        ChargeAttempt.objects.filter(pk=attempt.pk).update(payment_intent_id=intent.id)

    counts = charging.reconcile(older_than=dt.timedelta(0))

    assert counts["mismatched"] == 1 and counts["settled"] == 0
    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.STARTED
    assert PreOrder.objects.get(pk=attempt.preorder_id).status == Status.CHARGING
