"""The Stripe webhook endpoint with events signed here, the way Stripe signs them: signature and
body checks, storing each event once, settling a charge exactly once whatever the order and
number of deliveries (and whether the webhook or the synchronous answer comes first), and the
staff webhook log with its replay button."""

import hashlib
import hmac
import json
import random
import re
import time
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from notifications.models import OutboundEmail
from payments import charging, gateway
from payments.models import ChargeAttempt, StripeEvent
from payments.settlement import settle
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import (
    DECLINED_OFF_SESSION,
    SUCCEEDS,
    payment_intents_by_preorder,
    stripe_get,
)
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/payments/stripe/webhook/"
DECLINE = {
    "code": "card_declined",
    "decline_code": "insufficient_funds",
    "message": "Your card has insufficient funds.",
    "type": "card_error",
}


# --- Signing and building events, as Stripe does ---------------------------------------------


def sign(payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
    secret = settings.STRIPE_WEBHOOK_SECRET if secret is None else secret
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def encode(event: dict) -> bytes:
    return json.dumps(event).encode()


def deliver(client: Client, event: dict | bytes, *, signature: str | None = None):
    payload = event if isinstance(event, bytes) else encode(event)
    return client.post(
        URL,
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature if signature is not None else sign(payload)},
    )


def stripe_event(event_type: str, data_object: dict, *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": data_object},
    }


def intent_object(attempt: ChargeAttempt, status: str, *, pi_id=None, error=None) -> dict:
    """A PaymentIntent as a payment_intent.* event carries it, for a charge attempt."""
    return {
        "id": pi_id or f"pi_{uuid.uuid4().hex[:24]}",
        "object": "payment_intent",
        "amount": attempt.amount_pence,
        "currency": "gbp",
        "status": status,
        "customer": attempt.preorder.stripe_customer_id,
        "payment_method": attempt.preorder.payment_method_id,
        "last_payment_error": error,
        "metadata": {
            "preorder_id": str(attempt.preorder_id),
            "cycle_id": str(attempt.preorder.cycle_id),
            "charge_key": attempt.idempotency_key,
        },
    }


def succeeded_event(attempt: ChargeAttempt, **kwargs) -> dict:
    return stripe_event("payment_intent.succeeded", intent_object(attempt, "succeeded", **kwargs))


def failed_event(attempt: ChargeAttempt, **kwargs) -> dict:
    kwargs.setdefault("error", DECLINE)
    return stripe_event(
        "payment_intent.payment_failed",
        intent_object(attempt, "requires_payment_method", **kwargs),
    )


def send_to_stripe(attempt: ChargeAttempt) -> gateway.ChargeOutcome:
    """The charge request exactly as charging.charge_attempt sends it, without settling: Stripe
    received it; its answer is still on the way back."""
    preorder = attempt.preorder
    return gateway.charge_off_session(
        amount_pence=attempt.amount_pence,
        customer_id=preorder.stripe_customer_id,
        payment_method_id=preorder.payment_method_id,
        idempotency_key=attempt.idempotency_key,
        metadata={
            "preorder_id": str(preorder.pk),
            "cycle_id": str(preorder.cycle_id),
            "charge_key": attempt.idempotency_key,
        },
    )


def emails(preorder: PreOrder, template: str) -> int:
    return OutboundEmail.objects.filter(preorder=preorder, template=template).count()


def fresh(preorder: PreOrder) -> PreOrder:
    return PreOrder.objects.get(pk=preorder.pk)


@pytest.fixture
def claimed(approved_preorder_factory):
    """claimed(*card_numbers) -> [ChargeAttempt]: approved pre-orders claimed by a charge run
    (charging, each with an open attempt and its idempotency key), not yet sent to Stripe."""

    def make(*numbers: str) -> list[ChargeAttempt]:
        preorders = [approved_preorder_factory(number) for number in numbers]
        close_window(preorders[0].cycle_id)
        run = charging.start_run(preorders[0].cycle_id, trigger="test", early=True)
        attempt_ids = charging.claim_batch(run, len(preorders))
        by_preorder = {
            attempt.preorder_id: attempt
            for attempt in ChargeAttempt.objects.filter(pk__in=attempt_ids).select_related(
                "preorder"
            )
        }
        return [by_preorder[preorder.pk] for preorder in preorders]

    return make


# --- The request itself ----------------------------------------------------------------------


