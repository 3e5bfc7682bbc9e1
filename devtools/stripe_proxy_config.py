"""The Stripe stand-in's knobs (`ProxyConfig`): the JSON keys of `POST /_proxy/config` and, with
dashes, the flags of `python -m devtools.stripe_proxy`."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any


@dataclass
class ProxyConfig:
    """Every knob of the proxy. The field names are the JSON keys of `POST /_proxy/config` and,
    with dashes, the CLI flags (`latency_ms` → `--latency-ms`)."""

    upstream: str = "http://127.0.0.1:8420"
    # Added to every /v1/ call the rate limit lets through, before it is handled: latency_ms ±
    # jitter_ms (uniform, never < 0). A 429 answers at once, as Stripe's does.
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


def cli_parser() -> argparse.ArgumentParser:
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
