"""The Stripe client the gateway uses, and how Stripe's errors become ours."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import stripe
from django.conf import settings

_ID_PATTERN = {
    "setup_intent": re.compile(r"^seti_[A-Za-z0-9]{1,250}$"),
    "payment_method": re.compile(r"^pm_[A-Za-z0-9_]{1,250}$"),
}


CARD_REFUSED = "Your bank did not accept this card. Please try another card."


class GatewayError(Exception):
    """Stripe could not be reached or refused the request. `user_message` is safe to show."""

    def __init__(self, user_message: str, *, code: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


class CardDeclined(GatewayError):
    pass


class StripeUnavailable(GatewayError):
    """We do not know what Stripe did (network failure, timeout, 5xx after retries)."""


@cache
def _client_for(api_key: str, api_base: str, retries: int, timeout: int) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else {}
    return stripe.StripeClient(
        api_key,
        base_addresses=base,
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def client() -> stripe.StripeClient:
    return _client_for(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


def looks_like(kind: str, value: object) -> bool:
    return isinstance(value, str) and bool(_ID_PATTERN[kind].match(value))


def translate_error(error: stripe.StripeError) -> GatewayError:
    if isinstance(error, stripe.CardError):
        # Stripe's own message is not shown to members; staff and logs keep the code.
        return CardDeclined(CARD_REFUSED, code=getattr(error, "code", None))
    if isinstance(error, stripe.InvalidRequestError) and error.http_status == 404:
        return GatewayError("We could not find that card confirmation.", code="not_found")
    return GatewayError(
        "We could not reach our payment provider. Nothing was saved; please try again.",
        code=getattr(error, "code", None),
    )


# Stripe's errors that leave us not knowing what it did: the network, a 429 after the SDK's
# retries, a 5xx. A caller that settles money must try again later, never assume a refusal.
UNANSWERED = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Any Stripe error as a GatewayError whose `user_message` a member may read (requests made
    while a member waits: what matters is a sentence, not whether Stripe acted)."""
    try:
        yield
    except stripe.StripeError as error:
        raise translate_error(error) from error


@contextmanager
def answer_required(unanswered: str = "Stripe did not answer.") -> Iterator[None]:
    """As translated_errors, except that not knowing what Stripe did raises StripeUnavailable
    (with `unanswered` as its message), so background work tries again instead of settling."""
    try:
        yield
    except UNANSWERED as error:
        raise StripeUnavailable(unanswered) from error
    except stripe.StripeError as error:
        raise translate_error(error) from error