def test_a_delivery_without_a_signature_is_refused_and_nothing_is_stored(client):
    payload = encode(stripe_event("payment_intent.created", {"id": "pi_1"}))
    response = client.post(URL, data=payload, content_type="application/json")
    assert response.status_code == 400
    response = deliver(client, payload, signature="")
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda body: sign(body, secret="whsec_not_ours"), id="wrong-secret"),
        pytest.param(lambda body: sign(body + b" "), id="signed-another-body"),
        pytest.param(lambda body: sign(body, timestamp=int(time.time()) - 400), id="stale"),
        pytest.param(lambda body: sign(body).split(",")[0], id="timestamp-only"),
        pytest.param(lambda body: "v1=" + "0" * 64, id="no-timestamp"),
        pytest.param(lambda body: "garbage", id="garbage"),
    ],
)
def test_a_forged_replayed_or_malformed_signature_is_refused(client, signature):
    payload = encode(stripe_event("payment_intent.created", {"id": "pi_1"}))
    response = deliver(client, payload, signature=signature(payload))
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_signature_a_little_old_but_within_the_sdk_tolerance_is_accepted(client):
    payload = encode(stripe_event("payment_intent.created", {"id": "pi_1"}))
    response = deliver(client, payload, signature=sign(payload, timestamp=int(time.time()) - 240))
    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"this is not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"type": "payment_intent.succeeded"}', id="no-id"),
        pytest.param(b'{"id": "evt_123"}', id="no-type"),
        pytest.param(b'{"id": 5, "type": "payment_intent.succeeded"}', id="id-not-a-string"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(b'"evt_123"', id="json-string"),
        pytest.param(b"null", id="json-null"),
    ],
)
def test_a_validly_signed_body_that_is_not_a_stripe_event_is_refused(client, payload):
    response = deliver(client, payload)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_an_oversized_body_is_refused_before_anything_else(client):
    event = stripe_event("payment_intent.created", {"id": "pi_1", "padding": "x" * 256 * 1024})
    payload = encode(event)
    assert len(payload) > 256 * 1024
    response = deliver(client, payload)
    assert response.status_code == 413
    assert not StripeEvent.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405
    assert not StripeEvent.objects.exists()


def test_an_unknown_event_type_is_acknowledged_and_stored_as_ignored(client):
    event = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    response = deliver(client, event)
    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.stripe_id, stored.type, stored.status) == (
        event["id"],
        "customer.created",
        StripeEvent.Status.IGNORED,
    )
    assert stored.payload == event
    assert stored.deliveries == 1
    assert stored.processed_at is not None
    assert stored.preorder is None


def test_a_repeat_inside_a_callers_transaction_leaves_it_usable_and_the_task_waits_for_commit(
    monkeypatch,
):
    """Served by gunicorn the view runs in autocommit; inside a caller's transaction a repeat
    must not break that transaction, and no task may go out before the row is committed."""
    from django.db import transaction
    from django.test import RequestFactory

    from payments import webhooks

    published = []
    monkeypatch.setattr(settings, "STRIPE_WEBHOOK_PROCESSING", "task")
    monkeypatch.setattr(webhooks, "dispatch_event", published.append)
    payload = encode(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))

    def post():
        request = RequestFactory().post(
            URL,
            data=payload,
            content_type="application/json",
            headers={"Stripe-Signature": sign(payload)},
        )
        return webhooks.stripe_webhook(request)

    with transaction.atomic():
        assert [post().status_code for _ in range(2)] == [200, 200]
        assert StripeEvent.objects.get().deliveries == 2  # the transaction still works
        assert published == []
    assert published == [StripeEvent.objects.get().pk]


def test_a_payment_event_for_a_charge_that_is_not_ours_is_ignored(client):
    event = stripe_event(
        "payment_intent.succeeded",
        {"id": "pi_someone_else", "object": "payment_intent", "status": "succeeded"},
    )
    assert deliver(client, event).status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.status == StripeEvent.Status.IGNORED
    assert stored.result == "not a presale charge"


# --- Settling through webhooks -----------------------------------------------------------------


