"""The "Webhook ingestion" section of docs/benchmarks.md, from bench/webhook_ingestion.py's
measurements."""

import itertools
import textwrap

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


def _para(text: str) -> str:
    """One paragraph, rewrapped: the figures put in make the source's line breaks ragged."""
    return textwrap.fill(" ".join(text.split()), width=100, break_on_hyphens=False)


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def _step(profile: list[tuple[str, float, float]] | None, prefix: str) -> str:
    for name, cpu, wall in profile or []:
        if name.startswith(prefix):
            return f"{cpu:.2f} ms CPU, {wall:.2f} ms wall"
    return "?"


def _ladder(rates: list[int]) -> str:
    steps = {b - a for a, b in itertools.pairwise(rates)}
    if len(rates) > 2 and len(steps) == 1:
        return f"{rates[0]}–{rates[-1]}/s in steps of {steps.pop()}"
    return ", ".join(f"{rate}/s" for rate in rates)


def _summary(results: dict[str, list[dict]]) -> str:
    lines = [
        "| server | highest rate held (p99 < 100 ms, 0 errors) | first rate missed "
        "| server CPU ms/request at the lowest rate |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, rows in results.items():
        lines.append(
            f"| {LABELS[name]} | **{held(rows)}/s** | {_first_failure(rows)} "
            f"| {_cpu_at_lowest(rows)} |"
        )
    return "\n".join(lines)


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
    floor_rate, default_rate = held(results["floor"]), held(results["default"])
    ratio = default_rate / floor_rate if floor_rate else 0.0
    target = config["target_ratio"]
    during = [row["load1"] for rows in results.values() for row in rows]
    floor_cpu, default_cpu = _cpu_at_lowest(results["floor"]), _cpu_at_lowest(results["default"])
    parts = [
        _para(
            f"""Command: `.venv/bin/python bench/webhook_ingestion.py` (PostgreSQL, Redis broker).
            Each server is `gunicorn config.wsgi --config python:config.gunicorn`, the Procfile's
            `web` ({config["workers"]} sync workers via `WEB_CONCURRENCY`, app preloaded, DEBUG
            off, `DATABASE_CONN_MAX_AGE=60`), all started in the same run. The **floor** is a bare
            view that only checks the Stripe signature (`stripe.WebhookSignature.verify_header`)
            and inserts the row (`INSERT … ON CONFLICT (stripe_id) DO NOTHING`), mounted only by
            the bench-only settings `bench.floor_settings` (the app's settings and middleware,
            another URLconf), on its own copy of the database. The **default** is the app as
            shipped: `STRIPE_WEBHOOK_PROCESSING` unset, i.e. `{default_mode}`. One open-loop
            asyncio generator on the same 2 cores posts signed `payment_intent.succeeded` events
            (10 % repeats) for {config["seconds"]:g} s per server at each offered rate
            ({_ladder(config["rates"])}), the servers taking turns with the same bodies at each
            rate (the order rotating), after a warm-up; a server leaves the ladder after
            {config["stop_after"]} missed rates in a row. "Server CPU" is the gunicorn processes'
            CPU per request (from /proc), which depends far less on other load than latency
            does. Load average (1 / 5 / 15 min): {_load(loads[0])} before,
            {min(during, default=0):.2f}–{max(during, default=0):.2f} (1 min) during the
            ladder, {_load(loads[1])} after."""
        ),
        _summary(results),
        _para(
            f"""**default ÷ floor = {default_rate}/{floor_rate} = {ratio:.2f}** (target ≥
            {target}): {"met" if ratio >= target else "**not met**"}. Per request the default's
            gunicorn workers spend {default_cpu} ms of CPU against {floor_cpu} ms for the
            floor."""
        ),
    ]
    parts += [f"{LABELS[name]}:\n\n{_per_rate(rows)}" for name, rows in results.items()]
    parts.append(
        _para(
            f"""Time to ticket: in the default mode (`{default_mode}`) the view stores the event
            and, as soon as that row is committed (`transaction.on_commit`, at once in
            autocommit), publishes one Celery task for it to Redis before answering, so a free
            worker starts on it within milliseconds; nothing waits for a poll. If the broker
            cannot take it the event stays "received" and the sweep (`process_pending_events`)
            handles it."""
        )
    )
    if check:
        parts.append(
            _para(
                f"""Afterwards Celery workers (4 processes) processed all {check["expected"]:,}
                distinct events the app stored, up to the ticket emails, in {processing:.0f} s:
                {check["paid"]:,} pre-orders paid, {check["tickets"]:,} tickets assigned,
                {check["ticket_emails"]:,} ticket emails queued, {check["double_tickets"]}
                pre-orders with more than one ticket, at most {check["ticket_emails_max"]} ticket
                email per pre-order, {check["duplicates_acknowledged"]:,} repeat deliveries
                acknowledged without effect."""
            )
        )
    parts.append(_reading(results, ratio, target, loads[0][0], profile))
    if profile:
        parts.append(
            "Where a request's time goes, in one process after the ladder "
            "(`bench/_webhook_profile.py`; CPU is the worker's own, wall adds the waits on "
            "PostgreSQL and Redis):\n\n" + profile_table(profile)
        )
    return "\n\n".join(parts) + "\n"


def _reading(
    results: dict[str, list[dict]],
    ratio: float,
    target: float,
    load_before: float,
    profile: list[tuple[str, float, float]] | None,
) -> str:
    floor_cpu = _cpu_at_lowest(results["floor"])
    default_cpu = _cpu_at_lowest(results["default"])
    cpu_ratio = default_cpu / floor_cpu if floor_cpu else 0.0
    share = (
        f"the app in its default configuration holds {ratio:.0%} of the rate a bare "
        "verify-and-insert view holds under the same gunicorn"
    )
    if not held(results["floor"]):
        text = (
            "Reading: the floor held none of the offered rates, so there is no ratio (start the "
            "ladder lower with BENCH_RATES)."
        )
    elif ratio >= target:
        text = f"Reading: {share}: the target is met."
    else:
        text = f"Reading: {share}, below the {target:.0%} target."
    text += f" Its workers spend {cpu_ratio:.1f}× the floor's CPU per request."
    if profile:
        text += f""" What the default adds on the request path is mainly the Celery publish
            ({_step(profile, "· dispatch_event")} in the breakdown: one Redis round trip and
            Celery's and kombu's Python), which is what hands each event to a worker at once, and
            the ORM's INSERT ({_step(profile, "· StripeEvent.objects.create")}, against
            {_step(profile, "floor: INSERT")} for the floor's SQL). The view already stores with
            that one INSERT in autocommit (inside `transaction.atomic()`, as the view did before,
            it costs {_step(profile, "· the same inside")}: the BEGIN and COMMIT round trips) and
            checks the signature without building StripeObjects
            ({_step(profile, "· gateway.verify_webhook")})."""
    else:
        text += """ What the default adds on the request path is mainly the Celery publish (one
            Redis round trip), which is what hands each event to a worker at once, and the ORM's
            INSERT; it stores with one INSERT in autocommit and checks the signature without
            building StripeObjects (BENCH_PROFILE=1 measures each step)."""
    if ratio < target:
        text += """ What is left is mostly the publish itself. Taking it off the web worker without
            delaying the hand-off needs another process (for instance one that LISTENs for a
            PostgreSQL NOTIFY sent with the INSERT and publishes the tasks): proposed, not
            made."""
    if "polled" in results:
        text += f""" With `polled` (no publish per request; beat picks events up every 2 s, so a
            worker may start up to 2 s later) the app holds {held(results["polled"])}/s."""
    if load_before > 1:
        text += f""" The machine was not quiet (1-minute load {load_before:.1f} on 2 cores before
            the run): rates and ratio are noisy, the server CPU per request steadier; rerun on a
            quiet machine for the figures."""
    return _para(text)
