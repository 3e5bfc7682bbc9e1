"""The Stripe proxy (devtools/stripe_proxy.py) in front of a real localstripe: pass-through,
latency, rate limits, idempotent replays, injected faults and the webhook relay. No database."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from devtools.stripe_proxy import cli_parser, config_from_args, endpoint_key
from devtools.stripe_proxy_runner import (
    register_webhook_endpoint,
    running_localstripe,
    running_stripe_proxy,
)

pytestmark = pytest.mark.stripe

KEY = ("sk_test_proxy_tests", "")
WEBHOOK_SECRET = "whsec_proxy_tests"
PI = {"amount": 1500, "currency": "gbp"}


@pytest.fixture(scope="module")
def upstream():
    with running_localstripe() as url:
        yield url


@pytest.fixture(scope="module")
def _proxy(upstream):
    with running_stripe_proxy(upstream, seed=1) as proxy:
        # localstripe signs and sends its webhooks to the proxy's relay. Only product.created:
        # no other test makes products, so no stray event from an earlier test's customers
        # reaches the webhook tests.
        register_webhook_endpoint(
            upstream, proxy.webhook_relay_url, WEBHOOK_SECRET, events=["product.created"]
        )
        yield proxy


@pytest.fixture
def proxy(_proxy, upstream):
    requests.delete(f"{upstream}/_config/data", timeout=10).raise_for_status()
    _proxy.reset(config=True)
    return _proxy


def sdk(proxy, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        KEY[0], base_addresses={"api": proxy.url}, max_network_retries=retries
    )


def upstream_intents(upstream: str) -> list[dict]:
    response = requests.get(
        f"{upstream}/v1/payment_intents", params={"limit": 100}, auth=KEY, timeout=10
    )
    response.raise_for_status()
    return response.json()["data"]


def create_intent(proxy, key: str | None = None, preorder: str = "1", **kwargs):
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(
        f"{proxy.url}/v1/payment_intents",
        data={**PI, "metadata[preorder_id]": preorder},
        auth=KEY,
        headers=headers,
        timeout=kwargs.pop("timeout", 10),
        **kwargs,
    )


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


# --- pure helpers --------------------------------------------------------------------------


def test_endpoint_key_collapses_ids_but_not_the_version():
    assert endpoint_key("post", "/v1/payment_intents") == "POST /v1/payment_intents"
    assert (
        endpoint_key("POST", "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix/confirm")
        == "POST /v1/payment_intents/{id}/confirm"
    )
    assert endpoint_key("GET", "/v1/customers/cus_Q2x9") == "GET /v1/customers/{id}"
    assert endpoint_key("GET", "/v1/invoices/upcoming") == "GET /v1/invoices/upcoming"


def test_cli_flags_are_the_config_keys():
    args = cli_parser().parse_args(
        [
            "--upstream",
            "http://127.0.0.1:1",
            "--latency-ms",
            "400",
            "--rate-limit",
            "25",
            "--seed",
            "3",
            "--drop-after",
            "0.1",
            "--drop-after-endpoint",
            "POST /v1/payment_intents",
            "--rate-limit-should-retry",
        ]
    )
    config = config_from_args(args)
    assert (config.latency_ms, config.rate_limit, config.seed) == (400.0, 25, 3)
    assert config.drop_after_endpoint == "POST /v1/payment_intents"
    assert config.rate_limit_should_retry is True
    assert config.webhook_target is None


def test_control_endpoint_checks_what_it_is_given(proxy):
    with pytest.raises(ValueError, match="unknown setting"):
        proxy.configure(latencyms=3)
    with pytest.raises(ValueError, match="probability"):
        proxy.configure(drop_after=1.5)
    config = proxy.configure(latency_ms="20", error_500_endpoint=["POST /v1/a", "GET /v1/b"])
    assert config["latency_ms"] == 20.0
    assert config["error_500_endpoint"] == "POST /v1/a,GET /v1/b"
    assert proxy.config() == config


# --- pass-through --------------------------------------------------------------------------


def test_passes_the_api_stripe_js_and_config_paths_through(proxy, upstream):
    client = sdk(proxy)
    customer = client.v1.customers.create(params={"email": "a@example.com", "name": "A"})
    assert client.v1.customers.retrieve(customer.id).email == "a@example.com"
    # Query strings, JSON bodies, status codes and error bodies come through unchanged.
    listing = requests.get(f"{proxy.url}/v1/customers?limit=1", auth=KEY, timeout=10).json()
    assert [c["id"] for c in listing["data"]] == [customer.id]
    updated = requests.post(
        f"{proxy.url}/v1/customers/{customer.id}", json={"name": "B"}, auth=KEY, timeout=10
    )
    assert updated.json()["name"] == "B"
    missing = requests.get(f"{proxy.url}/v1/customers/cus_Nope1", auth=KEY, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert requests.get(f"{proxy.url}/v1/customers", timeout=10).status_code == 401

    js = requests.get(f"{proxy.url}/js.stripe.com/v3/", timeout=10)
    assert js.content == requests.get(f"{upstream}/js.stripe.com/v3/", timeout=10).content
    assert js.headers["Content-Type"].startswith("application/javascript")
    assert requests.delete(f"{proxy.url}/_config/data", timeout=10).status_code == 200
    assert requests.get(f"{upstream}/v1/customers", auth=KEY, timeout=10).json()["data"] == []

    stats = proxy.stats()
    assert stats["requests"]["GET /v1/customers/{id}"] == 2
    assert stats["passthrough"] == 2


# --- latency and rate limits ---------------------------------------------------------------


def test_latency_is_added_to_api_calls_only(proxy):
    proxy.configure(latency_ms=300)
    started = time.monotonic()
    requests.get(f"{proxy.url}/v1/customers", auth=KEY, timeout=10).raise_for_status()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    requests.get(f"{proxy.url}/js.stripe.com/v3/", timeout=10).raise_for_status()
    assert time.monotonic() - started < 0.3


def test_rate_limit_answers_429_per_endpoint(proxy):
    proxy.configure(rate_limit=5)
    # All at once, so the burst fits in the 1 s window even on a busy machine.
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda _: requests.post(f"{proxy.url}/v1/customers", auth=KEY, timeout=10),
                range(8),
            )
        )
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 3
    refused = requests.post(f"{proxy.url}/v1/customers", auth=KEY, timeout=10)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    # Another endpoint has its own budget.
    for _ in range(5):
        requests.get(f"{proxy.url}/v1/customers", auth=KEY, timeout=10).raise_for_status()
    time.sleep(1.05)  # the window slides
    requests.post(f"{proxy.url}/v1/customers", auth=KEY, timeout=10).raise_for_status()
    assert proxy.stats()["rate_limited_by_endpoint"] == {"POST /v1/customers": 4}


def test_sdk_retries_only_the_429s_stripe_marks_retryable(proxy):
    """Real Stripe's rate-limit 429 has no `Stripe-Should-Retry`, and stripe-python then does
    not retry even with max_network_retries (only lock-timeout 429s say "true"): the app must
    pace itself. With rate_limit_should_retry the proxy sends the header and the SDK retries
    with backoff (0.5 s, then 0.5–1 s) until the 1 s window frees up."""
    proxy.configure(rate_limit=1)
    client = sdk(proxy, retries=2)
    requests.post(f"{proxy.url}/v1/customers", auth=KEY, timeout=10).raise_for_status()
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.create(params={"email": "b@example.com"})
    assert proxy.stats()["requests"]["POST /v1/customers"] == 2  # no retry

    time.sleep(1.05)
    proxy.configure(rate_limit_should_retry=True)
    requests.post(f"{proxy.url}/v1/customers", auth=KEY, timeout=10).raise_for_status()
    customer = client.v1.customers.create(params={"email": "c@example.com"})
    assert customer.email == "c@example.com"
    stats = proxy.stats()
    assert stats["rate_limited"] >= 2
    assert stats["requests"]["POST /v1/customers"] >= 5


# --- idempotency ---------------------------------------------------------------------------


def test_same_idempotency_key_replays_instead_of_charging_twice(proxy, upstream):
    first = create_intent(proxy, key="charge-1", preorder="41")
    second = create_intent(proxy, key="charge-1", preorder="41")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(upstream_intents(upstream)) == 1

    # The SDK's idempotency_key option goes through the same store.
    client = sdk(proxy)
    a = client.v1.payment_intents.create(params=PI, options={"idempotency_key": "charge-2"})
    b = client.v1.payment_intents.create(params=PI, options={"idempotency_key": "charge-2"})
    assert a.id == b.id
    assert len(upstream_intents(upstream)) == 2

    # Same key, other parameters: refused, as Stripe does.
    other = requests.post(
        f"{proxy.url}/v1/payment_intents",
        data={**PI, "amount": 999},
        auth=KEY,
        headers={"Idempotency-Key": "charge-1"},
        timeout=10,
    )
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"

    stats = proxy.stats()
    assert stats["payment_intents_created"] == 2
    assert stats["payment_intents_by_preorder"] == {"41": 1}
    assert stats["replays"] == 2


def test_concurrent_requests_with_one_key_reach_stripe_once(proxy, upstream):
    proxy.configure(latency_ms=200)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: create_intent(proxy, key="race", preorder="7"), range(6)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(upstream_intents(upstream)) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 5
    assert proxy.stats()["payment_intents_by_preorder"] == {"7": 1}


def test_conflict_mode_answers_409_while_the_first_request_runs(proxy, upstream):
    # A slow Stripe behind this proxy: a second proxy with latency as its upstream.
    with running_stripe_proxy(upstream, latency_ms=600) as slow_stripe:
        with running_stripe_proxy(slow_stripe.url, idempotency_concurrent="conflict") as front:
            with ThreadPoolExecutor(max_workers=2) as pool:
                first = pool.submit(create_intent, front, "dup")
                time.sleep(0.2)
                second = create_intent(front, "dup")
                assert first.result().status_code == 200
            assert second.status_code == 409
            assert second.json()["error"]["type"] == "idempotency_error"
            assert len(upstream_intents(upstream)) == 1


# --- faults --------------------------------------------------------------------------------


def test_injected_500_is_not_forwarded(proxy, upstream):
    proxy.configure(error_500=1.0, error_500_endpoint="POST /v1/payment_intents")
    answer = create_intent(proxy, key="k500")
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "api_error"
    requests.get(f"{proxy.url}/v1/customers", auth=KEY, timeout=10).raise_for_status()
    assert upstream_intents(upstream) == []
    assert proxy.stats()["faults"]["error_500"] == 1
    # Not stored either: once the fault clears, the same key reaches Stripe.
    proxy.configure(error_500=0.0)
    assert create_intent(proxy, key="k500").status_code == 200
    assert len(upstream_intents(upstream)) == 1


def test_injected_timeout_holds_then_hangs_up_without_forwarding(proxy, upstream):
    proxy.configure(timeout=1.0, timeout_s=0.5, timeout_endpoint="POST /v1/payment_intents")
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        create_intent(proxy, key="kt")
    assert time.monotonic() - started >= 0.5
    with pytest.raises(requests.ReadTimeout):
        create_intent(proxy, key="kt2", timeout=0.2)
    assert upstream_intents(upstream) == []
    assert proxy.stats()["faults"]["timeout"] == 2


def test_drop_after_charges_but_the_client_never_hears_and_a_retry_replays(proxy, upstream):
    proxy.configure(drop_after=1.0, drop_after_endpoint="POST /v1/payment_intents")
    with pytest.raises(requests.ConnectionError):
        create_intent(proxy, key="lost", preorder="9")
    created = upstream_intents(upstream)
    assert len(created) == 1  # the charge happened
    retry = create_intent(proxy, key="lost", preorder="9")
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == created[0]["id"]
    assert len(upstream_intents(upstream)) == 1

    # The SDK with retries and its own key: the dropped first answer is replayed on retry.
    intent = sdk(proxy, retries=2).v1.payment_intents.create(
        params={**PI, "metadata": {"preorder_id": "10"}}
    )
    assert len(upstream_intents(upstream)) == 2
    stats = proxy.stats()
    assert stats["faults"]["drop_after"] == 2
    assert stats["payment_intents_by_preorder"] == {"9": 1, "10": 1}
    assert intent.metadata["preorder_id"] == "10"

    with pytest.raises(stripe.APIConnectionError):
        sdk(proxy, retries=0).v1.payment_intents.create(params=PI)


# --- webhook relay -------------------------------------------------------------------------


class _Receiver:
    """The app's webhook endpoint stand-in: records what arrives; can fail first attempts."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes, str]] = []
        self.fail_first = False
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    fail = receiver.fail_first and body not in receiver._seen
                    receiver._seen.add(body)
                    if not fail:
                        receiver.received.append(
                            (time.time(), body, self.headers.get("Stripe-Signature", ""))
                        )
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events_for(self, object_ids: set[str]) -> list[tuple[float, dict]]:
        """Verified events about these objects, in arrival order."""
        found = []
        with self._lock:
            received = list(self.received)
        for at, body, signature in received:
            event = stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)
            if event.data.object.id in object_ids:
                found.append((at, event.to_dict()))
        return found


