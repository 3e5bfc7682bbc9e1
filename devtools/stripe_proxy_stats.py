"""What the Stripe stand-in counts (`GET /_proxy/stats`) and the responses it keeps for
idempotency keys."""

from __future__ import annotations

import typing
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict


def peak_per_second(times: list[float]) -> int:
    """The most of these moments that fall within any one second (a sliding window)."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


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
