"""A proxy between the app and localstripe that makes localstripe behave like real Stripe on a
hard day: latency, per-endpoint rate limits, idempotency keys that replay, injected faults, and
webhooks that arrive late, twice, out of order or never.

localstripe answers instantly, never rate-limits, ignores `Idempotency-Key` (a retry creates a
second PaymentIntent) and delivers every webhook once, in order. Code that is only ever tested
against that can double-charge or lose a settlement on the day Stripe is slow. This proxy sits
where `STRIPE_API_BASE` points, forwards to a localstripe, and adds Stripe's hard-day behaviour,
configurable at start (CLI flags / `ProxyConfig`) and at run time (`POST /_proxy/config`).

    python -m devtools.stripe_proxy --upstream http://127.0.0.1:8420 --port 8421 \
        --latency-ms 400 --jitter-ms 50 --rate-limit 25 --seed 1

Control endpoints (JSON):
    GET  /_proxy/health            "ok" once serving
    GET  /_proxy/config            the current configuration (the keys of `ProxyConfig`)
    POST /_proxy/config            change some keys, e.g. {"latency_ms": 400, "drop_after": 0.1}
    GET  /_proxy/stats             counters (see `ProxyStats.to_json`)
    POST /_proxy/reset             zero the counters, forget idempotency keys and rate windows;
                                   {"config": true} also restores the configuration given at start
    POST /_proxy/webhook-relay     where localstripe delivers webhooks (`register_webhook_endpoint`)
    POST /_proxy/webhooks/flush    release webhooks held for reordering now

Everything outside `/_proxy/` is passed to the upstream unchanged (Stripe.js, `/_config/*`, ...);
latency, rate limits, idempotency and faults apply only to the API (`/v1/...`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import logging
import random
import re
import secrets
import signal
import time
import types
import typing
import urllib.parse
import urllib.request
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

logger = logging.getLogger("devtools.stripe_proxy")

LOOPBACK = "127.0.0.1"

# Headers that describe one hop, not the message: never copied between the two connections.
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
    )
)

# A path segment with a digit or a capital letter is an object id (`cus_Q2x…`, `pi_3Mt…`); Stripe's
# resource names (`payment_intents`, `upcoming`, `confirm`) are lower-case words, and the version
# (`v1`) is not an id. Collapsing ids makes `GET /v1/customers/{id}` one endpoint for rate
# limiting, as Stripe counts it.
_ID_SEGMENT = re.compile(r"[0-9A-Z]")
_VERSION_SEGMENT = re.compile(r"v[0-9]+")

# Idempotent results Stripe keeps: it saves a result once the endpoint started executing, so card
# declines (402) and server errors replay, but a request rejected up front (bad parameters, auth,
# rate limit) does not, and a retry with the same key is tried afresh.
_NOT_SAVED = frozenset({400, 401, 403, 404, 409, 429})

_REPLAY_HEADERS = ("Content-Type", "Stripe-Version", "Request-Id")


def peak_per_second(times: list[float]) -> int:
    """The most of these moments that fall within any one second (a sliding window)."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


def endpoint_key(method: str, path: str) -> str:
    """The endpoint a request counts against, e.g. "POST /v1/payment_intents/{id}/confirm"."""
    parts = [
        "{id}" if _ID_SEGMENT.search(part) and not _VERSION_SEGMENT.fullmatch(part) else part
        for part in path.split("/")
    ]
    return f"{method.upper()} {'/'.join(parts)}"


def _matches(endpoint: str, patterns: str | None) -> bool:
    """None means every API endpoint; otherwise comma-separated fnmatch patterns, so
    "POST /v1/payment_intents" is creation only and "POST /v1/payment_intents*" also confirms."""
    if not patterns:
        return True
    return any(
        fnmatch.fnmatchcase(endpoint, pattern.strip())
        for pattern in patterns.split(",")
        if pattern.strip()
    )


def _stripe_error(status: int, error_type: str, message: str, **extra: str) -> web.Response:
    return web.json_response(
        {"error": {"type": error_type, "message": message, **extra}},
        status=status,
        headers={"Request-Id": _request_id()},
    )


def _request_id() -> str:
    return "req_" + secrets.token_hex(7)


