"""Run localstripe, the fake Stripe server, on 127.0.0.1 for the demo and the tests.

localstripe's own CLI binds every interface and pickles its whole store to a shared file in the
temp folder on every write, which several instances then share and which slows down as data
grows. This launcher binds loopback only, keeps everything in memory, and can register the
app's webhook endpoint at start so signed events reach it. It also accepts the `customer`
filter on the PaymentIntent list and the `customer` and `payment_method` filters on the
SetupIntent list, as real Stripe does.

    python -m devtools.localstripe_server --port 8420 \
        --webhook-url http://127.0.0.1:8000/payments/stripe/webhook/ --webhook-secret whsec_x
"""

import argparse
import logging

from aiohttp import web
from localstripe import resources, server, webhooks


def _disable_persistence() -> None:
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None


def _support_customer_filter() -> None:
    """Real Stripe lists a customer's PaymentIntents (`GET /v1/payment_intents?customer=`);
    localstripe answers that with a 400. The app's reconciliation relies on it, so teach it."""
    original = resources.PaymentIntent._api_list_all.__func__

    def list_all(cls, url, limit=None, starting_after=None, customer=None, **kwargs):
        listing = original(cls, url, limit=limit, starting_after=starting_after, **kwargs)
        if customer is not None:
            listing._list = [intent for intent in listing._list if intent.customer == customer]
        return listing

    resources.PaymentIntent._api_list_all = classmethod(list_all)


def _support_setup_intent_filters() -> None:
    """Real Stripe lists a customer's SetupIntents for one card (`GET /v1/setup_intents?
    customer=&payment_method=`); the app checks a saved card's off-session consent that way."""
    original = resources.SetupIntent._api_list_all.__func__

    def list_all(cls, url, limit=None, starting_after=None, customer=None, payment_method=None):
        listing = original(cls, url, limit=limit, starting_after=starting_after)
        listing._list = [
            intent
            for intent in listing._list
            if (customer is None or intent.customer == customer)
            and (payment_method is None or intent.payment_method == payment_method)
        ]
        return listing

    resources.SetupIntent._api_list_all = classmethod(list_all)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook-url", help="register this URL for every event")
    parser.add_argument("--webhook-secret", help="signing secret for --webhook-url")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    if bool(args.webhook_url) != bool(args.webhook_secret):
        parser.error("--webhook-url and --webhook-secret go together")

    _disable_persistence()
    _support_customer_filter()
    _support_setup_intent_filters()
    if args.webhook_url:
        webhooks.register_webhook("presale", args.webhook_url, args.webhook_secret, None)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO)
    web.run_app(
        server.app,
        host=args.host,
        port=args.port,
        access_log=None if args.quiet else logging.getLogger("aiohttp.access"),
        print=lambda *_: None,
    )


if __name__ == "__main__":
    main()
