"""Where a webhook request's time goes, measured in one process (no generator): the
whole request through Django's WSGI handler, the default view alone, and each of its steps,
beside the floor's (bench/floor_urls.py). CPU is this process's (what a gunicorn worker
spends); wall adds the waits on PostgreSQL and Redis. Django must be set up on a benchmark
database whose events are no longer needed (events are added, and tasks published that no
worker will take): bench/webhook_ingestion.py runs it after the ladder (BENCH_PROFILE).
"""

import contextlib
import itertools
import json
import time
from collections.abc import Callable

from bench import _webhook_support as support

# Ids no earlier run used, so every "fresh" event is new to the database.
_ids = itertools.count(time.time_ns() // 1000)


def _body() -> tuple[bytes, str]:
    return support.signed(support.event_for(next(_ids), "presale-0-charge-1", "pi_profile"))


def _interleaved(
    rows: list[tuple[str, Callable, list]], calls: int
) -> list[tuple[str, float, float]]:
    """Mean CPU and wall ms per call of each row, the rows taking turns call by call (after a
    few warm-up rounds) so that a busy machine slows them all alike."""
    cpu = dict.fromkeys(range(len(rows)), 0.0)
    wall = dict.fromkeys(range(len(rows)), 0.0)
    for n in range(calls + 5):
        for index, (_, call, inputs) in enumerate(rows):
            started_cpu, started = time.process_time(), time.perf_counter()
            call(inputs[n])
            if n >= 5:
                cpu[index] += time.process_time() - started_cpu
                wall[index] += time.perf_counter() - started
    return [
        (name, round(cpu[i] * 1000 / calls, 3), round(wall[i] * 1000 / calls, 3))
        for i, (name, _, _) in enumerate(rows)
    ]


def breakdown(calls: int = 300) -> list[tuple[str, float, float]]:
    """(step, CPU ms, wall ms) per request: whole requests, the default view alone, and the
    building blocks a webhook view is made of."""
    import stripe
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, transaction
    from django.test import RequestFactory

    from bench import floor_urls
    from payments import gateway, webhooks
    from payments.models import StripeEvent

    factory = RequestFactory()
    handler = WSGIHandler()
    n = calls + 5
    app_urls = settings.ROOT_URLCONF

    def request(body_and_signature: tuple[bytes, str]):
        body, signature = body_and_signature
        return factory.post(
            support.WEBHOOK_PATH,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
            HTTP_HOST="127.0.0.1",
        )

    def through_django(urlconf: str) -> Callable[[dict], None]:
        def call(environ: dict) -> None:
            settings.ROOT_URLCONF = urlconf  # get_resolver() reads it on every request
            response = handler(environ, lambda status, headers: None)
            assert response.status_code == 200, response.content
            response.close()

        return call

    def create(event: dict, atomic: bool) -> None:
        with transaction.atomic() if atomic else contextlib.nullcontext():
            StripeEvent.objects.create(
                stripe_id=event["id"], type=event["type"], payload=event, livemode=False
            )

    def floor_check(body_and_signature: tuple[bytes, str]) -> dict:
        body, signature = body_and_signature
        stripe.WebhookSignature.verify_header(
            body, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
        )
        return json.loads(body)

    def floor_insert(body: bytes) -> None:
        event = json.loads(body)
        with connection.cursor() as cursor:
            cursor.execute(floor_urls._INSERT, [event["id"], event["type"], body.decode(), False])

    def environs() -> list[dict]:
        return [request(_body()).environ for _ in range(n)]

    def new_events() -> list[dict]:
        return [support.event_for(next(_ids), "presale-0-charge-1", "pi") for _ in range(n)]

    repeated = [_body() for _ in range(n)]
    for body_and_signature in repeated:
        webhooks.stripe_webhook(request(body_and_signature))
    existing = list(StripeEvent.objects.values_list("pk", flat=True)[:n])
    fresh = [_body() for _ in range(n)]
    rows = [
        ("default: whole request, new event", through_django(app_urls), environs()),
        ("default: whole request, repeat delivery", through_django(app_urls), [request(b).environ for b in repeated]),
        ("floor: whole request, new event", through_django("bench.floor_urls"), environs()),
        ("default: the view alone, new event", webhooks.stripe_webhook, [request(_body()) for _ in range(n)]),
        ("· gateway.verify_webhook", lambda b: gateway.verify_webhook(*b), fresh),
        ("· StripeEvent.objects.create, autocommit", lambda e: create(e, False), new_events()),
        ("· the same inside transaction.atomic()", lambda e: create(e, True), new_events()),
        ("· dispatch_event (Celery publish to Redis)", webhooks.dispatch_event, (existing * n)[:n]),
        ("floor: verify_header + json.loads", floor_check, fresh),
        ("floor: INSERT … ON CONFLICT DO NOTHING", floor_insert, [_body()[0] for _ in range(n)]),
    ]  # fmt: skip
    try:
        return _interleaved(rows, calls)
    finally:
        settings.ROOT_URLCONF = app_urls


def table(rows: list[tuple[str, float, float]]) -> str:
    """The breakdown as a Markdown table."""
    lines = ["| step | CPU ms | wall ms |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {cpu:.2f} | {wall:.2f} |" for name, cpu, wall in rows]
    return "\n".join(lines)