@dataclass
class ProxyConfig:
    """Every knob of the proxy. The field names are the JSON keys of `POST /_proxy/config` and,
    with dashes, the CLI flags (`latency_ms` → `--latency-ms`)."""

    upstream: str = "http://127.0.0.1:8420"
    # Added to every /v1/ call before it is handled: latency_ms ± jitter_ms (uniform, never < 0).
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    # Requests per second per endpoint (sliding 1 s window); 0 = unlimited. Stripe: 25 in test mode.
    rate_limit: int = 0
    # Requests per second over all endpoints together; 0 = unlimited. Stripe: 25 test, 100 live.
    rate_limit_global: int = 0
    # Real Stripe's rate-limit 429s carry no `Stripe-Should-Retry`, so its SDKs do NOT retry them
    # (only lock-timeout 429s say `Stripe-Should-Retry: true`). True models the retryable kind.
    rate_limit_should_retry: bool = False
    # Replay the first result for a repeated `Idempotency-Key` (POST), as Stripe does for 24 h.
    idempotency: bool = True
    # A request arriving while another with its key is still running: "wait" for it, then
    # replay; "conflict" answers 409 idempotency_error at once, as real Stripe does.
    idempotency_concurrent: str = "wait"
    idempotency_max_keys: int = 100_000
    # Seeds the random choices (faults, jitter, webhook duplicates/order) for reproducible runs.
    seed: int | None = None
    # Faults: probabilities 0..1; *_endpoint limits each to comma-separated fnmatch patterns.
    error_500: float = 0.0
    error_500_endpoint: str | None = None
    timeout: float = 0.0
    timeout_endpoint: str | None = None
    timeout_s: float = 30.0
    drop_after: float = 0.0
    drop_after_endpoint: str | None = None
    # Answer an off-session charge that needs 3-D Secure as real Stripe does: HTTP 402
    # card_error `authentication_required` carrying the PaymentIntent, left
    # requires_payment_method (localstripe answers 200 `requires_action`).
    authentication_402: bool = False
    # Webhook relay: where to deliver what localstripe sends to /_proxy/webhook-relay.
    webhook_target: str | None = None
    webhook_delay_s: float = 0.0
    webhook_jitter_s: float = 0.0
    webhook_duplicate: float = 0.0
    webhook_drop: float = 0.0
    # Hold webhooks and release them shuffled, N at a time (or when the oldest has waited
    # webhook_reorder_timeout_s); 0 or 1 = in arrival order.
    webhook_reorder: int = 0
    webhook_reorder_timeout_s: float = 2.0
    # Redeliver after a non-2xx answer or a connection error, like Stripe (which keeps trying
    # for days); 0 = one attempt, like localstripe.
    webhook_retries: int = 0
    webhook_retry_delay_s: float = 1.0

    _PROBABILITIES: typing.ClassVar = (
        "error_500",
        "timeout",
        "drop_after",
        "webhook_duplicate",
        "webhook_drop",
    )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> ProxyConfig:
        """A copy with `changes` applied and checked (ValueError names the bad key)."""
        hints = typing.get_type_hints(type(self))
        values = self.to_json()
        for key, value in changes.items():
            if key not in values:
                raise ValueError(f"unknown setting {key!r}")
            values[key] = _coerce(key, value, hints[key])
        config = ProxyConfig(**values)
        config._check()
        return config

    def _check(self) -> None:
        for name in self._PROBABILITIES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability: 0..1")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and value < 0 and f.name != "seed":
                raise ValueError(f"{f.name} must not be negative")
        if self.idempotency_concurrent not in ("wait", "conflict"):
            raise ValueError('idempotency_concurrent is "wait" or "conflict"')
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError("upstream is an http(s) URL")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """JSON and CLI values into the field's type: ints for ints, None where allowed."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ValueError(f"{key} cannot be null")
    for kind in allowed:
        if kind is type(None):
            continue
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise ValueError(f"{key} is true or false")
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{key} is a number")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"{key} is a number") from None
            if kind is int:
                if number != int(number):
                    raise ValueError(f"{key} is a whole number")
                return int(number)
            return number
        if kind is str:
            if isinstance(value, list):  # endpoint patterns may come as a JSON list
                return ",".join(str(item) for item in value)
            return str(value)
    raise ValueError(f"{key}: unsupported value {value!r}")


@dataclass
class StoredResponse:
    status: int
    body: bytes
    headers: CIMultiDict[str]
    request_digest: str


@dataclass
class ProxyStats:
    requests: Counter = field(default_factory=Counter)  # per /v1/ endpoint
    passthrough: int = 0  # non-API requests forwarded (Stripe.js, /_config/...)
    forwarded: int = 0  # API requests forwarded upstream
    rate_limited: Counter = field(default_factory=Counter)  # 429s per endpoint
    replays: int = 0
    idempotency_errors: int = 0  # same key, other parameters; or a 409 in "conflict" mode
    faults: Counter = field(default_factory=Counter)  # error_500 / timeout / drop_after
    upstream_errors: int = 0
    authentication_402: int = 0  # off-session charges answered 402 authentication_required
    # POST /v1/payment_intents forwarded and answered 200 (a 402 decline moved no money), in
    # all and per metadata[preorder_id]: a count above 1 for a pre-order is a double charge.
    payment_intents_created: int = 0
    payment_intents_by_preorder: Counter = field(default_factory=Counter)
    webhooks: Counter = field(default_factory=Counter)
    webhook_events: list[dict[str, Any]] = field(default_factory=list)  # as received
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)  # each attempt
    # Every PaymentIntent creation the stand-in saw, before any rate limit or fault: when (a
    # monotonic second), the Idempotency-Key header and the metadata the app sent with it.
    charge_requests: list[dict[str, Any]] = field(default_factory=list)

    _EVENT_LOG_LIMIT: typing.ClassVar = 100_000  # long benchmarks must not grow without bound

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "passthrough": self.passthrough,
            "forwarded": self.forwarded,
            "rate_limited": sum(self.rate_limited.values()),
            "rate_limited_by_endpoint": dict(self.rate_limited),
            "replays": self.replays,
            "idempotency_errors": self.idempotency_errors,
            "faults": {
                "error_500": self.faults["error_500"],
                "timeout": self.faults["timeout"],
                "drop_after": self.faults["drop_after"],
            },
            "upstream_errors": self.upstream_errors,
            "authentication_402": self.authentication_402,
            "payment_intents_created": self.payment_intents_created,
            "payment_intents_by_preorder": dict(self.payment_intents_by_preorder),
            "charge_requests": self.charge_requests,
            "charge_requests_peak_per_second": peak_per_second(
                [entry["at"] for entry in self.charge_requests]
            ),
            "webhooks": {
                "received": self.webhooks["received"],
                "dropped": self.webhooks["dropped"],
                "duplicated": self.webhooks["duplicated"],
                "delivered": self.webhooks["delivered"],
                "failed": self.webhooks["failed"],
                "retried": self.webhooks["retried"],
                "no_target": self.webhooks["no_target"],
                "reorder_batches": self.webhooks["reorder_batches"],
                "held": self.webhooks["held"],
                "pending": self.webhooks["pending"],
                "events": self.webhook_events,
                "deliveries": self.webhook_deliveries,
            },
        }

    def log(self, target: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        if len(target) < self._EVENT_LOG_LIMIT:
            target.append(entry)


@dataclass
class _Webhook:
    body: bytes
    headers: dict[str, str]
    event_id: str | None
    event_type: str | None


class StripeProxy:
    """The proxy's state and handlers; `app()` gives the aiohttp application."""

    def __init__(self, config: ProxyConfig) -> None:
        config._check()
        self.initial_config = config
        self.config = config
        self.stats = ProxyStats()
        self._seed(config.seed)
        self._session: aiohttp.ClientSession | None = None
        self._idempotent: OrderedDict[tuple[str, str, str], StoredResponse] = OrderedDict()
        self._key_locks: dict[tuple[str, str, str], list] = {}  # key → [lock, users]
        self._windows: dict[str, deque[float]] = {}
        self._held: list[_Webhook] = []
        self._held_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()

    def _seed(self, seed: int | None) -> None:
        # Separate streams, so webhook traffic does not shift which API call gets a fault.
        self._api_rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        self._webhook_rng = random.Random(None if seed is None else seed + 7919)  # noqa: S311

    # --- application --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/_proxy/health", self._health)
        app.router.add_get("/_proxy/config", self._get_config)
        app.router.add_post("/_proxy/config", self._post_config)
        app.router.add_get("/_proxy/stats", self._get_stats)
        app.router.add_post("/_proxy/reset", self._reset)
        app.router.add_post("/_proxy/webhook-relay", self._webhook_relay)
        app.router.add_post("/_proxy/webhooks/flush", self._flush_webhooks)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(self._start_session)
        app.on_cleanup.append(self._close_session)
        return app

    async def _start_session(self, _app: web.Application) -> None:
        # One shared session with a big pool: a connection per request would cost a TCP
        # handshake each, and aiohttp's default of 100 would queue the 200-in-flight benchmark.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=1000),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300),
            auto_decompress=False,  # bodies pass through byte for byte
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def _close_session(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def _spawn(self, coroutine: typing.Coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)  # a reference, or the loop may garbage-collect a running task
        task.add_done_callback(self._tasks.discard)

    # --- control ------------------------------------------------------------------------------

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _get_config(self, _request: web.Request) -> web.Response:
        return web.json_response(self.config.to_json())

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object")
            self.config = self.config.updated(changes)
        except (ValueError, json.JSONDecodeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        if "seed" in changes:
            self._seed(self.config.seed)
        return web.json_response(self.config.to_json())

    async def _get_stats(self, _request: web.Request) -> web.Response:
        self.stats.webhooks["held"] = len(self._held)
        return web.json_response(self.stats.to_json())

    async def _reset(self, request: web.Request) -> web.Response:
        options: Any = {}
        if request.can_read_body:
            with contextlib.suppress(json.JSONDecodeError):
                options = await request.json()
        if isinstance(options, dict) and options.get("config"):
            self.config = self.initial_config
        pending = self.stats.webhooks["pending"]
        self.stats = ProxyStats()
        self.stats.webhooks["pending"] = pending  # deliveries still in flight finish their count
        self._idempotent.clear()
        self._windows.clear()
        self._seed(self.config.seed)
        return web.json_response({"reset": True, "config": self.config.to_json()})

    # --- the API path -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            self.stats.passthrough += 1
            body = await request.read()
            stored = await self._forward(request, body)
            if stored is None:
                return _stripe_error(502, "api_error", "The proxy could not reach the upstream.")
            return self._respond(stored)
        return await self._handle_api(request)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        endpoint = endpoint_key(request.method, request.path)
        self.stats.requests[endpoint] += 1
        transport = request.transport  # kept now: aiohttp clears it once the peer is gone
        if endpoint == "POST /v1/payment_intents":
            await self._record_charge_request(request)

        if config.latency_ms or config.jitter_ms:
            jitter = self._api_rng.uniform(-config.jitter_ms, config.jitter_ms)
            await asyncio.sleep(max(0.0, config.latency_ms + jitter) / 1000)

        limited = self._rate_limited(endpoint)
        if limited:
            self.stats.rate_limited[endpoint] += 1
            return limited

        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        use_key = bool(key) and request.method == "POST" and config.idempotency
        cache_key = (key or "", request.method, request.path)
        # Stripe refuses a key reused with other parameters; the body's digest tells.
        digest = hashlib.sha256(body).hexdigest() if use_key else ""

        # Replays come from Stripe's own store, behind any network trouble: faults are not
        # rolled for them, so a client retrying with its key gets through, as it would.
        if use_key and cache_key in self._idempotent:
            return self._replay(cache_key, digest, key)

        # Faults in front of Stripe: the request never reaches it, nothing is stored.
        if self._roll(config.error_500, config.error_500_endpoint, endpoint):
            self.stats.faults["error_500"] += 1
            return _stripe_error(
                500, "api_error", "An unknown error occurred (injected by the stripe proxy)."
            )
        if self._roll(config.timeout, config.timeout_endpoint, endpoint):
            self.stats.faults["timeout"] += 1
            await asyncio.sleep(config.timeout_s)
            return self._drop(transport)

        if not use_key:
            drop = self._roll(config.drop_after, config.drop_after_endpoint, endpoint)
            stored = await self._forward_api(request, body, endpoint)
            if stored is None:
                return _stripe_error(502, "api_error", "The proxy could not reach Stripe.")
            if drop:
                self.stats.faults["drop_after"] += 1
                return self._drop(transport)
            return self._respond(stored)

        lock = self._key_locks.get(cache_key)
        if lock is not None and lock[0].locked() and config.idempotency_concurrent == "conflict":
            self.stats.idempotency_errors += 1
            return _stripe_error(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still going "
                "through).",
            )
        async with self._key_lock(cache_key):
            if cache_key in self._idempotent:  # the request we waited for has answered
                return self._replay(cache_key, digest, key)
            drop = self._roll(config.drop_after, config.drop_after_endpoint, endpoint)
            stored = await self._forward_api(request, body, endpoint)
            if stored is None:
                return _stripe_error(502, "api_error", "The proxy could not reach Stripe.")
            stored.request_digest = digest
            if stored.status not in _NOT_SAVED:
                self._remember(cache_key, stored)
        if drop:
            # Stripe did the work and stored the result; only the answer is lost on the way.
            self.stats.faults["drop_after"] += 1
            return self._drop(transport)
        response = self._respond(stored)
        response.headers["Idempotency-Key"] = key
        return response

    async def _record_charge_request(self, request: web.Request) -> None:
        form = urllib.parse.parse_qs((await request.read()).decode("utf-8", "replace"))
        self.stats.log(
            self.stats.charge_requests,
            {
                "at": time.monotonic(),
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "charge_key": (form.get("metadata[charge_key]") or [None])[0],
                "preorder_id": (form.get("metadata[preorder_id]") or [None])[0],
            },
        )

    def _rate_limited(self, endpoint: str) -> web.Response | None:
        config = self.config
        now = time.monotonic()
        checks = [(endpoint, config.rate_limit), ("*", config.rate_limit_global)]
        windows = []
        for name, limit in checks:
            if not limit:
                continue
            window = self._windows.setdefault(name, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                response = _stripe_error(
                    429,
                    "rate_limit_error",
                    "Request rate limit exceeded. You can learn more about rate limits here "
                    "https://stripe.com/docs/rate-limits.",
                )
                if config.rate_limit_should_retry:
                    response.headers["Stripe-Should-Retry"] = "true"
                return response
            windows.append(window)
        # Only requests let through count: a client hammering through 429s is not locked out.
        for window in windows:
            window.append(now)
        return None

    def _roll(self, probability: float, patterns: str | None, endpoint: str) -> bool:
        if probability <= 0 or not _matches(endpoint, patterns):
            return False
        return self._api_rng.random() < probability

    @contextlib.asynccontextmanager
    async def _key_lock(self, cache_key: tuple[str, str, str]) -> typing.AsyncIterator[None]:
        entry = self._key_locks.setdefault(cache_key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:  # nobody waits for this key any more: do not keep its lock
                del self._key_locks[cache_key]

    def _remember(self, cache_key: tuple[str, str, str], stored: StoredResponse) -> None:
        self._idempotent[cache_key] = stored
        while len(self._idempotent) > self.config.idempotency_max_keys:
            self._idempotent.popitem(last=False)

    def _replay(self, cache_key: tuple[str, str, str], digest: str, key: str) -> web.Response:
        stored = self._idempotent[cache_key]
        if stored.request_digest != digest:
            self.stats.idempotency_errors += 1
            return _stripe_error(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        self.stats.replays += 1
        response = self._respond(stored)
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Idempotency-Key"] = key
        if "Request-Id" in stored.headers:
            response.headers["Original-Request"] = stored.headers["Request-Id"]
            response.headers["Request-Id"] = _request_id()
        return response

    @staticmethod
    def _drop(transport: asyncio.Transport | None) -> web.Response:
        # Closing the socket before aiohttp writes anything: the client reads EOF where the
        # status line should be (requests: "RemoteDisconnected"). The response returned below
        # is never sent; aiohttp skips writing to a closed transport.
        if transport is not None:
            transport.close()
        return web.Response(status=504)

    async def _forward_api(
        self, request: web.Request, body: bytes, endpoint: str
    ) -> StoredResponse | None:
        stored = await self._forward(request, body)
        if stored is None:
            return None

        self.stats.forwarded += 1
        stored.headers.setdefault("Request-Id", _request_id())
        if endpoint == "POST /v1/payment_intents" and stored.status == 200:
            self.stats.payment_intents_created += 1
            preorder = _preorder_id(request.headers.get("Content-Type", ""), body)
            if preorder:
                self.stats.payment_intents_by_preorder[preorder] += 1
        # Counted above: that PaymentIntent exists at Stripe, even though the answer is a 402.
        if (
            self.config.authentication_402
            and endpoint == "POST /v1/payment_intents"
            and stored.status == 200
            and _is_off_session(request.headers.get("Content-Type", ""), body)
        ):
            stored = await self._as_authentication_required(request, stored)
        return stored

    async def _forward(self, request: web.Request, body: bytes) -> StoredResponse | None:
        assert self._session is not None
        url = URL(self.config.upstream.rstrip("/") + request.raw_path, encoded=True)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            async with self._session.request(
                request.method,
                url,
                data=body if body else None,
                headers=headers,
                allow_redirects=False,
                # Only what the client sent: aiohttp would add its own User-Agent and Accept.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            ) as upstream:
                payload = await upstream.read()
                kept = CIMultiDict(
                    (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                )
                return StoredResponse(upstream.status, payload, kept, "")
        except (aiohttp.ClientError, TimeoutError) as error:
            self.stats.upstream_errors += 1
            logger.warning("upstream %s %s failed: %r", request.method, request.path, error)
            return None

    async def _as_authentication_required(
        self, request: web.Request, stored: StoredResponse
    ) -> StoredResponse:
        """Real Stripe's answer to an off-session charge the bank wants authenticated: the
        PaymentIntent is not cancelled but left requires_payment_method, and the request fails
        with a 402 card_error that carries it. localstripe's requires_action PaymentIntent is
        put in that state by failing its 3-D Secure step upstream."""
        try:
            intent = json.loads(stored.body)
        except ValueError:
            return stored
        if intent.get("status") != "requires_action":
            return stored
        self.stats.authentication_402 += 1
        failed = await self._upstream_json(
            request,
            f"/v1/payment_intents/{intent['id']}/_authenticate",
            {"client_secret": intent["client_secret"], "success": "false"},
        )
        intent = failed or intent
        error_body = {
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "doc_url": "https://stripe.com/docs/error-codes/authentication-required",
            "message": "Your card was declined. This transaction requires authentication.",
            "type": "card_error",
        }
        intent["last_payment_error"] = {
            key: error_body[key] for key in ("code", "decline_code", "message", "type")
        }
        error_body["payment_intent"] = intent
        headers = CIMultiDict(stored.headers)
        headers["Content-Type"] = "application/json"
        return StoredResponse(402, json.dumps({"error": error_body}).encode(), headers, "")

    async def _upstream_json(self, request: web.Request, path: str, form: dict) -> dict | None:
        assert self._session is not None
        url = self.config.upstream.rstrip("/") + path
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        try:
            async with self._session.post(url, data=form, headers=headers) as response:
                if response.status != 200:
                    return None
                return json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.stats.upstream_errors += 1
            return None

    @staticmethod
    def _respond(stored: StoredResponse) -> web.Response:
        headers = CIMultiDict(
            (k, v) for k, v in stored.headers.items() if k.lower() not in ("date", "server")
        )
        return web.Response(status=stored.status, body=stored.body, headers=headers)

    # --- webhooks -----------------------------------------------------------------------------

    async def _webhook_relay(self, request: web.Request) -> web.Response:
        body = await request.read()
        event_id = event_type = object_id = None
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            event = json.loads(body)
            event_id, event_type = event.get("id"), event.get("type")
            object_id = event["data"]["object"].get("id")
        # The signature covers the raw body: relay both untouched so the app can verify it.
        headers = {
            name: request.headers[name]
            for name in ("Content-Type", "Stripe-Signature", "User-Agent")
            if name in request.headers
        }
        hook = _Webhook(body, headers, event_id, event_type)
        config = self.config
        self.stats.webhooks["received"] += 1
        dropped = self._webhook_rng.random() < config.webhook_drop if config.webhook_drop else False
        self.stats.log(
            self.stats.webhook_events,
            {
                "id": event_id,
                "type": event_type,
                "object": object_id,
                "dropped": dropped,
                "at": time.time(),
            },
        )
        if dropped:
            self.stats.webhooks["dropped"] += 1
        elif config.webhook_reorder > 1:
            self._hold(hook)
        else:
            self._release(hook)
        # Answer at once: the sender must not wait for our injected delays.
        return web.Response(text="relayed")

    async def _flush_webhooks(self, _request: web.Request) -> web.Response:
        released = self._release_held()
        return web.json_response({"released": released})

    def _hold(self, hook: _Webhook) -> None:
        self._held.append(hook)
        if len(self._held) >= self.config.webhook_reorder:
            self._release_held()
        elif self._held_timer is None:
            loop = asyncio.get_running_loop()
            self._held_timer = loop.call_later(
                self.config.webhook_reorder_timeout_s, self._release_held
            )

    def _release_held(self) -> int:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        batch, self._held = self._held, []
        if not batch:
            return 0
        self._webhook_rng.shuffle(batch)
        self.stats.webhooks["reorder_batches"] += 1
        for hook in batch:
            self._release(hook)
        return len(batch)

    def _release(self, hook: _Webhook) -> None:
        config = self.config
        copies = 1
        if config.webhook_duplicate and self._webhook_rng.random() < config.webhook_duplicate:
            copies = self._webhook_rng.choice((2, 3))
            self.stats.webhooks["duplicated"] += 1
        for copy in range(copies):
            delay = config.webhook_delay_s
            if config.webhook_jitter_s:
                delay += self._webhook_rng.uniform(0, config.webhook_jitter_s)
            if copy:  # copies trail the original a little, as Stripe's do
                delay += self._webhook_rng.uniform(0.05, 0.5)
            self.stats.webhooks["pending"] += 1
            # Ordering of release is preserved by the event loop for equal zero delays.
            self._spawn(self._deliver(hook, delay, copy))

    async def _deliver(self, hook: _Webhook, delay: float, copy: int) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            target = self.config.webhook_target
            if not target:
                self.stats.webhooks["no_target"] += 1
                return
            for attempt in range(self.config.webhook_retries + 1):
                if attempt:
                    self.stats.webhooks["retried"] += 1
                    await asyncio.sleep(self.config.webhook_retry_delay_s * 2 ** (attempt - 1))
                status = await self._post_webhook(target, hook)
                self.stats.log(
                    self.stats.webhook_deliveries,
                    {
                        "id": hook.event_id,
                        "type": hook.event_type,
                        "copy": copy,
                        "attempt": attempt,
                        "status": status,
                        "at": time.time(),
                    },
                )
                if status is not None and 200 <= status < 300:
                    self.stats.webhooks["delivered"] += 1
                    return
            self.stats.webhooks["failed"] += 1
        finally:
            self.stats.webhooks["pending"] -= 1

    async def _post_webhook(self, target: str, hook: _Webhook) -> int | None:
        assert self._session is not None
        try:
            async with self._session.post(
                target, data=hook.body, headers=hook.headers, allow_redirects=False
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.info("webhook %s to %s failed: %r", hook.event_id, target, error)
            return None


def _is_off_session(content_type: str, body: bytes) -> bool:
    try:
        if "json" in content_type:
            return bool(json.loads(body).get("off_session"))
        values = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        return values.get("off_session", [""])[0].lower() == "true"
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False


def _preorder_id(content_type: str, body: bytes) -> str | None:
    """metadata[preorder_id] of a form-encoded (the SDK) or JSON (Stripe.js) request body."""
    try:
        if "json" in content_type:
            metadata = json.loads(body).get("metadata") or {}
            value = metadata.get("preorder_id")
            return str(value) if value is not None else None
        values = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        found = values.get("metadata[preorder_id]")
        return found[0] if found else None
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def register_webhook_endpoint(
    upstream: str,
    url: str,
    secret: str,
    *,
    endpoint_id: str = "stripe-proxy-relay",
    events: list[str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Tell localstripe at `upstream` to send its signed webhooks to `url` (e.g. the proxy's
    `/_proxy/webhook-relay`), signed with `secret`. localstripe keeps it until it exits."""
    fields: list[tuple[str, str]] = [("url", url), ("secret", secret)]
    fields += [("events[]", event) for event in events or []]
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the caller chose
        f"{upstream.rstrip('/')}/_config/webhooks/{urllib.parse.quote(endpoint_id)}",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        response.read()


async def start_proxy(
    config: ProxyConfig, port: int = 0, host: str = LOOPBACK, *, access_log: bool = False
) -> tuple[web.AppRunner, str, StripeProxy]:
    """Serve a proxy in the running event loop; returns (runner, base URL, proxy). Port 0 picks
    a free one. Stop with `await runner.cleanup()`."""
    proxy = StripeProxy(config)
    # No access log by default: formatting a line per request is a real share of the cost.
    runner = web.AppRunner(
        proxy.app(), access_log=logging.getLogger("aiohttp.access") if access_log else None
    )
    await runner.setup()
    # Big backlog: a benchmark opens hundreds of connections at once.
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, f"http://{host}:{bound}", proxy


_HELP = {
    "upstream": "localstripe's base URL",
    "latency_ms": "added to every /v1/ call",
    "jitter_ms": "latency varies uniformly by ± this",
    "rate_limit": "requests/s per endpoint, 0 = unlimited (Stripe test mode: 25)",
    "rate_limit_global": "requests/s over all endpoints, 0 = unlimited",
    "rate_limit_should_retry": "429s say Stripe-Should-Retry: true (Stripe's rate limits don't)",
    "idempotency": "replay results for a repeated Idempotency-Key",
    "idempotency_concurrent": "same key while the first runs: wait | conflict (409)",
    "seed": "seed the random faults for reproducible runs",
    "error_500": "probability of a 500 without forwarding",
    "timeout": "probability of holding timeout_s then hanging up, without forwarding",
    "timeout_s": "how long a timeout fault holds the request",
    "drop_after": "probability of forwarding, then hanging up without the answer",
    "authentication_402": "off-session 3-D Secure charges get real Stripe's 402 "
    "authentication_required (localstripe: 200 requires_action)",
    "webhook_target": "the app's webhook URL the relay delivers to",
    "webhook_delay_s": "delay before each webhook delivery",
    "webhook_jitter_s": "extra delay, uniform in 0..this",
    "webhook_duplicate": "probability of delivering an event 2-3 times",
    "webhook_drop": "probability of never delivering an event",
    "webhook_reorder": "shuffle events in windows of N (0 = keep order)",
    "webhook_reorder_timeout_s": "release a partial window after this long",
    "webhook_retries": "redeliveries after a non-2xx answer",
    "webhook_retry_delay_s": "first redelivery delay, doubling",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stripe_proxy",
        description="A Stripe-on-a-hard-day proxy in front of localstripe (binds 127.0.0.1).",
        epilog="Every ProxyConfig key is a flag, e.g. --drop-after 0.1 "
        "--drop-after-endpoint 'POST /v1/payment_intents'.",
    )
    parser.add_argument("--port", type=int, default=8421, help="0 picks a free port")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--ready-file", help="write the base URL here once serving (for launchers)")
    hints = typing.get_type_hints(ProxyConfig)
    defaults = ProxyConfig()
    for f in dataclasses.fields(ProxyConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if hints[f.name] is bool:
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=_HELP.get(f.name),
            )
        else:
            help_text = _HELP.get(f.name, "")
            parser.add_argument(
                flag,
                dest=f.name,
                default=default,
                metavar="VALUE",
                help=f"{help_text} (default: {default})".lstrip(),
            )
    return parser


def config_from_args(args: argparse.Namespace) -> ProxyConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(ProxyConfig)}
    for key, value in values.items():
        if value == "none":
            values[key] = None
    return ProxyConfig().updated(values)


async def _serve(config: ProxyConfig, port: int, ready_file: str | None, access_log: bool) -> None:
    runner, url, _proxy = await start_proxy(config, port, access_log=access_log)
    print(f"stripe proxy on {url} -> {config.upstream}", flush=True)
    if ready_file:
        with open(ready_file, "w") as handle:
            handle.write(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # a launcher's terminate() shuts down cleanly
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO if args.access_log else logging.WARNING)
    asyncio.run(_serve(config, args.port, args.ready_file, args.access_log))


if __name__ == "__main__":
    main()
