"""Links from a Stripe id to its page in the Stripe dashboard, in test or live mode as the
configured secret key is (localstripe counts as test). Only builds URLs: nothing here calls
Stripe."""

from django.conf import settings

DASHBOARD = "https://dashboard.stripe.com"
# Which dashboard page an id's prefix opens; ids of other kinds get no link.
PAGES = {
    "pi_": "payments",
    "ch_": "payments",
    "cus_": "customers",
    "seti_": "setup_intents",
    "evt_": "events",
    "re_": "refunds",
}


def is_live() -> bool:
    return settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))


def dashboard_url(stripe_id: str | None) -> str | None:
    if not stripe_id:
        return None
    for prefix, page in PAGES.items():
        if stripe_id.startswith(prefix):
            mode = "" if is_live() else "/test"
            return f"{DASHBOARD}{mode}/{page}/{stripe_id}"
    return None
