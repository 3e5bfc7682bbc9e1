"""Webhook ingestion under load: signed payment_intent.succeeded events (10 % duplicates) posted
at rising rates to the app served by gunicorn (sync workers, DEBUG off) on PostgreSQL, with the
Redis broker. The same open-loop generator is pointed at /healthz at each rate as the baseline.
Afterwards a Celery worker processes every stored event, and the tickets are checked: one per
paid pre-order, never two.

    .venv/bin/python bench/webhook_ingestion.py     # writes "Webhook ingestion" in docs/benchmarks.md
"""

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench._support import ROOT, fresh_database, percentile, write_section

DATABASE_URL = os.environ.get(
    "BENCH_WEBHOOK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/presale_bench_webhooks"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "whsec_bench_secret"
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "150,250,350,450").split(",")]
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
WARMUP_RATE, WARMUP_SECONDS = 50, 3
MODES = os.environ.get("BENCH_MODES", "task,polled").split(",")
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "4"))
DUPLICATES = 0.10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(mode: str = "task") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_"))}
    return {
        **env,
        "STRIPE_WEBHOOK_PROCESSING": mode,
        "DATABASE_URL": DATABASE_URL,
        "DATABASE_CONN_MAX_AGE": "60",
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "0",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }


def prepare(total: int) -> list[tuple[str, str]]:
    """`total` pre-orders in charging, each with a started charge attempt, and a pool big enough;
    returns (charge_key, payment intent id) pairs."""
    os.environ.update(environment())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from events.models import Event
    from events.selectors import current_cycle
    from members.models import Member
    from payments.models import ChargeAttempt
    from preorders.models import PreOrder
    from tickets.models import Ticket

    cycle = current_cycle()
    event = Event.objects.create(
        cycle=cycle,
        title="Load Night",
        venue="Hall",
        public_price_pence=2500,
        starts_at=cycle.charge_at + dt.timedelta(days=2),
    )
    Ticket.objects.bulk_create(
        (Ticket(event=event, code=f"LOAD-{n}") for n in range(total)), batch_size=5000
    )
    members = Member.objects.bulk_create(
        (Member(email=f"m{n}@example.com", full_name=f"M {n}", password="!") for n in range(total)),
        batch_size=5000,
    )
    now = timezone.now()
    preorders = PreOrder.objects.bulk_create(
        (
            PreOrder(
                member=member,
                event=event,
                cycle=cycle,
                status="charging",
                amount_pence=2250,
                stripe_customer_id=f"cus_{n}",
                payment_method_id=f"pm_{n}",
                setup_intent_id=f"seti_{n}",
                created_at=now,
            )
            for n, member in enumerate(members)
        ),
        batch_size=5000,
    )
    ChargeAttempt.objects.bulk_create(
        (
            ChargeAttempt(
                preorder=preorder,
                idempotency_key=f"presale-{preorder.pk}-charge-1",
                amount_pence=2250,
            )
            for preorder in preorders
        ),
        batch_size=5000,
    )
    return [(f"presale-{p.pk}-charge-1", f"pi_load{p.pk}") for p in preorders]


def signed(event: dict) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={mac}"


def event_for(n: int, charge_key: str, intent_id: str) -> dict:
    return {
        "id": f"evt_load{n}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 2250,
                "currency": "gbp",
                "metadata": {"charge_key": charge_key},
            }
        },
    }


async def load(
    url: str, rate: int, bodies: list[tuple[bytes, str]] | None, seconds: float = SECONDS
) -> dict:
    """Open loop: a request every 1/rate s whatever the answers; latency per request."""
    latencies: list[float] = []
    errors = 0
    count = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                if bodies is None:
                    async with session.get(url) as response:
                        await response.read()
                else:
                    body, signature = bodies[n]
                    async with session.post(
                        url,
                        data=body,
                        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
                    ) as response:
                        await response.read()
                if response.status != 200:
                    errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        begin = time.perf_counter()
        for n in range(count):
            delay = begin + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    return {
        "rate": rate,
        "achieved": round(count / elapsed),
        "p50": round(percentile(latencies, 50), 1),
        "p99": round(percentile(latencies, 99), 1),
        "errors": errors,
    }


