"""The "Webhook ingestion" section of docs/benchmarks.md, from bench/webhook_ingestion.py's
measurements."""

import itertools

from bench._webhook_profile import table as profile_table
from bench._webhook_support import sustained

LABELS = {
    "floor": "floor: bare view (verify + INSERT)",
    "default": "app, default configuration",
    "polled": "app, `STRIPE_WEBHOOK_PROCESSING=polled`",
}


def held(rows: list[dict]) -> int:
    """The highest rate held with every lower rate held too (p99 < 100 ms, no errors)."""
    best = 0
    for row in rows:
        if not sustained(row):
            break
        best = row["rate"]
    return best


def _first_failure(rows: list[dict]) -> str:
    failed = [row for row in rows if not sustained(row)]
    return f"{failed[0]['rate']}/s" if failed else "none in the ladder"


def _per_rate(rows: list[dict]) -> str:
    lines = [
        "| offered /s | sent /s | answered /s | p50 ms | p99 ms | errors | server CPU ms/request "
        "| load (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        mark = "" if sustained(row) else " ✗"
        lines.append(
            f"| {row['rate']}{mark} | {row['sent']} | {row['answered']} | {row['p50']} "
            f"| {row['p99']} | {row['errors']} | {row['cpu_ms']} | {row['load1']} |"
        )
    return "\n".join(lines)


def _cpu_at_lowest(rows: list[dict]) -> float:
    return rows[0]["cpu_ms"] if rows else 0.0


def section(
    *,
    results: dict[str, list[dict]],
    default_mode: str,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
    check: dict | None,
    processing: float,
    profile: list[tuple[str, float, float]] | None,
    config: dict,
) -> str:
    floor_rate = held(results["floor"])
    default_rate = held(results["default"])
    ratio = default_rate / floor_rate if floor_rate else 0.0
    target = config["target_ratio"]
    during = [row["load1"] for rows in results.values() for row in rows]
    rates = config["rates"]
    ladder = (
        f"{rates[0]}–{rates[-1]}/s in steps of {rates[1] - rates[0]}"
        if len(rates) > 2 and len({b - a for a, b in itertools.pairwise(rates)}) == 1
        else ", ".join(f"{rate}/s" for rate in rates)
    )
    summary = [
        "| server | highest rate held (p99 < 100 ms, 0 errors) | first rate missed "
        "| server CPU ms/request at the lowest rate |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, rows in results.items():
        summary.append(
            f"| {LABELS[name]} | **{held(rows)}/s** | {_first_failure(rows)} "
            f"| {_cpu_at_lowest(rows)} |"
        )
    verdict = "met" if ratio >= target else "**not met**"
    floor_cpu, default_cpu = _cpu_at_lowest(results["floor"]), _cpu_at_lowest(results["default"])
    parts = [
        f"""Command: `.venv/bin/python bench/webhook_ingestion.py` (PostgreSQL, Redis broker). Each
server is `gunicorn config.wsgi --config python:config.gunicorn` (the Procfile's `web`:
{config["workers"]} sync workers via `WEB_CONCURRENCY`, app preloaded, DEBUG off,
`DATABASE_CONN_MAX_AGE=60`), all started in the same run. The **floor** is a bare view that only
checks the Stripe signature (`stripe.WebhookSignature.verify_header`) and inserts the row
(`INSERT … ON CONFLICT (stripe_id) DO NOTHING`), mounted only by the bench-only settings
`bench.floor_settings` (the app's settings and middleware, another URLconf), on its own copy
of the database. The **default** is the app as shipped: `STRIPE_WEBHOOK_PROCESSING` unset, i.e.
`{default_mode}`. One open-loop asyncio generator on the same 2 cores posts signed
`payment_intent.succeeded` events (10 % repeats) for {config["seconds"]:g} s per server at each
offered rate ({ladder}), the floor and the app taking turns with the same bodies at each rate
(the order rotating), after a warm-up; a server leaves the ladder after
{config["stop_after"]} missed rates in a row. "Server CPU" is the gunicorn processes' CPU per
request (from /proc), which other load on the machine does not change. Load average (1, 5,
15 min): {_load(loads[0])} before, {min(during, default=0):.2f}–{max(during, default=0):.2f}
(1 min) during the ladder, {_load(loads[1])} after.""",
        "\n".join(summary),
        f"""**default ÷ floor = {default_rate}/{floor_rate} = {ratio:.2f}** (target ≥ {target}):
{verdict}. Per request the default's gunicorn workers spend {default_cpu} ms of CPU against
{floor_cpu} ms for the floor.""",
    ]
    for name, rows in results.items():
        parts.append(f"{LABELS[name]}:\n\n{_per_rate(rows)}")
    parts.append(
        f"""Time to ticket: in the default mode (`{default_mode}`) the view stores the event and,
as soon as that row is committed (`transaction.on_commit`), publishes one Celery task for it to
Redis before answering, so a free worker starts on it within milliseconds; nothing waits for a
poll. If the broker cannot take it the event stays "received" and the sweep
(`process_pending_events`) handles it."""
    )
    if check:
        parts.append(
            f"""Afterwards Celery workers (4 processes) processed all {check["expected"]:,}
distinct events the app stored in {processing:.0f} s: {check["paid"]:,} pre-orders paid,
{check["tickets"]:,} tickets assigned, {check["double_tickets"]} pre-orders with more than one
ticket, at most {check["ticket_emails_max"]} ticket email per pre-order,
{check["duplicates_acknowledged"]:,} repeat deliveries acknowledged without effect."""
        )
    if profile:
        parts.append(
            "Where a request's time goes, one process without load (`bench/_webhook_profile.py`;"
            " CPU is the worker's own, wall adds PostgreSQL and Redis):\n\n"
            + profile_table(profile)
        )
    return "\n\n".join(parts) + "\n"


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)
