"""Pacing the charge run under Stripe's per-endpoint limit (25 PaymentIntent creations a second).

Two limiters with one method, `acquire()`, which blocks until the caller may send one request:
- `TokenBucket`, in-process, for the threads of one process (the embedded default: one worker);
- `RedisRateLimiter`, shared by every thread of every process on every machine that points at
  the same Redis: the run fans out over Celery workers, and together they must stay under the
  limit. It is GCRA (a token bucket kept as one timestamp), done atomically in a Lua script on
  Redis's own clock, so machines whose clocks disagree still share one pace.
`charge_rate_limiter()` picks one from the settings. The SDK still retries a 429 with backoff."""

import threading
import time
from typing import Protocol

from django.conf import settings


class RateLimiter(Protocol):
    def acquire(self) -> None: ...


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: int | None = None) -> None:
        self.rate = float(rate_per_second)
        self.capacity = float(burst if burst is not None else max(1, int(rate_per_second)))
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


# KEYS[1]: the limiter's key. ARGV[1]: microseconds between requests; ARGV[2]: tolerance in
# microseconds (how far ahead of its slot a request may go). Returns 0 when the caller may go
# now, else microseconds to wait. The key holds the "theoretical arrival time" of the next
# request; it expires when idle.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return 0
"""


class RedisRateLimiter:
    """GCRA with no tolerance: requests evenly spaced, any one-second window sees at most the
    rate (24/s under Stripe's 25). A tolerance (a request going up to a quarter interval before
    its slot, to make up for threads that wake late on a busy machine) was measured and let 26
    requests into one second at the stand-in, over Stripe's limit: the pace stays strict, and
    the rate a loaded machine loses is in docs/benchmarks.md."""

    def __init__(self, client, key: str, rate_per_second: float) -> None:
        self.key = key
        self.interval_us = max(1, round(1_000_000 / float(rate_per_second)))
        self.tolerance_us = 0
        self._script = client.register_script(_GCRA)

    def acquire(self) -> None:
        while True:
            wait_us = int(self._script(keys=[self.key], args=[self.interval_us, self.tolerance_us]))
            if wait_us <= 0:
                return
            time.sleep(wait_us / 1_000_000)


def charge_rate_limiter() -> RateLimiter:
    """The pace for PaymentIntent creations: shared through Redis when CHARGE_RATE_LIMIT_URL
    (default: REDIS_URL) is set, else this process's own. No burst: paced evenly, any one-second
    window sees at most the rate."""
    rate = settings.CHARGE_RATE_PER_SECOND
    url = settings.CHARGE_RATE_LIMIT_URL
    if not url:
        return TokenBucket(rate, burst=1)
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return RedisRateLimiter(client, f"{settings.CHARGE_RATE_LIMIT_KEY}:payment_intents", rate)
