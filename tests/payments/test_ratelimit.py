"""The pace of PaymentIntent creations, shared by every worker through Redis."""

import os
import threading
import time
import uuid

import pytest
import redis

from devtools.stripe_proxy import peak_per_second
from payments.ratelimit import RedisRateLimiter, TokenBucket, charge_rate_limiter

REDIS_URL = os.environ.get("PRESALE_TEST_REDIS_FANOUT_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        if os.environ.get("PRESALE_REQUIRE_REDIS"):
            pytest.fail(f"Redis is required here (PRESALE_REQUIRE_REDIS) but {REDIS_URL} is down.")
        pytest.skip(f"No Redis at {REDIS_URL}; CI runs this with PRESALE_REQUIRE_REDIS=1.")
    return REDIS_URL


def _grants(limiters, per_limiter: int, threads_each: int = 3) -> list[float]:
    """Each limiter stands for one worker process (own client, own threads); all acquire at once."""
    moments: list[float] = []
    lock = threading.Lock()

    def take(limiter, count):
        for _ in range(count):
            limiter.acquire()
            with lock:
                moments.append(time.monotonic())

    workers = [
        threading.Thread(target=take, args=(limiter, per_limiter // threads_each))
        for limiter in limiters
        for _ in range(threads_each)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return moments


def test_four_workers_sharing_redis_never_exceed_the_rate_together(redis_url):
    key = f"test-rate-{uuid.uuid4()}"
    limiters = [
        RedisRateLimiter(redis.Redis.from_url(redis_url), key, rate_per_second=10) for _ in range(4)
    ]
    started = time.monotonic()
    moments = _grants(limiters, per_limiter=9)
    assert len(moments) == 36
    # 36 grants at 10/s cannot take less than 3.5 s, however the threads are scheduled; the
    # moments are read after each grant returns, so a busy machine can bunch them a little.
    assert time.monotonic() - started >= 3.45
    assert peak_per_second(moments) <= 12


def test_without_the_shared_pace_the_same_workers_would_go_over(redis_url):
    """What the shared limiter prevents: each process pacing itself alone."""
    moments = _grants([TokenBucket(10, burst=1) for _ in range(4)], per_limiter=9)
    assert peak_per_second(moments) > 10


def test_the_limiter_is_shared_only_when_redis_is_configured(settings, redis_url):
    settings.CHARGE_RATE_LIMIT_URL = ""
    assert isinstance(charge_rate_limiter(), TokenBucket)
    settings.CHARGE_RATE_LIMIT_URL = redis_url
    assert isinstance(charge_rate_limiter(), RedisRateLimiter)


def test_peak_per_second_is_a_sliding_window():
    assert peak_per_second([]) == 0
    assert peak_per_second([0.0, 0.5, 0.99, 1.0, 1.98]) == 3  # (0.0, 0.99] … [0.99, 1.98]
    assert peak_per_second([0.0, 1.0, 2.0]) == 1