@pytest.mark.stripe
def test_the_same_event_delivered_three_times_settles_once(client, claimed):
    (attempt,) = claimed(SUCCEEDS)
    event = succeeded_event(attempt)
    responses = [deliver(client, event) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert b"Duplicate" in responses[1].content

    stored = StripeEvent.objects.get()
    assert stored.deliveries == 3
    assert stored.attempts == 1
    assert (stored.status, stored.result) == (StripeEvent.Status.PROCESSED, "succeeded: settled")
    assert stored.preorder_id == attempt.preorder_id
    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.SUCCEEDED
    assert attempt.payment_intent_id == event["data"]["object"]["id"]
    preorder = fresh(attempt.preorder)
    assert preorder.status == Status.TICKET_SENT
    assert Ticket.objects.filter(preorder=preorder).count() == 1
    assert emails(preorder, "ticket") == 1
    assert preorder.log_entries.filter(to_status=Status.PAID).count() == 1


@pytest.mark.stripe
def test_the_webhook_arriving_before_the_synchronous_answer_wins_and_the_answer_changes_nothing(
    client, claimed, stripe_server
):
    (attempt,) = claimed(SUCCEEDS)
    outcome = send_to_stripe(attempt)  # Stripe charged the card; the run has not heard yet
    assert outcome.status == "succeeded"
    intent = stripe_get(stripe_server, f"payment_intents/{outcome.payment_intent_id}")
    assert intent["metadata"]["charge_key"] == attempt.idempotency_key

    assert deliver(client, stripe_event("payment_intent.succeeded", intent)).status_code == 200
    preorder = fresh(attempt.preorder)
    assert preorder.status == Status.TICKET_SENT
    assert StripeEvent.objects.get().result == "succeeded: settled"

    # Now the synchronous answer arrives, and a rerun of the charge comes by: nothing more.
    assert settle(attempt.pk, outcome, source="stripe") is False
    charging.charge_attempt(attempt.pk)
    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.SUCCEEDED
    assert attempt.payment_intent_id == intent["id"]
    assert fresh(preorder).status == Status.TICKET_SENT
    assert Ticket.objects.filter(preorder=preorder).count() == 1
    assert emails(preorder, "ticket") == 1
    assert payment_intents_by_preorder(stripe_server) == {str(preorder.pk): 1}


@pytest.mark.stripe
def test_a_webhook_matched_by_charge_key_before_any_charge_call_blocks_a_later_charge(
    client, claimed, stripe_server
):
    """The attempt has no PaymentIntent id yet: the event is matched by metadata.charge_key,
    and charging the attempt afterwards does not call Stripe again."""
    (attempt,) = claimed(SUCCEEDS)
    assert attempt.payment_intent_id is None
    event = succeeded_event(attempt)
    assert deliver(client, event).status_code == 200
    assert fresh(attempt.preorder).status == Status.TICKET_SENT

    charging.charge_attempt(attempt.pk)
    assert settle(attempt.pk, gateway.ChargeOutcome("succeeded", None), source="stripe") is False
    assert payment_intents_by_preorder(stripe_server) == {}
    assert Ticket.objects.filter(preorder_id=attempt.preorder_id).count() == 1
    assert emails(attempt.preorder, "ticket") == 1


@pytest.mark.stripe
def test_a_payment_failed_event_fails_the_preorder_once_and_a_duplicate_changes_nothing(
    client, claimed
):
    (attempt,) = claimed(DECLINED_OFF_SESSION)
    event = failed_event(attempt)
    assert deliver(client, event).status_code == 200
    preorder = fresh(attempt.preorder)
    assert preorder.status == Status.FAILED
    assert preorder.failure_reason == "insufficient_funds: Your card has insufficient funds."
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "insufficient_funds")
    assert emails(preorder, "payment_failed") == 1

    # The same event again, then another event about the same failure.
    assert deliver(client, event).status_code == 200
    assert (
        deliver(client, failed_event(attempt, pi_id=attempt.payment_intent_id)).status_code == 200
    )
    assert StripeEvent.objects.get(stripe_id=event["id"]).deliveries == 2
    second = StripeEvent.objects.exclude(stripe_id=event["id"]).get()
    assert second.result == "failed: already settled"
    assert fresh(preorder).status == Status.FAILED
    assert emails(preorder, "payment_failed") == 1
    assert not Ticket.objects.filter(preorder=preorder).exists()
    assert not OutboundEmail.objects.filter(preorder=preorder, template="ticket").exists()