@pytest.fixture(scope="module")
def _receiver():
    receiver = _Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def receiver(_receiver, proxy):
    _receiver.received.clear()
    _receiver.fail_first = False
    proxy.configure(webhook_target=_receiver.url)
    return _receiver


def make_products(proxy, count: int) -> set[str]:
    return {
        requests.post(
            f"{proxy.url}/v1/products", data={"name": f"P{n}"}, auth=KEY, timeout=10
        ).json()["id"]
        for n in range(count)
    }


def test_webhooks_are_relayed_late_with_signatures_intact(proxy, receiver):
    proxy.configure(webhook_delay_s=0.5)
    products = make_products(proxy, 2)
    arrived = wait_until(lambda: len(receiver.events_for(products)) == 2 and receiver)
    events = arrived.events_for(products)  # construct_event verified every signature
    assert {e["type"] for _, e in events} == {"product.created"}
    relayed = {e["object"]: e["at"] for e in proxy.stats()["webhooks"]["events"]}
    for at, event in events:
        assert at - relayed[event["data"]["object"]["id"]] >= 0.45


def test_webhook_duplicates_and_retries(proxy, receiver):
    proxy.configure(webhook_duplicate=1.0)
    products = make_products(proxy, 2)
    events = wait_until(lambda: (e := receiver.events_for(products)) and len(e) >= 4 and e)
    time.sleep(1.0)  # let trailing copies land
    events = receiver.events_for(products)
    per_event: dict[str, int] = {}
    for _, event in events:
        per_event[event["id"]] = per_event.get(event["id"], 0) + 1
    assert len(per_event) == 2
    assert all(copies in (2, 3) for copies in per_event.values())

    # The app answers 500 once: the proxy tries again, as Stripe would.
    receiver.received.clear()
    receiver.fail_first = True
    proxy.configure(webhook_duplicate=0.0, webhook_retries=2, webhook_retry_delay_s=0.2)
    products = make_products(proxy, 1)
    assert len(wait_until(lambda: receiver.events_for(products))) == 1
    assert proxy.stats()["webhooks"]["retried"] >= 1


