"""Parts of bench/webhook_ingestion.py: signed events, the open-loop generator, the gunicorn
servers (the app, and the bare floor of bench/floor_urls.py) and the data they work on."""

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
import urllib.request

import aiohttp

from bench._support import ROOT, percentile

SECRET = "whsec_bench_secret"
DUPLICATES = 0.10
WEBHOOK_PATH = "/payments/stripe/webhook/"
FLOOR_SETTINGS = "bench.floor_settings"


def environment(mode: str | None, database_url: str, redis_url: str) -> dict[str, str]:
    """The servers' environment. `mode` None leaves STRIPE_WEBHOOK_PROCESSING unset, so the
    app runs its default (config/settings.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "DATABASE_CONN_MAX_AGE": "60",  # docs/deploy.md's production advice
            "REDIS_URL": redis_url,
            "DJANGO_DEBUG": "0",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        }
    )
    if mode is not None:
        env["STRIPE_WEBHOOK_PROCESSING"] = mode
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    """gunicorn exactly as the Procfile's `web` runs it (config/gunicorn.py), on a free port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "python:config.gunicorn"],
        cwd=ROOT,
        env={**env, "WEB_CONCURRENCY": str(workers), "GUNICORN_BIND": f"127.0.0.1:{port}"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            return server, base
        except OSError as error:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                name = env.get("DJANGO_SETTINGS_MODULE", "config.settings")
                raise SystemExit(f"gunicorn ({name}) did not start") from error
            time.sleep(0.2)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's master and its workers)."""
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            pids += [int(child) for child in children.read().split()]
    except OSError:
        pass
    for each in pids:
        try:
            with open(f"/proc/{each}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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


def plan_events(
    pairs: list[tuple[str, str]], cursor: int, count: int, rng: random.Random
) -> tuple[list[tuple[bytes, str]], int]:
    """`count` signed bodies: new events from `pairs[cursor:]`, 10 % of the posts repeating one
    of them; returns the bodies and the next cursor."""
    events: list[dict] = []
    for _ in range(count):
        if events and rng.random() < DUPLICATES:
            events.append(events[rng.randrange(len(events))])
        else:
            key, intent = pairs[cursor]
            events.append(event_for(cursor, key, intent))
            cursor += 1
    return [signed(event) for event in events], cursor


async def _load(url: str, rate: int, bodies: list[tuple[bytes, str]]) -> dict:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=4000)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes, signature: str) -> None:
            nonlocal errors
            started = time.perf_counter()
            headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        begin = time.perf_counter()
        for n, (body, signature) in enumerate(bodies):
            delay = begin + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, signature)))
        sent = time.perf_counter() - begin
        await asyncio.gather(*tasks)
        answered = time.perf_counter() - begin
    return {
        "rate": rate,
        # Sent per second: below the offered rate only when the generator itself fell behind.
        "sent": round(len(bodies) / sent) if sent else rate,
        # Answered per second, the last answer included: the server's throughput.
        "answered": round(len(bodies) / answered),
        "p50": round(percentile(latencies, 50), 1),
        "p99": round(percentile(latencies, 99), 1),
        "errors": errors,
    }


def load(url: str, rate: int, bodies: list[tuple[bytes, str]], server_pid: int) -> dict:
    """Open loop: one POST every 1/rate s whatever the answers; latency of each; and the
    server's CPU per request over the phase (independent of other load on the machine)."""
    cpu_before = cpu_seconds(server_pid)
    result = asyncio.run(_load(url, rate, bodies))
    result["cpu_ms"] = round((cpu_seconds(server_pid) - cpu_before) * 1000 / len(bodies), 2)
    result["load1"] = round(os.getloadavg()[0], 2)
    return result


def sustained(result: dict) -> bool:
    return result["p99"] < 100 and result["errors"] == 0


def prepare(total: int) -> list[tuple[str, str]]:
    """`total` pre-orders in charging, each with a started charge attempt, and a pool big
    enough; returns (charge_key, payment intent id) pairs. Django must be set up."""
    from django.utils import timezone

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


def clone_database(source_url: str, target_url: str) -> None:
    """A copy of the (just migrated, still empty) benchmark database for the floor server."""
    import psycopg

    source, target = source_url.rsplit("/", 1)[1], target_url.rsplit("/", 1)[1]
    if not target.startswith("presale_bench"):
        raise SystemExit(
            f"Refusing to drop {target!r}: benchmark databases start with presale_bench"
        )
    admin = target_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')


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
    """What the workers made of the stored events: tickets, never two per pre-order."""
    from django.db.models import Count, Sum

    from notifications.models import OutboundEmail
    from payments.models import StripeEvent
    from preorders.models import PreOrder
    from tickets.models import Ticket

    per_preorder = (
        Ticket.objects.filter(preorder__isnull=False).values("preorder").annotate(n=Count("id"))
    )
    emails = list(
        OutboundEmail.objects.filter(template="ticket").values("preorder").annotate(n=Count("id"))
    )
    return {
        "processed": StripeEvent.objects.exclude(status="received").count(),
        "paid": PreOrder.objects.filter(status__in=["paid", "ticket_sent"]).count(),
        "tickets": Ticket.objects.filter(preorder__isnull=False).count(),
        "double_tickets": sum(1 for row in per_preorder if row["n"] > 1),
        "ticket_emails": len(emails),
        "ticket_emails_max": max((row["n"] for row in emails), default=0),
        "duplicates_acknowledged": (
            StripeEvent.objects.aggregate(extra=Sum("deliveries"))["extra"] or 0
        )
        - StripeEvent.objects.count(),
        "expected": unique_events,
    }
