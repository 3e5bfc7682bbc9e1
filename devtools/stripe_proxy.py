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

This module is the server and the API path; its parts: `stripe_proxy_config` (the knobs and the
CLI), `stripe_proxy_stats` (the counters), `stripe_proxy_behaviour` (429s, faults, idempotent
replays, the 402), `stripe_proxy_webhooks` (the relay).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import signal
import time
import urllib.parse
import urllib.request
from collections import OrderedDict, deque
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from devtools.stripe_proxy_behaviour import (
    StripeBehaviour,
    endpoint_key,
    request_id,
    stripe_error,
)
from devtools.stripe_proxy_config import ProxyConfig, cli_parser, config_from_args
from devtools.stripe_proxy_stats import ProxyStats, StoredResponse, peak_per_second
from devtools.stripe_proxy_webhooks import HeldWebhook, WebhookRelay, register_webhook_endpoint

# What callers import from here (the stand-in's one public module).
__all__ = [
    "ProxyConfig",
    "ProxyStats",
    "StripeProxy",
    "config_from_args",
    "endpoint_key",
    "peak_per_second",
    "register_webhook_endpoint",
    "start_proxy",
]

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
# Idempotent results Stripe keeps: it saves a result once the endpoint started executing, so card
# declines (402) and server errors replay, but a request rejected up front (bad parameters, auth,
# rate limit) does not, and a retry with the same key is tried afresh.
_NOT_SAVED = frozenset({400, 401, 403, 404, 409, 429})

_REPLAY_HEADERS = ("Content-Type", "Stripe-Version", "Request-Id")


class StripeProxy(StripeBehaviour, WebhookRelay):
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
        self._held: list[HeldWebhook] = []
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
                return stripe_error(502, "api_error", "The proxy could not reach the upstream.")
            return self._respond(stored)
        return await self._handle_api(request)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        endpoint = endpoint_key(request.method, request.path)
        self.stats.requests[endpoint] += 1
        transport = request.transport  # kept now: aiohttp clears it once the peer is gone
        if endpoint == "POST /v1/payment_intents":
            await self._record_charge_request(request)

        # Stripe's limiter counts requests as they arrive and refuses at once: the latency is
        # what an admitted request takes (counting after it would let the jitter bunch evenly
        # paced requests into 429s that Stripe would not send).
        limited = self._rate_limited(endpoint)
        if limited:
            self.stats.rate_limited[endpoint] += 1
            return limited

        if config.latency_ms or config.jitter_ms:
            jitter = self._api_rng.uniform(-config.jitter_ms, config.jitter_ms)
            await asyncio.sleep(max(0.0, config.latency_ms + jitter) / 1000)

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
            return stripe_error(
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
                return stripe_error(502, "api_error", "The proxy could not reach Stripe.")
            if drop:
                self.stats.faults["drop_after"] += 1
                return self._drop(transport)
            return self._respond(stored)

        lock = self._key_locks.get(cache_key)
        if lock is not None and lock[0].locked() and config.idempotency_concurrent == "conflict":
            self.stats.idempotency_errors += 1
            return stripe_error(
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
                return stripe_error(502, "api_error", "The proxy could not reach Stripe.")
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
        stored.headers.setdefault("Request-Id", request_id())
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
    parser = cli_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO if args.access_log else logging.WARNING)
    asyncio.run(_serve(config, args.port, args.ready_file, args.access_log))


if __name__ == "__main__":
    main()
