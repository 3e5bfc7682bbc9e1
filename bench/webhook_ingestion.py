"""Webhook ingestion under load, against its floor. Signed payment_intent.succeeded events (10 %
repeats) are posted open-loop at rising rates to two gunicorn servers started the same way
(`gunicorn config.wsgi --config python:config.gunicorn`, same WEB_CONCURRENCY) in the same run:

- the floor: a bare view that only verifies the signature and inserts the row (bench/floor_urls.py,
  mounted only by bench/floor_settings.py), on its own copy of the database;
- the app in its default configuration (STRIPE_WEBHOOK_PROCESSING unset: config/settings.py's
  default), and with BENCH_POLLED=1 also the app with STRIPE_WEBHOOK_PROCESSING=polled.

At each rate the servers take turns with the same bodies (the order rotates from rate to rate);
a server leaves the ladder after BENCH_STOP_AFTER failed rates in a row. Afterwards a Celery worker
processes every event the app stored and the tickets are checked (one per paid pre-order, never
two), and the default view's cost is broken down in-process (bench/_webhook_profile.py).

    .venv/bin/python bench/webhook_ingestion.py     # writes "Webhook ingestion" in docs/benchmarks.md

Environment (defaults in brackets):
  BENCH_RATES             offered rates /s, "start:stop:step" or "a,b,c" [150:600:50]
  BENCH_SECONDS           seconds per rate and server [6]
  BENCH_STOP_AFTER        failed rates in a row before a server leaves the ladder [2]
  BENCH_GUNICORN_WORKERS  WEB_CONCURRENCY of every server [4]
  BENCH_POLLED            1: also measure STRIPE_WEBHOOK_PROCESSING=polled (≈ +50 % time) [0]
  BENCH_PROCESS           0: skip the processing and ticket check [1]
  BENCH_PROFILE           0: skip the in-process breakdown [1]
  BENCH_WEBHOOK_DATABASE_URL  the app's database; the floor's is the same name + "_floor"
                          [postgres://postgres@127.0.0.1:5432/presale_bench_webhooks]
  BENCH_REDIS_URL         the broker, flushed first [redis://127.0.0.1:6379/14]
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _webhook_support as support
from bench._support import ROOT, fresh_database, write_section

DATABASE_URL = os.environ.get(
    "BENCH_WEBHOOK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/presale_bench_webhooks"
)
FLOOR_DATABASE_URL = DATABASE_URL + "_floor"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _rates(spec: str) -> list[int]:
    if ":" in spec:
        start, stop, step = (int(part) for part in spec.split(":"))
        return list(range(start, stop + 1, step))
    return [int(rate) for rate in spec.split(",")]


RATES = _rates(os.environ.get("BENCH_RATES", "150:600:50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
STOP_AFTER = int(os.environ.get("BENCH_STOP_AFTER", "2"))
WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "4"))
POLLED = os.environ.get("BENCH_POLLED", "0") == "1"
PROCESS = os.environ.get("BENCH_PROCESS", "1") == "1"
PROFILE = os.environ.get("BENCH_PROFILE", "1") == "1"
WARMUP_RATE, WARMUP_SECONDS = 50, 3
TARGET_RATIO = 0.8


def setup(default_env: dict[str, str]) -> str:
    """Fresh databases (the floor's a copy of the migrated, empty one); Django set up in this
    process with the app's default environment. Returns the default processing mode."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    fresh_database(DATABASE_URL)
    os.environ.update(default_env)
    os.environ.pop("STRIPE_WEBHOOK_PROCESSING", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    connections.close_all()
    support.clone_database(DATABASE_URL, FLOOR_DATABASE_URL)
    return settings.STRIPE_WEBHOOK_PROCESSING


def ladder(servers: dict, pairs: list[tuple[str, str]]) -> dict[str, list[dict]]:
    """Every rate for every server still in, the servers taking turns; returns rows per server."""
    rng = random.Random(7)
    cursor = 0
    names = list(servers)
    results: dict[str, list[dict]] = {name: [] for name in names}
    failures = dict.fromkeys(names, 0)
    warmup = int(WARMUP_RATE * WARMUP_SECONDS)
    bodies: dict[str, list] = {}
    for name in names:
        # Each app mode stores its own events; the floor (own database) repeats the default's.
        if name != "floor":
            bodies[name], cursor = support.plan_events(pairs, cursor, warmup, rng)
    bodies["floor"] = bodies["default"]
    for name, (server, base) in servers.items():
        # Imports, database connections and first queries of every worker, before measuring.
        support.load(base + support.WEBHOOK_PATH, WARMUP_RATE, bodies[name], server.pid)
    for step, rate in enumerate(RATES):
        count = int(rate * SECONDS)
        for name in names:
            if name != "floor":
                bodies[name], cursor = support.plan_events(pairs, cursor, count, rng)
        bodies["floor"] = bodies["default"]
        turn = names[step % len(names) :] + names[: step % len(names)]
        for name in turn:
            if failures[name] >= STOP_AFTER:
                continue
            server, base = servers[name]
            time.sleep(1)  # the previous phase's connections closed, PostgreSQL settled
            row = support.load(base + support.WEBHOOK_PATH, rate, bodies[name], server.pid)
            results[name].append(row)
            failures[name] = 0 if support.sustained(row) else failures[name] + 1
            print(
                f"[{name}] {rate}/s  p50 {row['p50']} p99 {row['p99']} ms  errors {row['errors']}"
                f"  sent {row['sent']}/s answered {row['answered']}/s  server CPU "
                f"{row['cpu_ms']} ms/request  load {row['load1']}",
                flush=True,
            )
        if all(failures[name] >= STOP_AFTER for name in names):
            break
    return results


def process_all() -> tuple[dict, float]:
    """A Celery worker (4 processes) and a beat stand-in handle every stored event, up to the
    ticket emails."""
    from payments.models import StripeEvent

    unique_events = StripeEvent.objects.count()
    env = support.environment("polled", DATABASE_URL, REDIS_URL)
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
         "--concurrency=4", "--loglevel=WARNING"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    beat_like = subprocess.Popen([sys.executable, "-c", support.POLL_LOOP], cwd=ROOT, env=env)
    try:
        check = support.verify(unique_events)
        # Done when every event is handled and every paid pre-order has its ticket email.
        while (
            check["processed"] < unique_events or check["ticket_emails"] < check["paid"]
        ) and time.perf_counter() - started < 900:
            time.sleep(2)
            check = support.verify(unique_events)
    finally:
        beat_like.terminate()
        worker.terminate()
        beat_like.wait(timeout=30)
        worker.wait(timeout=60)
    return check, time.perf_counter() - started


def main() -> None:
    load_before = os.getloadavg()
    default_env = support.environment(None, DATABASE_URL, REDIS_URL)
    default_mode = setup(default_env)
    targets = {
        "floor": {
            **support.environment(None, FLOOR_DATABASE_URL, REDIS_URL),
            "DJANGO_SETTINGS_MODULE": support.FLOOR_SETTINGS,
        },
        "default": default_env,
    }
    if POLLED:
        targets["polled"] = support.environment("polled", DATABASE_URL, REDIS_URL)
    app_targets = len(targets) - 1
    per_target = int(WARMUP_RATE * WARMUP_SECONDS) + sum(int(rate * SECONDS) for rate in RATES)
    pairs = support.prepare(per_target * app_targets)

    servers = {}
    try:
        for name, env in targets.items():
            servers[name] = support.start_server(env, WORKERS)
        results = ladder(servers, pairs)
    finally:
        for server, _ in servers.values():
            support.stop_server(server)
    load_after = os.getloadavg()

    check, processing = process_all() if PROCESS else (None, 0.0)
    if check:
        print(check, f"processing took {processing:.0f} s")
    profile = None
    if PROFILE:
        from bench import _webhook_profile

        profile = _webhook_profile.breakdown()
        print(profile)

    from bench._webhook_report import section

    write_section(
        "Webhook ingestion",
        section(
            results=results,
            default_mode=default_mode,
            loads=(load_before, load_after),
            check=check,
            processing=processing,
            profile=profile,
            config={
                "workers": WORKERS,
                "seconds": SECONDS,
                "rates": RATES,
                "stop_after": STOP_AFTER,
                "target_ratio": TARGET_RATIO,
            },
        ),
    )


if __name__ == "__main__":
    main()
