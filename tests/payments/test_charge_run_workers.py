"""The charge run across real worker processes (`celery -A config worker`), on Redis, through the
Stripe stand-in (latency, a per-endpoint limit answered with 429): several workers share one run
and one pace; a worker killed mid-run loses nothing and charges nothing twice, and the catch-up
beat schedules finishes what it left."""

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from devtools.stripe_proxy_runner import running_stripe_proxy
from payments.models import ChargeAttempt, ChargeRun
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS
from tests.test_charge_run_kill import _command_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]

ROOT = Path(__file__).resolve().parent.parent.parent
BROKER = os.environ.get("PRESALE_TEST_REDIS_WORKERS_URL", "redis://127.0.0.1:6379/12")
CHARGES = "POST /v1/payment_intents"
STRIPE_LIMIT = 10  # the stand-in's "Stripe": 10 PaymentIntent creations a second, 429 beyond
RATE = 9  # ours, just under it (as 24 is under Stripe's 25)


@pytest.fixture
def broker() -> str:
    try:
        client = redis.Redis.from_url(BROKER, socket_connect_timeout=1)
        client.ping()
        client.flushdb()  # a database of its own, emptied of earlier runs' messages
    except redis.ConnectionError:
        if os.environ.get("PRESALE_REQUIRE_REDIS"):
            pytest.fail(f"Redis is required here (PRESALE_REQUIRE_REDIS) but {BROKER} is down.")
        pytest.skip(f"No Redis at {BROKER}; CI runs this with PRESALE_REQUIRE_REDIS=1.")
    return BROKER


@pytest.fixture
def stand_in(stripe_server):
    with running_stripe_proxy(
        stripe_server, seed=3, latency_ms=150, jitter_ms=30, rate_limit=STRIPE_LIMIT
    ) as proxy:
        yield proxy


class Processes:
    """Worker and beat processes of this test, each logging to a file; all stopped at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env, self.running = folder, env, {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = process
        return process

    def worker(self, name: str) -> subprocess.Popen:
        return self.start(
            name, "worker", "--pool=threads", "--concurrency=1", f"--hostname={name}@%h",
            "--without-gossip", "--without-mingle", "--loglevel=INFO",
        )  # fmt: skip

    def beat(self) -> subprocess.Popen:
        schedule = self.folder / "beat-schedule"
        return self.start("beat", "beat", f"--schedule={schedule}", "--loglevel=INFO")

    def kill(self, name: str) -> None:
        os.killpg(self.running[name].pid, signal.SIGKILL)
        self.running.pop(name).wait(timeout=10)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.running.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def processes(tmp_path, broker, stand_in):
    env = _command_env(
        stand_in.url,
        CELERY_BROKER_URL=broker,
        CELERY_TASK_ALWAYS_EAGER="false",
        CHARGE_RATE_LIMIT_URL=broker,
        CHARGE_RATE_LIMIT_KEY=f"test-{uuid.uuid4()}",
        CHARGE_RATE_PER_SECOND=str(RATE),
        CHARGE_CONCURRENCY="8",
        CHARGE_RUN_WORKERS="2",
        CHARGE_RUN_STALE_SECONDS="3",
        CHARGE_CATCH_UP_SECONDS="2",
        STRIPE_MAX_NETWORK_RETRIES="2",
    )
    running = Processes(tmp_path, env)
    yield running
    running.stop_all()


def _wait_for(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            statuses = Counter(PreOrder.objects.values_list("status", flat=True))
            attempts = Counter(ChargeAttempt.objects.values_list("run_id", "status"))
            runs = list(ChargeRun.objects.values_list("pk", "finished_at", "interrupted_at"))
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}: pre-orders {dict(statuses)}, "
                f"attempts by run {dict(attempts)}, runs {runs}"
            )
        time.sleep(0.25)
    return time.monotonic() - started


def _place(factory, count: int, declined: int = 2) -> tuple[list[PreOrder], dict[int, str]]:
    cards = [SUCCEEDS] * (count - declined) + [DECLINED_OFF_SESSION] * declined
    preorders = [factory(card) for card in cards]
    expected = {
        p.pk: Status.FAILED if card == DECLINED_OFF_SESSION else Status.TICKET_SENT
        for p, card in zip(preorders, cards, strict=True)
    }
    return preorders, expected


def _make_due(cycle_id: int) -> None:
    """The cycle's Tuesday 19:00 has just passed."""
    from events.models import PresaleCycle

    now = timezone.now()
    PresaleCycle.objects.filter(pk=cycle_id).update(
        opens_at=now - dt.timedelta(days=8),
        closes_at=now - dt.timedelta(days=1),
        charge_at=now - dt.timedelta(seconds=5),
        closed_early_at=None,
    )


