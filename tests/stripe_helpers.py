"""What the member's browser does with Stripe.js, done over HTTP against localstripe: confirm a
SetupIntent with a card. (Card numbers only ever go to Stripe, never to the app.)"""

import requests

SUCCEEDS = "4242424242424242"
DECLINED_AT_SETUP = "4000000000000002"
DECLINED_OFF_SESSION = "4000000000000341"
NEEDS_3DS = "4000002500003155"


def confirm_card_setup(stripe_url: str, client_secret: str, number: str = SUCCEEDS) -> dict:
    setup_intent_id = client_secret.split("_secret_")[0]
    response = requests.post(
        f"{stripe_url}/v1/setup_intents/{setup_intent_id}/confirm",
        json={
            "key": "pk_test_presale_tests",
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                "billing_details": {"name": "Test Member"},
            },
        },
        timeout=10,
    )
    return {"status_code": response.status_code, **response.json()}


def stripe_get(stripe_url: str, path: str) -> dict:
    response = requests.get(
        f"{stripe_url}/v1/{path}", auth=("sk_test_presale_tests", ""), timeout=10
    )
    response.raise_for_status()
    return response.json()


def new_confirmed_setup_intent(stripe_url: str, member, number: str = SUCCEEDS) -> str:
    """A SetupIntent for `member` (creating their Customer), confirmed with `number`."""
    from payments.services import start_card_setup

    handle = start_card_setup(member)
    result = confirm_card_setup(stripe_url, handle.client_secret, number)
    assert result["status_code"] == 200, result
    return handle.id


def new_authenticated_setup_intent(stripe_url: str, member, number: str = NEEDS_3DS) -> str:
    """A SetupIntent for a 3-D Secure card, confirmed and then authenticated by the cardholder
    (what Stripe.js's "Complete authentication" step does)."""
    from payments.services import start_card_setup

    handle = start_card_setup(member)
    first = confirm_card_setup(stripe_url, handle.client_secret, number)
    assert first["status"] == "requires_action", first
    response = requests.post(
        f"{stripe_url}/v1/setup_intents/{handle.id}/confirm",
        json={"key": "pk_test_presale_tests", "client_secret": handle.client_secret},
        timeout=10,
    )
    assert response.json()["status"] == "succeeded", response.json()
    return handle.id


def payment_intents_by_preorder(stripe_url: str) -> dict[str, int]:
    """How many PaymentIntents Stripe holds for each pre-order id (from their metadata)."""
    counts: dict[str, int] = {}
    starting_after = None
    while True:
        params = {"limit": 100, **({"starting_after": starting_after} if starting_after else {})}
        response = requests.get(
            f"{stripe_url}/v1/payment_intents",
            params=params,
            auth=("sk_test_presale_tests", ""),
            timeout=30,
        )
        page = response.json()
        for intent in page["data"]:
            key = (intent.get("metadata") or {}).get("preorder_id")
            if key:
                counts[key] = counts.get(key, 0) + 1
        if not page.get("has_more") or not page["data"]:
            return counts
        starting_after = page["data"][-1]["id"]


def stripe_post(stripe_url: str, path: str, data: dict | None = None) -> dict:
    """A call with the secret key, as the Stripe dashboard or another integration would make."""
    response = requests.post(
        f"{stripe_url}/v1/{path}", data=data or {}, auth=("sk_test_presale_tests", ""), timeout=10
    )
    response.raise_for_status()
    return response.json()


def setup_intent_count(stripe_url: str) -> int:
    return len(stripe_get(stripe_url, "setup_intents?limit=100")["data"])


def save_card(stripe_url: str, member, number: str = SUCCEEDS) -> str:
    """Save a card for `member` as the pre-order form does; returns its payment method id."""
    from payments.services import verify_card_setup

    return verify_card_setup(
        member, new_confirmed_setup_intent(stripe_url, member, number)
    ).payment_method_id


def attach_card_without_consent(
    stripe_url: str, customer_id: str, *, exp_year: int = 2034, number: str = SUCCEEDS
) -> str:
    """A card attached to a Customer without an off-session SetupIntent (e.g. by another
    integration), or an expired one."""
    method = stripe_post(
        stripe_url,
        "payment_methods",
        {
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "1",
            "card[exp_year]": str(exp_year),
            "card[cvc]": "123",
        },
    )
    stripe_post(stripe_url, f"payment_methods/{method['id']}/attach", {"customer": customer_id})
    return method["id"]
