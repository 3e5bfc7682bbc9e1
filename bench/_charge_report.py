"""The "Charge run" section of docs/benchmarks.md, from bench/charge_run.py's measurements.
Every figure comes from the run; the reading says which targets were met and which missed."""

import os

from bench._charge_support import pacing
from bench._support import percentile, write_section

TARGETS = "≥ 0.95 of the baseline, ≤ 25 requests/s, 0 failures from 429s, 0 doubles, ≤ 256 MiB"


def _fmt_seconds(values: list[float], pct: float) -> str:
    return f"{percentile(values, pct):.2f} s" if values else "–"


def _shards(phase) -> str:
    """Per process: the shards it ran, each as claimed pre-orders / seconds."""
    parts = []
    for name, log in phase.logs.items():
        short = name.split("@")[0].rsplit("-", 1)[-1]
        runs = ", ".join(f"{claimed} in {seconds:.0f} s" for seconds, claimed in log.shards)
        parts.append(f"p{short}: {runs or 'none'}")
    return "; ".join(parts)


def _misses(baseline, phases) -> list[str]:
    misses = []
    for phase in phases:
        who = f"{phase.workers} process{'es' if phase.workers > 1 else ''}"
        ratio = phase.rate / baseline.rate if baseline.rate else 0.0
        if ratio < 0.95:
            misses.append(f"{who}: {ratio:.3f} of the baseline (target ≥ 0.95).")
        if phase.peak_per_second > 25:
            misses.append(
                f"{who}: the stand-in saw {phase.peak_per_second} PaymentIntent requests in one "
                "second (target ≤ 25)."
            )
        if phase.failures_from_429:
            misses.append(f"{who}: {phase.failures_from_429} charges failed after 429s.")
        if phase.doubles_at_stand_in or phase.doubles_in_database:
            misses.append(
                f"{who}: double charges (stand-in {phase.doubles_at_stand_in}, "
                f"database {phase.doubles_in_database})."
            )
        heavy = {k: v for k, v in phase.memory_mib.items() if v > 256}
        if heavy:
            misses.append(f"{who}: peak RSS above 256 MiB: {heavy}.")
        if not phase.ticket_delays or percentile(phase.ticket_delays, 95) > 5:
            misses.append(
                f"{who}: time to ticket p95 {_fmt_seconds(phase.ticket_delays, 95)} (target ≤ 5 s)."
            )
        missing = phase.succeeded - len(phase.ticket_delays)
        if missing:
            misses.append(f"{who}: {missing} paid pre-orders had no ticket email accepted.")
        not_paid = phase.preorders - phase.succeeded
        if not_paid:
            misses.append(f"{who}: {not_paid} pre-orders not paid: {dict(phase.attempts)}.")
        problems = sum(log.problems for log in phase.logs.values())
        if problems:
            first = next(log.first_problem for log in phase.logs.values() if log.problems)
            misses.append(f"{who}: {problems} ERROR lines in the worker logs, first: `{first}`.")
    return misses


def _notes(baseline, baseline_pace, phases, rate: int) -> list[str]:
    """What the run's own figures say about its misses (each note only when it applies)."""
    notes = []
    slow = [
        phase
        for phase in phases
        if baseline.rate
        and phase.rate / baseline.rate < 0.95
        and phase.pacing
        and phase.pacing.steady_rate < 0.97 * baseline_pace.steady_rate
    ]
    if slow:
        paces = ", ".join(f"{p.pacing.steady_rate:.2f}/s with {p.workers}" for p in slow)
        notes.append(
            f"Pace: between its first and last request the run went at {paces} (limiter: {rate}/s; "
            f"bare pool: {baseline_pace.steady_rate:.2f}/s); start-up and tail are in the table "
            "above. `payments/ratelimit.py` asks Redis again after sleeping, and strict GCRA "
            "restarts its schedule from that moment, so the time a waiting thread takes to "
            "wake and ask (longer on a loaded machine, behind a busy GIL) is lost at every "
            "grant; the bare pool's pacer books its slots ahead and loses none of it. Letting "
            "a request go a quarter interval early (tried) or booking ahead lets those same "
            "delays bunch requests above 25 in a second at the stand-in, so the pace stays "
            "strict. More worker processes on the same 2 cores add CPU contention (the load "
            "column), not throughput: they are for more cores or machines."
        )
    if baseline.rate_limited or any(phase.rate_limited for phase in phases):
        notes.append(
            "429s: the stand-in counts its 25/s window as requests arrive, as Stripe does, so a "
            "429 means more than 25 arrived within a second (grants bunched on the way by a "
            "busy machine); the bare pool and the gateway both wait and send them again with "
            "the same key."
        )
    if any(not p.ticket_delays or percentile(p.ticket_delays, 95) > 5 for p in phases):
        notes.append(
            "Time to ticket: each ticket is one task (render the ticket email and send it) on "
            "the threads a shard leaves free (BENCH_WORKER_THREADS − 1 in a process running "
            "one), at up to 24 tickets a second; the first leg in the table is the wait for "
            "that task, so a p95 over 5 s with a long first leg is ticket tasks queuing for "
            "threads or for CPU behind the run's own charge threads on the same cores."
        )
    cores = os.cpu_count() or 1
    busiest = max((max(phase.load) for phase in phases if phase.load), default=0.0)
    if busiest > cores:
        notes.append(
            f"Load: the 1-minute load average reached {busiest:.1f} on {cores} cores, so "
            "other work shared the machine; run it again on a quiet one before reading the "
            "figures as the app's."
        )
    return notes