def wait_for(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def plan_events(pairs: list[tuple[str, str]], cursor: int, rate: int, seconds: float, rng):
    """Signed bodies for one level: its own events, 10 % of the posts repeating one of them."""
    count = int(rate * seconds)
    events = []
    for _ in range(count):
        if events and rng.random() < DUPLICATES:
            events.append(events[rng.randrange(len(events))])
        else:
            key, intent = pairs[cursor]
            events.append(event_for(cursor, key, intent))
            cursor += 1
    return [signed(event) for event in events], cursor


def run_mode(mode: str, pairs, cursor: int, rng) -> tuple[list, int]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(GUNICORN_WORKERS),
            "--bind", f"127.0.0.1:{port}", "--worker-class", "sync", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=environment(mode),
    )  # fmt: skip
    rows = []
    try:
        base = f"http://127.0.0.1:{port}"
        hook = f"{base}/payments/stripe/webhook/"
        wait_for(f"{base}/healthz")
        # Warm up every worker (imports, database connections) before measuring.
        bodies, cursor = plan_events(pairs, cursor, WARMUP_RATE, WARMUP_SECONDS, rng)
        asyncio.run(load(hook, WARMUP_RATE, bodies, WARMUP_SECONDS))
        asyncio.run(load(f"{base}/healthz", WARMUP_RATE, None, WARMUP_SECONDS))
        for rate in RATES:
            bodies, cursor = plan_events(pairs, cursor, rate, SECONDS, rng)
            baseline = asyncio.run(load(f"{base}/healthz", rate, None))
            hooks = asyncio.run(load(hook, rate, bodies))
            rows.append((rate, baseline, hooks))
            print(
                f"[{mode}] {rate}/s  healthz p99 {baseline['p99']} ms  webhook p50 "
                f"{hooks['p50']} p99 {hooks['p99']} ms, achieved {hooks['achieved']}/s, "
                f"errors {hooks['errors']}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows, cursor


def main() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    fresh_database(DATABASE_URL)
    per_mode = int(WARMUP_RATE * WARMUP_SECONDS) + sum(int(rate * SECONDS) for rate in RATES)
    pairs = prepare(per_mode * len(MODES))
    rng = random.Random(7)
    cursor = 0
    results = {}
    for mode in MODES:
        results[mode], cursor = run_mode(mode, pairs, cursor, rng)
    unique_events = cursor

    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
         "--concurrency=4", "--loglevel=WARNING"],
        cwd=ROOT,
        env=environment("polled"),
    )  # fmt: skip
    beat_like = subprocess.Popen(
        [sys.executable, "-c", POLL_LOOP],
        cwd=ROOT,
        env=environment("polled"),
    )  # fmt: skip
    try:
        check = verify(unique_events)
        while check["processed"] < unique_events and time.perf_counter() - started < 900:
            time.sleep(2)
            check = verify(unique_events)
    finally:
        beat_like.terminate()
        worker.terminate()
        worker.wait(timeout=60)
    processing = time.perf_counter() - started
    print(check, f"processing took {processing:.0f} s")

    sections = []
    for mode, rows in results.items():
        sustained = [r for r, _, hooks in rows if hooks["p99"] < 100 and hooks["errors"] == 0]
        lines = [
            f"`STRIPE_WEBHOOK_PROCESSING={mode}`: highest rate sustained with p99 < 100 ms and "
            f"no errors: **{max(sustained) if sustained else 0}/s** (target ≥ 250/s).",
            "",
            "| offered /s | achieved /s | webhook p50 ms | webhook p99 ms | errors "
            "| /healthz p99 ms (baseline) | p99 ratio |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for rate, baseline, hooks in rows:
            ratio = hooks["p99"] / baseline["p99"] if baseline["p99"] else 0
            lines.append(
                f"| {rate} | {hooks['achieved']} | {hooks['p50']} | {hooks['p99']} "
                f"| {hooks['errors']} | {baseline['p99']} | {ratio:.1f}× |"
            )
        sections.append("\n".join(lines))
    write_section(
        "Webhook ingestion",
        f"""Command: `.venv/bin/python bench/webhook_ingestion.py` (PostgreSQL, Redis broker,
gunicorn with {GUNICORN_WORKERS} sync workers and DEBUG off, an open-loop asyncio generator on the
same 2 cores posting signed `payment_intent.succeeded` events for {SECONDS:.0f} s at each rate after
a warm-up, 10 % of them repeats; the same generator against `/healthz` at each rate is the
baseline). Each request verifies the signature and stores the event once; with `task` it also
publishes a Celery task for it, with `polled` a beat task picks stored events up every 2 s.

"""
        + "\n\n".join(sections)
        + f"""

Afterwards Celery workers (4 processes) processed all {unique_events:,} distinct events in
{processing:.0f} s: {check["paid"]:,} pre-orders paid, {check["tickets"]:,} tickets assigned,
{check["double_tickets"]} pre-orders with more than one ticket, at most {check["ticket_emails_max"]}
ticket email per pre-order, {check["duplicates_acknowledged"]:,} duplicate deliveries acknowledged
without effect.
""",
    )


# Stands in for beat in the processing phase: hand stored events to the workers.
POLL_LOOP = """
import os, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from payments.models import StripeEvent
from payments.tasks import process_stripe_event
sent = set()
while True:
    for pk in StripeEvent.objects.filter(status="received").values_list("pk", flat=True):
        if pk not in sent:
            process_stripe_event.delay(pk)
            sent.add(pk)
    time.sleep(1)
"""


def verify(unique_events: int) -> dict:
    import django

    django.setup()
    from django.db.models import Count, Sum

    from notifications.models import OutboundEmail
    from payments.models import StripeEvent
    from preorders.models import PreOrder
    from tickets.models import Ticket

    per_preorder = (
        Ticket.objects.filter(preorder__isnull=False).values("preorder").annotate(n=Count("id"))
    )
    emails = (
        OutboundEmail.objects.filter(template="ticket").values("preorder").annotate(n=Count("id"))
    )
    return {
        "processed": StripeEvent.objects.exclude(status="received").count(),
        "paid": PreOrder.objects.filter(status__in=["paid", "ticket_sent"]).count(),
        "tickets": Ticket.objects.filter(preorder__isnull=False).count(),
        "double_tickets": sum(1 for row in per_preorder if row["n"] > 1),
        "ticket_emails_max": max((row["n"] for row in emails), default=0),
        "duplicates_acknowledged": (
            StripeEvent.objects.aggregate(extra=Sum("deliveries"))["extra"] or 0
        )
        - StripeEvent.objects.count(),
        "expected": unique_events,
    }


if __name__ == "__main__":
    main()
