"""The Stripe stand-in's webhook relay: what localstripe sends to `/_proxy/webhook-relay` is
delivered to the app late, twice, out of order, or never, as configured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import typing
import urllib.parse
import urllib.request
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from devtools.stripe_proxy_config import ProxyConfig
from devtools.stripe_proxy_stats import ProxyStats

logger = logging.getLogger("devtools.stripe_proxy")


@dataclass
class HeldWebhook:
    body: bytes
    headers: dict[str, str]
    event_id: str | None
    event_type: str | None


class WebhookRelay:
    """The webhook half of `StripeProxy` (which holds the state these methods use)."""

    config: ProxyConfig
    stats: ProxyStats
    _session: aiohttp.ClientSession | None
    _held: list[HeldWebhook]
    _held_timer: asyncio.TimerHandle | None
    _webhook_rng: random.Random
    _tasks: set[asyncio.Task]

    def _spawn(self, coroutine: typing.Coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)  # a reference, or the loop may garbage-collect a running task
        task.add_done_callback(self._tasks.discard)

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
        hook = HeldWebhook(body, headers, event_id, event_type)
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

    def _hold(self, hook: HeldWebhook) -> None:
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

    def _release(self, hook: HeldWebhook) -> None:
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

    async def _deliver(self, hook: HeldWebhook, delay: float, copy: int) -> None:
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

    async def _post_webhook(self, target: str, hook: HeldWebhook) -> int | None:
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
