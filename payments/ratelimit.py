"""A token bucket shared by the threads of one charge run, to stay under Stripe's per-endpoint
limit (25 PaymentIntent creations a second). The SDK still retries a 429 with backoff."""

import threading
import time


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