@pytest.mark.stripe
def test_a_late_failed_event_for_a_charge_already_settled_as_paid_changes_nothing(
    client, claimed, stripe_server
):
    (attempt,) = claimed(SUCCEEDS)
    charging.charge_attempt(attempt.pk)  # the synchronous path settles first
    attempt.refresh_from_db()
    preorder = fresh(attempt.preorder)
    assert preorder.status == Status.TICKET_SENT
    ticket = Ticket.objects.get(preorder=preorder)

    response = deliver(client, failed_event(attempt, pi_id=attempt.payment_intent_id))
    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.result) == (
        StripeEvent.Status.PROCESSED,
        "failed: already settled",
    )
    assert stored.preorder_id == preorder.pk
    # And the real succeeded event, arriving late, changes nothing either.
    intent = stripe_get(stripe_server, f"payment_intents/{attempt.payment_intent_id}")
    deliver(client, stripe_event("payment_intent.succeeded", intent))
    assert StripeEvent.objects.get(type="payment_intent.succeeded").result == (
        "succeeded: already settled"
    )

    attempt.refresh_from_db()
    assert attempt.status == ChargeAttempt.Status.SUCCEEDED
    assert attempt.failure_code == ""
    preorder = fresh(preorder)
    assert (preorder.status, preorder.failure_reason) == (Status.TICKET_SENT, "")
    assert Ticket.objects.get(preorder=preorder) == ticket
    assert emails(preorder, "ticket") == 1
    assert emails(preorder, "payment_failed") == 0


@pytest.mark.stripe
def test_a_failed_event_that_says_succeeded_is_checked_with_stripe(client, claimed, stripe_server):
    (attempt,) = claimed(SUCCEEDS)
    outcome = send_to_stripe(attempt)
    intent = stripe_get(stripe_server, f"payment_intents/{outcome.payment_intent_id}")
    assert intent["status"] == "succeeded"
    deliver(client, stripe_event("payment_intent.payment_failed", intent))
    assert StripeEvent.objects.get().result == "succeeded: settled"
    assert fresh(attempt.preorder).status == Status.TICKET_SENT


@pytest.mark.stripe
def test_every_event_three_times_in_shuffled_order_ends_as_once_in_order(client, claimed):
    pattern = ["succeeded", "failed", "succeeded", "succeeded", "failed"]
    cards = {"succeeded": SUCCEEDS, "failed": DECLINED_OFF_SESSION}
    attempts = claimed(*[cards[outcome] for outcome in pattern * 2])
    in_order, shuffled = attempts[: len(pattern)], attempts[len(pattern) :]

    def events_for(group: list[ChargeAttempt]) -> list[dict]:
        events = []
        for attempt, outcome in zip(group, pattern, strict=True):
            pi_id = f"pi_{uuid.uuid4().hex[:24]}"
            created = intent_object(attempt, "requires_confirmation", pi_id=pi_id)
            events.append(stripe_event("payment_intent.created", created))
            events.append(stripe_event("charge.updated", {"id": f"ch_{pi_id}"}))
            if outcome == "succeeded":
                events.append(succeeded_event(attempt, pi_id=pi_id))
            else:
                events.append(failed_event(attempt, pi_id=pi_id))
        return events

    events_for_in_order, events_for_shuffled = events_for(in_order), events_for(shuffled)
    for event in events_for_in_order:
        assert deliver(client, event).status_code == 200
    deliveries = events_for_shuffled * 3
    random.Random(20261117).shuffle(deliveries)
    for event in deliveries:
        assert deliver(client, event).status_code == 200

    def final_state(group: list[ChargeAttempt]) -> list[tuple]:
        rows = []
        for attempt in group:
            preorder = fresh(attempt.preorder)
            attempt.refresh_from_db()
            rows.append(
                (
                    preorder.status,
                    preorder.failure_reason,
                    attempt.status,
                    Ticket.objects.filter(preorder=preorder).count(),
                    emails(preorder, "ticket"),
                    emails(preorder, "payment_failed"),
                    preorder.log_entries.filter(to_status__in=[Status.PAID, Status.FAILED]).count(),
                )
            )
        return rows

    expected = [
        (Status.TICKET_SENT, "", "succeeded", 1, 1, 0, 1)
        if outcome == "succeeded"
        else (
            Status.FAILED,
            "insufficient_funds: Your card has insufficient funds.",
            "failed",
            0,
            0,
            1,
            1,
        )
        for outcome in pattern
    ]
    assert final_state(in_order) == expected
    assert final_state(shuffled) == expected
    deliveries_by_id = {event["id"]: 1 for event in events_for_in_order}
    deliveries_by_id |= {event["id"]: 3 for event in events_for_shuffled}
    assert dict(StripeEvent.objects.values_list("stripe_id", "deliveries")) == deliveries_by_id
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).exists()
    assert StripeEvent.objects.filter(status=StripeEvent.Status.PROCESSED).count() == 2 * len(
        pattern
    )
    assert Ticket.objects.filter(preorder__isnull=False).count() == 2 * pattern.count("succeeded")


