"""Shared steps for the bank-authentication tests: pre-orders with a 3-D Secure card, the
Stripe stand-in in real Stripe's 402 mode, and what Stripe holds."""

import contextlib

import requests
from django.utils import timezone

from devtools.stripe_proxy_runner import running_stripe_proxy
from events.models import PresaleCycle
from preorders.decisions import approve
from preorders.models import PreOrder
from preorders.services import place_preorder
from tests.stripe_helpers import (
    NEEDS_3DS,
    new_authenticated_setup_intent,
    new_confirmed_setup_intent,
    stripe_get,
)

STRIPE_ANSWERS = ["localstripe 200 requires_action", "stand-in 402 authentication_required"]


@contextlib.contextmanager
def stripe_answering(kind: str, stripe_url: str, settings):
    """Yield the Stripe base URL the app should use: plain localstripe, or the stand-in in front
    of it answering off-session 3-D Secure charges as real Stripe does (402)."""
    if kind.startswith("localstripe"):
        yield stripe_url
        return
    with running_stripe_proxy(stripe_url, authentication_402=True) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        yield proxy.url


def place_approved(stripe_url: str, member, event, number: str = NEEDS_3DS) -> PreOrder:
    """A pre-order placed with `number` (a 3-D Secure card is authenticated at setup, as the
    member does in the card form) and approved after the window closed early."""
    if number == NEEDS_3DS:
        setup_intent = new_authenticated_setup_intent(stripe_url, member, number)
    else:
        setup_intent = new_confirmed_setup_intent(stripe_url, member, number)
    preorder = place_preorder(member, event.pk, setup_intent)
    cycle = PresaleCycle.objects.filter(pk=event.cycle_id)
    cycle.update(closed_early_at=timezone.now())
    approve(event.pk, [preorder.pk], actor=None)
    cycle.update(closed_early_at=None)
    return PreOrder.objects.get(pk=preorder.pk)


def intent(stripe_url: str, payment_intent_id: str) -> dict:
    return stripe_get(stripe_url, f"payment_intents/{payment_intent_id}")


def authenticate_as_stripe_js(stripe_url: str, client_secret: str, success: bool) -> dict:
    """What localstripe's Stripe.js does when the member presses "Complete authentication" or
    "Fail authentication" in its 3-D Secure box."""
    payment_intent_id = client_secret.split("_secret_")[0]
    response = requests.post(
        f"{stripe_url}/v1/payment_intents/{payment_intent_id}/_authenticate",
        params={"success": "true" if success else "false"},
        json={"key": "pk_test_presale_tests", "client_secret": client_secret},
        timeout=10,
    )
    return response.json()
