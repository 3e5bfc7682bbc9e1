"""What real Stripe does that localstripe does not, as the stand-in plays it: rate limits (429),
faults rolled per endpoint, idempotency keys that replay the first answer, and the 402
`authentication_required` of an off-session charge the bank wants authenticated."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import random
import re
import secrets
import time
import typing
from collections import OrderedDict, deque

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from devtools.stripe_proxy_config import ProxyConfig
from devtools.stripe_proxy_stats import ProxyStats, StoredResponse

# A path segment with a digit or a capital letter is an object id (`cus_Q2x…`, `pi_3Mt…`); Stripe's
# resource names (`payment_intents`, `upcoming`, `confirm`) are lower-case words, and the version
# (`v1`) is not an id. Collapsing ids makes `GET /v1/customers/{id}` one endpoint for rate
# limiting, as Stripe counts it.
_ID_SEGMENT = re.compile(r"[0-9A-Z]")
_VERSION_SEGMENT = re.compile(r"v[0-9]+")


def endpoint_key(method: str, path: str) -> str:
    """The endpoint a request counts against, e.g. "POST /v1/payment_intents/{id}/confirm"."""
    parts = [
        "{id}" if _ID_SEGMENT.search(part) and not _VERSION_SEGMENT.fullmatch(part) else part
        for part in path.split("/")
    ]
    return f"{method.upper()} {'/'.join(parts)}"


def matches(endpoint: str, patterns: str | None) -> bool:
    """None means every API endpoint; otherwise comma-separated fnmatch patterns, so
    "POST /v1/payment_intents" is creation only and "POST /v1/payment_intents*" also confirms."""
    if not patterns:
        return True
    return any(
        fnmatch.fnmatchcase(endpoint, pattern.strip())
        for pattern in patterns.split(",")
        if pattern.strip()
    )


def stripe_error(status: int, error_type: str, message: str, **extra: str) -> web.Response:
    return web.json_response(
        {"error": {"type": error_type, "message": message, **extra}},
        status=status,
        headers={"Request-Id": request_id()},
    )


def request_id() -> str:
    return "req_" + secrets.token_hex(7)


class StripeBehaviour:
    """The hard-day half of `StripeProxy` (which holds the state these methods use)."""

    config: ProxyConfig
    stats: ProxyStats
    _session: aiohttp.ClientSession | None
    _api_rng: random.Random
    _windows: dict[str, deque[float]]
    _idempotent: OrderedDict[tuple[str, str, str], StoredResponse]
    _key_locks: dict[tuple[str, str, str], list]

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
                response = stripe_error(
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
        if probability <= 0 or not matches(endpoint, patterns):
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
            return stripe_error(
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
            response.headers["Request-Id"] = request_id()
        return response

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
