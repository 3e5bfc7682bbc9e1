"""The charge run at scale: 5,000 approved pre-orders charged through the Stripe stand-in
(devtools/stripe_proxy.py in front of localstripe: 400 ms ± 50 latency, Stripe's 25 requests/s
per endpoint with 429s, idempotency keys honoured), on PostgreSQL, ticket emails delivered by a
Celery worker on Redis. Baseline in the same run: the brief's one-after-another loop (the same
charge code with one pre-order at a time) over a sample.

    .venv/bin/python bench/charge_run.py      # writes "Charge run" in docs/benchmarks.md
"""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, fresh_database, percentile, write_section
from devtools.stripe_proxy_runner import running_localstripe, running_stripe_proxy

DATABASE_URL = os.environ.get(
    "BENCH_CHARGE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/presale_bench_charge"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PREORDERS = int(os.environ.get("BENCH_PREORDERS", "5000"))
SEQUENTIAL_SAMPLE = int(os.environ.get("BENCH_SEQUENTIAL", "100"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "24"))
LATENCY_MS, JITTER_MS, LIMIT = 400, 50, 25


def environment(stripe_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_"))}
    return {
        **env,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "0",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "STRIPE_API_BASE": stripe_url,
        "LOG_LEVEL": "WARNING",
    }


def stripe_customer(localstripe: str) -> tuple[str, str]:
    """One customer with one saved card (created directly, not through the slow proxy): every
    pre-order charges it, which is all a PaymentIntent needs."""
    import requests

    auth = ("sk_test_bench", "")
    customer = requests.post(f"{localstripe}/v1/customers", auth=auth, timeout=10).json()["id"]
    method = requests.post(
        f"{localstripe}/v1/payment_methods",
        auth=auth,
        data={"type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
              "card[exp_year]": "2034", "card[cvc]": "123"},
        timeout=10,
    ).json()["id"]  # fmt: skip
    requests.post(
        f"{localstripe}/v1/payment_methods/{method}/attach",
        auth=auth,
        data={"customer": customer},
        timeout=10,
    ).raise_for_status()
    return customer, method


def prepare(cycle_week: dt.date, count: int, customer: str, method: str, prefix: str) -> int:
    from django.utils import timezone

    from events.models import Event
    from events.selectors import cycle_for_week
    from members.models import Member
    from preorders.models import PreOrder
    from tickets.models import Ticket

    cycle = cycle_for_week(cycle_week)
    event = Event.objects.create(
        cycle=cycle, title=f"{prefix} night", venue="Hall", public_price_pence=2500,
        starts_at=cycle.charge_at + dt.timedelta(days=2),
    )  # fmt: skip
    Ticket.objects.bulk_create(
        (Ticket(event=event, code=f"{prefix}-{n}") for n in range(count)), batch_size=5000
    )
    members = Member.objects.bulk_create(
        (
            Member(email=f"{prefix}{n}@example.com", full_name=f"{prefix} {n}", password="!")
            for n in range(count)
        ),
        batch_size=5000,
    )
    PreOrder.objects.bulk_create(
        (
            PreOrder(
                member=member,
                event=event,
                cycle=cycle,
                status="approved",
                amount_pence=2250,
                stripe_customer_id=customer,
                payment_method_id=method,
                setup_intent_id=f"seti_{prefix}{n}",
                created_at=timezone.now(),
            )
            for n, member in enumerate(members)
        ),
        batch_size=5000,
    )
    cycle.closed_early_at = timezone.now() - dt.timedelta(seconds=1)
    cycle.save()
    return cycle.pk


def run(cycle_id: int, concurrency: int) -> dict:
    from django.conf import settings

    from payments import run_execution
    from payments.models import ChargeAttempt

    settings.CHARGE_CONCURRENCY = concurrency
    started = time.perf_counter()
    run_execution.run_charges(cycle_id, trigger="bench", early=True)
    elapsed = time.perf_counter() - started
    attempts = ChargeAttempt.objects.filter(preorder__cycle_id=cycle_id)
    return {
        "charges": attempts.count(),
        "succeeded": attempts.filter(status="succeeded").count(),
        "failed": attempts.filter(status="failed").count(),
        "open": attempts.filter(status="started").count(),
        "seconds": elapsed,
        "rate": attempts.count() / elapsed,
    }


def ticket_times(cycle_id: int) -> list[float]:
    """Seconds from each pre-order's claim (charging) to its ticket_sent."""
    from preorders.models import PreOrderLogEntry

    claimed = dict(
        PreOrderLogEntry.objects.filter(
            preorder__cycle_id=cycle_id, to_status="charging"
        ).values_list("preorder_id", "created_at")
    )
    sent = PreOrderLogEntry.objects.filter(
        preorder__cycle_id=cycle_id, to_status="ticket_sent"
    ).values_list("preorder_id", "created_at")
    return [(at - claimed[pk]).total_seconds() for pk, at in sent if pk in claimed]


def main() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    fresh_database(DATABASE_URL)
    with (
        running_localstripe() as localstripe,
        running_stripe_proxy(
            localstripe, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS, rate_limit=LIMIT, seed=1
        ) as proxy,
    ):
        os.environ.update(environment(proxy.url))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        customer, method = stripe_customer(localstripe)
        from events.selectors import current_cycle

        this_week = current_cycle().week_start
        sequential_cycle = prepare(
            this_week - dt.timedelta(weeks=1), SEQUENTIAL_SAMPLE, customer, method, "seq"
        )
        big_cycle = prepare(this_week, PREORDERS, customer, method, "big")

        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
             "--concurrency=2", "--loglevel=WARNING"],
            cwd=ROOT,
            env=environment(proxy.url),
        )  # fmt: skip
        try:
            sequential = run(sequential_cycle, concurrency=1)
            print(f"sequential: {sequential}")
            proxy.reset()
            concurrent = run(big_cycle, concurrency=CONCURRENCY)
            stats = proxy.stats()
            print(f"concurrent: {concurrent}")
            from preorders.models import PreOrder

            deadline = time.monotonic() + 600
            while (
                PreOrder.objects.filter(cycle_id=big_cycle, status="paid").exists()
                and time.monotonic() < deadline
            ):
                time.sleep(2)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        times = ticket_times(big_cycle)
        per_preorder = stats.get("payment_intents_by_preorder") or {}
        doubles = sum(1 for n in per_preorder.values() if n > 1)

    too_many = stats.get("rate_limited", stats.get("429", 0))
    ratio = concurrent["rate"] / sequential["rate"]
    print(f"speed-up {ratio:.1f}×, 429s {too_many}, doubles {doubles}")
    write_section(
        "Charge run",
        f"""Command: `.venv/bin/python bench/charge_run.py` (PostgreSQL; the Stripe stand-in
`devtools/stripe_proxy.py` in front of localstripe with {LATENCY_MS} ms ± {JITTER_MS} latency,
{LIMIT} requests/s per endpoint answered with 429 beyond, idempotency keys honoured; ticket
emails by a Celery worker (2 processes) on Redis; all on this 2-core machine).

| | pre-orders | charges/s | fraction of 25/s | wall time |
| --- | ---: | ---: | ---: | ---: |
| baseline: one after another (the brief's loop) | {SEQUENTIAL_SAMPLE:,} | {sequential["rate"]:.2f} | {sequential["rate"] / 25:.2f} | {sequential["seconds"]:.0f} s |
| the charge run ({CONCURRENCY} in flight, 24/s bucket) | {PREORDERS:,} | {concurrent["rate"]:.2f} | **{concurrent["rate"] / 25:.2f}** (target ≥ 0.9) | {concurrent["seconds"]:.0f} s |

Speed-up over the baseline in the same run: **{ratio:.1f}×** (target ≥ 9×). 429 answers from the
stand-in: {too_many} (each retried by the gateway; failures caused by them:
{concurrent["open"]} left open, {concurrent["failed"]} failed). PaymentIntents per pre-order at the
stand-in: {len(per_preorder):,} pre-orders charged, {doubles} more than once.

From claim to "ticket_sent" (payment, ticket, email delivered by the worker): p50
{percentile(times, 50):.1f} s, p95 {percentile(times, 95):.1f} s over {len(times):,} pre-orders.
""",
    )


if __name__ == "__main__":
    main()
