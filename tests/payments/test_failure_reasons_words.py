"""Every failure reason Stripe gives, walked through settlement to the member's dashboard, the
pre-order page and the failure email: each says a plain sentence and points to the public sale;
none shows Stripe's code or message. Staff still see the raw code."""

import datetime as dt
import itertools

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import OutboundEmail
from payments import gateway
from payments.failure_reasons import SENTENCES, FailureKind, kind_of, member_sentence
from payments.models import ChargeAttempt
from payments.settlement import settle
from preorders.models import PreOrder
from preorders.states import Status

pytestmark = [pytest.mark.django_db]

# (Stripe's code or decline code, its message) for every kind of failure, as Stripe words them.
REASONS = [
    ("card_declined", "Your card was declined.", FailureKind.DECLINED),
    ("do_not_honor", "Your card was declined.", FailureKind.DECLINED),
    ("lost_card", "Your card was declined.", FailureKind.DECLINED),
    ("insufficient_funds", "Your card has insufficient funds.", FailureKind.INSUFFICIENT_FUNDS),
    ("expired_card", "Your card has expired.", FailureKind.EXPIRED_CARD),
    ("incorrect_cvc", "Your card's security code is incorrect.", FailureKind.INCORRECT_DETAILS),
    ("incorrect_number", "Your card number is incorrect.", FailureKind.INCORRECT_DETAILS),
    (
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
        FailureKind.AUTHENTICATION_REQUIRED,
    ),
    (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        FailureKind.PROCESSING_ERROR,
    ),
    # Ours, not Stripe's: the member did not confirm with their bank by the deadline.
    (
        "authentication_deadline",
        "Not confirmed with the bank before the deadline.",
        FailureKind.AUTHENTICATION_NOT_CONFIRMED,
    ),
    ("some_code_stripe_adds_next_year", "Something new went wrong.", FailureKind.OTHER),
    ("", "", FailureKind.OTHER),
]
_keys = itertools.count()
NOT_DECLINES = {
    FailureKind.PROCESSING_ERROR,
    FailureKind.OTHER,
    FailureKind.AUTHENTICATION_NOT_CONFIRMED,
}


def test_every_kind_has_a_sentence_and_every_kind_is_walked():
    assert set(SENTENCES) == set(FailureKind)
    assert {kind for _, _, kind in REASONS} == set(FailureKind)
    assert kind_of("CARD_DECLINED ") == FailureKind.DECLINED


def _failed(member, event, code: str, message: str) -> PreOrder:
    preorder = PreOrder.objects.create(
        member=member,
        event=event,
        cycle=event.cycle,
        status=Status.CHARGING,
        amount_pence=2250,
        stripe_customer_id="cus_words",
        payment_method_id="pm_words",
        card_brand="visa",
        card_last4="4242",
    )
    attempt = ChargeAttempt.objects.create(
        preorder=preorder, idempotency_key=f"words-{next(_keys)}", amount_pence=2250
    )
    assert settle(
        attempt.pk,
        gateway.ChargeOutcome("failed", f"pi_words{attempt.pk}", code, message),
        source="stripe",
    )
    return PreOrder.objects.get(pk=preorder.pk)


@pytest.mark.parametrize(
    ("code", "message", "kind"), REASONS, ids=[r[0] or "blank" for r in REASONS]
)
def test_a_failure_reaches_the_member_in_plain_words_and_staff_keep_the_code(
    code, message, kind, make_member, make_event, staff
):
    member = make_member(email="words@example.com")
    event = make_event(
        public_sale_url="https://tickets.example.com/jazz",
        public_sale_at=dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC),
    )
    preorder = _failed(member, event, code, message)
    assert (preorder.status, preorder.failure_code) == (Status.FAILED, code)

    client = Client()
    client.force_login(member)
    pages = {
        "dashboard": client.get(reverse("preorders:dashboard")).content.decode(),
        "detail": client.get(reverse("preorders:detail", args=[preorder.pk])).content.decode(),
    }
    email = OutboundEmail.objects.get(preorder=preorder, template="payment_failed")
    pages["email text"] = email.subject + email.body_text
    pages["email html"] = email.body_html
    sentence = member_sentence(code)
    assert sentence == SENTENCES[kind]
    for where, text in pages.items():
        assert sentence.replace("'", "&#x27;") in text or sentence in text, where
        if code:
            assert code not in text, where
        if message and message not in SENTENCES.values():
            assert message.replace("'", "&#x27;") not in text and message not in text, where
        assert "https://tickets.example.com/jazz" in text, where
        assert "10AM Friday 11 December" in text, where
        # "Card declined" only where the bank declined the card: not for a processing error,
        # a failure nobody named, or a confirmation that never came.
        declined = kind not in NOT_DECLINES
        assert ("Card declined" in text or "Card Declined" in text) == declined, where

    badge = {
        FailureKind.PROCESSING_ERROR: "Failed – Payment Not Taken",
        FailureKind.OTHER: "Failed – Payment Not Taken",
        FailureKind.AUTHENTICATION_NOT_CONFIRMED: "Failed – Not Confirmed in Time",
    }.get(kind, "Failed – Card Declined")
    assert badge in pages["dashboard"] and badge in pages["detail"]

    staff_client = Client()
    staff_client.force_login(staff)
    staff_page = staff_client.get(f"/staff/pre-orders/{preorder.pk}/").content.decode()
    if code:
        assert code in staff_page


def test_not_allocated_points_to_the_public_sale_on_the_dashboard(make_member, make_event):
    member = make_member()
    event = make_event(public_sale_url="https://tickets.example.com/comedy")
    PreOrder.objects.create(
        member=member,
        event=event,
        cycle=event.cycle,
        status=Status.DENIED,
        amount_pence=2250,
        stripe_customer_id="cus_x",
        payment_method_id="pm_x",
    )
    client = Client()
    client.force_login(member)
    html = client.get(reverse("preorders:dashboard")).content.decode()
    assert "Not allocated this week. No charge was made." in html
    assert "may still be available on public sale" in html
    assert 'href="https://tickets.example.com/comedy"' in html