def _where_time_goes(phase) -> str:
    pace = phase.pacing
    cpu = ", ".join(f"{share:.0%}" for share in phase.cpu_share.values())
    return (
        f"| {phase.workers} | {pace.first:.2f} s | {pace.steady_rate:.2f} | "
        f"{phase.seconds - pace.last:.2f} s | {cpu} | {_shards(phase)} |"
    )


def report(baseline, baseline_stats: dict, load_before: float, phases, *, concurrency, rate):
    baseline_pace = pacing(baseline_stats.get("charge_requests", []), baseline.started)
    rows = []
    for phase in phases:
        ratio = phase.rate / baseline.rate if baseline.rate else 0.0
        rss = ", ".join(f"{mib:.0f}" for mib in phase.memory_mib.values())
        rows.append(
            f"| {phase.workers} | {phase.preorders:,} | {phase.seconds:.1f} s | {phase.rate:.2f} "
            f"| **{ratio:.3f}** | {phase.peak_per_second} | {phase.rate_limited} / "
            f"{phase.failures_from_429} | {phase.doubles_at_stand_in} / "
            f"{phase.doubles_in_database} | {rss} |"
        )
    tickets = []
    for phase in phases:
        delays = phase.ticket_delays
        worst = f"{max(delays):.2f} s" if delays else "–"
        load = phase.load
        tickets.append(
            f"| {phase.workers} | {len(delays):,} of {phase.succeeded:,} | "
            f"{_fmt_seconds(delays, 50)} | **{_fmt_seconds(delays, 95)}** | {worst} | "
            f"{_fmt_seconds(phase.ticket_waits, 50)} / {_fmt_seconds(phase.ticket_waits, 95)} | "
            f"{_fmt_seconds(phase.ticket_sends, 50)} / {_fmt_seconds(phase.ticket_sends, 95)} | "
            f"{load[0]:.2f} / {max(load):.2f} / {load[-1]:.2f} |"
        )
    misses = _misses(baseline, phases)
    reading = (
        "Every target met in this run: " + TARGETS + ", time to ticket p95 ≤ 5 s."
        if not misses
        else "Missed in this run:\n\n" + "\n".join(f"- {miss}" for miss in misses)
    )
    notes = _notes(baseline, baseline_pace, phases, rate)
    if notes:
        reading += "\n\nReading:\n\n" + "\n".join(f"- {note}" for note in notes)
    threads = phases[0].threads if phases else 0
    sizes = (
        f"BENCH_PREORDERS={phases[0].preorders if phases else 0} BENCH_BASELINE={baseline.count} "
        f"BENCH_WORKER_COUNTS={','.join(str(p.workers) for p in phases)}"
    )
    body = f"""Command: `.venv/bin/python bench/charge_run.py` (here: {sizes}). This 2-core machine,
PostgreSQL and Redis; the Stripe stand-in `devtools/stripe_proxy.py` in front of localstripe,
400 ms ± 50 latency, 25 requests/s per endpoint answered with 429 beyond, idempotency keys
honoured; ticket emails sent over SMTP to an aiosmtpd server started by the benchmark.

**Baseline, same run**: a bare paced pool, {baseline.concurrency} plain threads creating and
confirming off-session PaymentIntents at the stand-in over HTTP (no Django, no database), paced
at {baseline.rate_per_second:g}/s by a local pacer; a 429 is sent again with the same key.

| charges | seconds | **charges/s** | most requests in 1 s | 429s | failed | requests/s, first → last | load average at start |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| {baseline.succeeded:,} | {baseline.seconds:.1f} | **{baseline.rate:.2f}** | {baseline_stats.get("charge_requests_peak_per_second", 0)} | {baseline.rate_limited} | {baseline.failed} | {baseline_pace.steady_rate:.2f} | {load_before:.2f} |

**The charge run**: N worker processes, each `celery -A config worker --pool=threads
--concurrency={threads}` (one OS process; its threads run a shard and the ticket emails), with
CHARGE_RUN_WORKERS=N shards sharing CHARGE_CONCURRENCY={concurrency} charge threads and one
{rate}/s pace kept in Redis (payments/ratelimit.py). Started as a manager's button does
(`charging.start_run`, then the `execute_charge_run` task); timed to the run's `finished_at`.

| worker processes | pre-orders | start → finished | charges/s | ÷ baseline (≥ 0.95) | most PaymentIntent requests in 1 s at the stand-in (≤ 25) | 429s / charges failed after them (0) | doubles: stand-in / database (0) | peak RSS per process, MiB (≤ 256) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Where the time went: when the first PaymentIntent request reached the stand-in, the pace from
the first to the last (the limiter allows {rate}/s), the last request to `finished_at`, each
process's CPU (share of one core, from the start until the last ticket email), and the shards
each process ran (pre-orders claimed, seconds), from the workers' logs.

| worker processes | first request after | requests/s, first → last | last request → finished | CPU per process | shards per process |
| ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(_where_time_goes(phase) for phase in phases)}

**Time to ticket**: from a charge's success (its ChargeAttempt's settle time) to its ticket
email accepted by the SMTP server, over every paid pre-order of the run (the last ones after
`finished_at`).

| worker processes | tickets accepted | p50 | p95 (≤ 5 s) | max | success → email rendered, p50 / p95 | rendered → accepted, p50 / p95 | 1-minute load average: start / max / end |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(tickets)}

{reading}

Machine: {os.cpu_count()} cores; only ratios from one run mean anything on a shared machine.
"""
    write_section("Charge run", body)