def _settled(expected: dict[int, str]):
    return lambda: dict(PreOrder.objects.values_list("pk", "status")) == expected


def _shards_that_claimed(log: str) -> list[int]:
    return [
        int(n) for n in re.findall(r"charge_run_shard\[[^\]]+\] succeeded in [\d.]+s: (\d+)", log)
    ]


def test_two_workers_share_one_run_and_one_pace(processes, stand_in, approved_preorder_factory):
    preorders, expected = _place(approved_preorder_factory, 45)
    cycle_id = preorders[0].cycle_id
    close_window(cycle_id)
    _make_due(cycle_id)
    processes.worker("one")
    processes.worker("two")
    processes.beat()  # the catch-up finds the cycle due and starts its run

    _wait_for(_settled(expected), 120, "every pre-order to settle")

    stats = stand_in.stats()
    assert set(stats["payment_intents_by_preorder"].values()) == {1}  # one charge each, at Stripe
    assert len(stats["payment_intents_by_preorder"]) == 43
    assert stats["rate_limited_by_endpoint"].get(CHARGES, 0) == 0
    assert stats["charge_requests_peak_per_second"] <= STRIPE_LIMIT
    # Both processes took part: each ran a shard that claimed pre-orders.
    claimed = _shards_that_claimed(processes.log("one")) + _shards_that_claimed(
        processes.log("two")
    )
    assert sum(claimed) == 45
    assert all(_shards_that_claimed(processes.log(name)) for name in ("one", "two")), claimed
    run = ChargeRun.objects.get()
    assert (run.state, run.workers, run.claimed, run.trigger) == ("finished", 2, 45, "schedule")


def test_a_worker_killed_mid_run_loses_nothing_and_the_catch_up_completes_the_run(
    processes, stand_in, approved_preorder_factory
):
    preorders, expected = _place(approved_preorder_factory, 48, declined=4)  # the pool holds 50
    cycle_id = preorders[0].cycle_id
    close_window(cycle_id)
    _make_due(cycle_id)
    processes.worker("one")
    processes.worker("two")
    processes.beat()

    # Half-way (48 charges at 9/s take ~5 s), one worker dies with charges in flight.
    _wait_for(
        lambda: ChargeAttempt.objects.exclude(status="started").count() >= 20, 60, "half the run"
    )
    processes.kill("one")
    killed_at = time.monotonic()

    # The other worker finishes the cycle's charges; beat's catch-up marks the run interrupted
    # and starts another, which settles what the dead worker left in flight. (A ticket email the
    # dead worker held is the email sweep's, minutes later: paid with its ticket is settled.)
    charged = {pk: {Status.PAID, Status.TICKET_SENT} if status == Status.TICKET_SENT else {status}
               for pk, status in expected.items()}  # fmt: skip

    def settled() -> bool:
        now = dict(PreOrder.objects.values_list("pk", "status"))
        return all(now[pk] in allowed for pk, allowed in charged.items())

    took = _wait_for(settled, 120, "every pre-order to settle after the kill")
    assert not PreOrder.objects.filter(status=Status.PAID, ticket__isnull=True).exists()
    assert time.monotonic() - killed_at < 120
    stats = stand_in.stats()
    assert set(stats["payment_intents_by_preorder"].values()) == {1}
    assert len(stats["payment_intents_by_preorder"]) == 44
    assert stats["rate_limited_by_endpoint"].get(CHARGES, 0) == 0
    _wait_for(
        lambda: ChargeRun.objects.filter(finished_at__isnull=False).exists(), 30, "a finished run"
    )
    runs = [run.state for run in ChargeRun.objects.order_by("pk")]
    assert runs[0] == "interrupted" and runs[-1] == "finished", runs
    print(f"settled {took:.1f} s after the kill; runs: {runs}")