@pytest.mark.stripe
def test_an_event_received_while_the_broker_is_down_is_kept_and_handled_by_the_sweep(
    client, claimed, monkeypatch
):
    import datetime as dt

    from payments.tasks import process_pending_events, process_stripe_event

    (attempt,) = claimed(SUCCEEDS)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(process_stripe_event, "delay", broker_down)
    event = succeeded_event(attempt)
    assert deliver(client, event).status_code == 200  # Stripe must not be told to retry
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == (StripeEvent.Status.RECEIVED, 0)
    assert fresh(attempt.preorder).status == Status.CHARGING
    # A repeated delivery is only counted; the sweep is what picks the event up.
    assert deliver(client, event).status_code == 200
    assert process_pending_events() == 0  # too recent: its task may still be on the way
    StripeEvent.objects.update(received_at=stored.received_at - dt.timedelta(minutes=5))
    assert process_pending_events() == 1
    stored.refresh_from_db()
    assert (stored.status, stored.deliveries, stored.result) == (
        StripeEvent.Status.PROCESSED,
        2,
        "succeeded: settled",
    )
    assert fresh(attempt.preorder).status == Status.TICKET_SENT
    assert process_pending_events() == 0


@pytest.mark.stripe
def test_money_taken_for_an_attempt_already_settled_as_failed_is_not_kept_without_a_ticket(
    client, claimed, stripe_server
):
    """The synchronous path misread Stripe's answer (e.g. a 409 idempotency conflict or another
    non-card error while Stripe did charge the card) and failed the pre-order; then Stripe's
    payment_intent.succeeded arrives. The member must not stay charged without a ticket: the
    payment is refunded (or, at the least, the pre-order gets its ticket)."""
    (attempt,) = claimed(SUCCEEDS)
    outcome = send_to_stripe(attempt)
    assert outcome.status == "succeeded"
    misread = gateway.ChargeOutcome("failed", None, "idempotency_error", "Stripe said 409.")
    assert settle(attempt.pk, misread, source="stripe") is True
    assert fresh(attempt.preorder).status == Status.FAILED

    intent = stripe_get(stripe_server, f"payment_intents/{outcome.payment_intent_id}")
    assert deliver(client, stripe_event("payment_intent.succeeded", intent)).status_code == 200

    refunds = stripe_get(stripe_server, f"refunds?payment_intent={intent['id']}")["data"]
    refunded = sum(refund["amount"] for refund in refunds)
    has_ticket = Ticket.objects.filter(preorder_id=attempt.preorder_id).exists()
    assert refunded == intent["amount"] or has_ticket, (
        f"pre-order {attempt.preorder_id} is {fresh(attempt.preorder).status}, was charged "
        f"{intent['amount']}p, refunded {refunded}p, has no ticket; the event says "
        f"{StripeEvent.objects.get().result!r}"
    )


# --- The staff webhook log -----------------------------------------------------------------


LOG_URL = "/staff/webhooks/"


def _stored(status: str, event_type: str = "payment_intent.succeeded", **fields) -> StripeEvent:
    return StripeEvent.objects.create(
        stripe_id=f"evt_{uuid.uuid4().hex[:24]}",
        type=event_type,
        payload={"id": "x", "type": event_type, "data": {"object": {}}},
        status=status,
        **fields,
    )


def test_the_log_lists_events_and_filters_them_by_status(client, staff):
    assert reverse("payments:webhook_log") == LOG_URL
    processed = _stored(StripeEvent.Status.PROCESSED, result="succeeded: settled")
    ignored = _stored(StripeEvent.Status.IGNORED, "customer.created", result="type not handled")
    failed = _stored(StripeEvent.Status.FAILED, error="RuntimeError: boom", deliveries=2)
    client.force_login(staff)

    page = client.get(LOG_URL).content.decode()
    for event in (processed, ignored, failed):
        assert event.stripe_id in page
    assert "RuntimeError: boom" in page
    assert page.count(">Replay</button>") == 1

    page = client.get(LOG_URL, {"status": "failed"}).content.decode()
    assert failed.stripe_id in page
    assert processed.stripe_id not in page and ignored.stripe_id not in page
    assert reverse("payments:replay", args=[failed.pk]) in page

    page = client.get(LOG_URL, {"status": "ignored"}).content.decode()
    assert ignored.stripe_id in page and failed.stripe_id not in page

    # An unknown status shows everything rather than failing.
    response = client.get(LOG_URL, {"status": "nonsense"})
    assert response.status_code == 200
    assert processed.stripe_id in response.content.decode()
    assert client.get(LOG_URL, {"page": "999"}).status_code == 200


