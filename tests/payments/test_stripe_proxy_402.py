"""The Stripe stand-in's real-Stripe answer to an off-session charge of a 3-D Secure card:
402 card_error `authentication_required`, the PaymentIntent in the error and left
requires_payment_method (not cancelled); replayed for the same idempotency key; nothing changes
for an on-session confirmation or an ordinary card."""

import pytest
import requests

from devtools.stripe_proxy_runner import running_stripe_proxy
from tests.stripe_helpers import NEEDS_3DS, SUCCEEDS

pytestmark = pytest.mark.stripe
AUTH = ("sk_test_presale_tests", "")


def _post(url: str, path: str, data: dict, key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{url}/v1/{path}", data=data, auth=AUTH, headers=headers, timeout=10)


def _card(url: str, number: str) -> tuple[str, str]:
    customer = _post(url, "customers", {"email": "sca@example.com"}).json()["id"]
    method = _post(
        url,
        "payment_methods",
        {
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
    ).json()["id"]
    _post(url, f"payment_methods/{method}/attach", {"customer": customer}).raise_for_status()
    return customer, method


def _charge(url: str, customer: str, method: str, key: str, off_session: bool = True):
    data = {
        "amount": "2250",
        "currency": "gbp",
        "customer": customer,
        "payment_method": method,
        "confirm": "true",
        "metadata[preorder_id]": "7",
    }
    if off_session:
        data["off_session"] = "true"
    return _post(url, "payment_intents", data, key)


def test_off_session_3ds_charge_gets_a_402_with_an_open_payment_intent(localstripe_url):
    with running_stripe_proxy(localstripe_url, authentication_402=True) as proxy:
        customer, method = _card(proxy.url, NEEDS_3DS)
        answer = _charge(proxy.url, customer, method, key="sca-1")
        assert answer.status_code == 402
        error = answer.json()["error"]
        assert (error["type"], error["code"]) == ("card_error", "authentication_required")
        intent = error["payment_intent"]
        assert intent["status"] == "requires_payment_method"
        assert intent["last_payment_error"]["code"] == "authentication_required"
        # Left open at Stripe: not cancelled.
        stored = requests.get(
            f"{proxy.url}/v1/payment_intents/{intent['id']}", auth=AUTH, timeout=10
        ).json()
        assert stored["status"] == "requires_payment_method"
        # The same key replays the same 402; no second PaymentIntent.
        again = _charge(proxy.url, customer, method, key="sca-1")
        assert again.status_code == 402
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json()["error"]["payment_intent"]["id"] == intent["id"]
        stats = proxy.stats()
        assert stats["authentication_402"] == 1
        assert stats["payment_intents_by_preorder"] == {"7": 1}

        # An ordinary card, and an on-session confirmation, are untouched.
        customer, method = _card(proxy.url, SUCCEEDS)
        assert _charge(proxy.url, customer, method, key="ok-1").json()["status"] == "succeeded"
        customer, method = _card(proxy.url, NEEDS_3DS)
        on_session = _charge(proxy.url, customer, method, key="on-1", off_session=False)
        assert on_session.status_code == 200
        assert on_session.json()["status"] == "requires_action"


def test_the_mode_is_off_by_default(localstripe_url):
    with running_stripe_proxy(localstripe_url) as proxy:
        customer, method = _card(proxy.url, NEEDS_3DS)
        answer = _charge(proxy.url, customer, method, key="sca-2")
        assert answer.status_code == 200
        assert answer.json()["status"] == "requires_action"  # localstripe's own answer