def test_webhook_drop(proxy, receiver):
    proxy.configure(webhook_drop=1.0)
    products = make_products(proxy, 2)

    def dropped():
        events = proxy.stats()["webhooks"]["events"]
        return {e["object"] for e in events if e["dropped"]} >= products

    wait_until(dropped)
    time.sleep(0.3)
    assert receiver.events_for(products) == []


def test_webhook_reorder(proxy, receiver):
    proxy.configure(webhook_reorder=6, webhook_reorder_timeout_s=5)
    products = []
    for _ in range(6):  # one at a time, so localstripe sends them in this order
        products += make_products(proxy, 1)
        time.sleep(0.05)
    events = wait_until(lambda: len(e := receiver.events_for(set(products))) == 6 and e)
    relayed = [e["object"] for e in proxy.stats()["webhooks"]["events"] if e["object"]]
    delivered = [event["data"]["object"]["id"] for _, event in events]
    assert sorted(delivered) == sorted(relayed[-6:]) == sorted(products)
    assert delivered != relayed[-6:]
    assert proxy.stats()["webhooks"]["reorder_batches"] >= 1


def test_webhook_reorder_releases_a_partial_window_after_the_timeout(proxy, receiver):
    proxy.configure(webhook_reorder=10, webhook_reorder_timeout_s=0.5)
    products = make_products(proxy, 2)
    assert len(wait_until(lambda: receiver.events_for(products))) >= 1
    wait_until(lambda: len(receiver.events_for(products)) == 2)
    assert proxy.stats()["webhooks"]["held"] == 0