def test_the_log_and_replay_are_for_staff_only(client, member):
    event = _stored(StripeEvent.Status.FAILED)
    replay = reverse("payments:replay", args=[event.pk])
    login = reverse(settings.LOGIN_URL)

    response = client.get(LOG_URL)
    assert response.status_code == 302 and response.url.startswith(login)
    response = client.post(replay)
    assert response.status_code == 302 and response.url.startswith(login)

    client.force_login(member)
    assert client.get(LOG_URL).status_code == 403
    assert client.post(replay).status_code == 403
    event.refresh_from_db()
    assert (event.status, event.attempts) == (StripeEvent.Status.FAILED, 0)


def test_replay_is_post_only(client, staff):
    event = _stored(StripeEvent.Status.FAILED)
    client.force_login(staff)
    assert client.get(reverse("payments:replay", args=[event.pk])).status_code == 405
    assert client.post(reverse("payments:replay", args=[999999])).status_code == 404


@pytest.mark.stripe
def test_a_failed_event_is_replayed_by_staff_and_a_processed_one_is_refused(
    client, claimed, staff, monkeypatch
):
    (attempt,) = claimed(SUCCEEDS)

    def broken_settle(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("payments.stripe_events.settle", broken_settle)
    event = succeeded_event(attempt)
    assert deliver(client, event).status_code == 200  # acknowledged: the event is stored
    stored = StripeEvent.objects.get()
    assert stored.status == StripeEvent.Status.FAILED
    assert stored.error == "RuntimeError: database went away"
    assert fresh(attempt.preorder).status == Status.CHARGING
    monkeypatch.undo()

    staff_client = Client(enforce_csrf_checks=True)
    staff_client.force_login(staff)
    replay = reverse("payments:replay", args=[stored.pk])

    # Without the CSRF token the replay is refused and nothing happens.
    assert staff_client.post(replay).status_code == 403
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (StripeEvent.Status.FAILED, 1)

    page = staff_client.get(LOG_URL, {"status": "failed"}).content.decode()
    assert "database went away" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = staff_client.post(replay, {"csrfmiddlewaretoken": token}, follow=True)
    assert response.redirect_chain == [(LOG_URL, 302)]
    assert f"Replayed {event['id']}: succeeded: settled" in response.content.decode()
    stored.refresh_from_db()
    assert (stored.status, stored.result, stored.error, stored.attempts) == (
        StripeEvent.Status.PROCESSED,
        "succeeded: settled",
        "",
        2,
    )
    assert stored.preorder_id == attempt.preorder_id
    preorder = fresh(attempt.preorder)
    assert preorder.status == Status.TICKET_SENT
    assert emails(preorder, "ticket") == 1

    # A processed event cannot be replayed: refused with a message, nothing changes.
    response = staff_client.post(replay, {"csrfmiddlewaretoken": token}, follow=True)
    assert "Only an event whose processing failed can be replayed." in response.content.decode()
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (StripeEvent.Status.PROCESSED, 2)
    assert emails(preorder, "ticket") == 1
    assert Ticket.objects.filter(preorder=preorder).count() == 1


@pytest.mark.stripe
def test_a_replay_that_fails_again_says_so_and_stays_replayable(client, claimed, staff):
    (attempt,) = claimed(SUCCEEDS)
    # A stored event whose handling failed, with a payload that still cannot be handled.
    stored = StripeEvent.objects.create(
        stripe_id="evt_broken",
        type="payment_intent.succeeded",
        payload={"id": "evt_broken", "type": "payment_intent.succeeded", "data": "oops"},
        status=StripeEvent.Status.FAILED,
        attempts=1,
        error="AttributeError: earlier",
    )
    client.force_login(staff)
    response = client.post(reverse("payments:replay", args=[stored.pk]), follow=True)
    assert "Replay of evt_broken failed again" in response.content.decode()
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (StripeEvent.Status.FAILED, 2)

    # Repaired (e.g. the payload re-fetched from Stripe), the replay settles it.
    stored.payload = succeeded_event(attempt, pi_id="pi_repaired")
    stored.save(update_fields=["payload"])
    response = client.post(reverse("payments:replay", args=[stored.pk]), follow=True)
    assert "Replayed evt_broken: succeeded: settled" in response.content.decode()
    stored.refresh_from_db()
    assert stored.status == StripeEvent.Status.PROCESSED
    assert fresh(attempt.preorder).status == Status.TICKET_SENT
