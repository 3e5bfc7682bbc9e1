"""The charge run at scale, against a bare paced pool measured in the same run (issue 12).

Everything on this machine: PostgreSQL, Redis, localstripe behind the Stripe stand-in
(devtools/stripe_proxy.py: 400 ms ± 50 latency, 25 requests/s per endpoint with 429 beyond,
idempotency keys honoured) and an aiosmtpd SMTP server the ticket emails are really sent to.

1. Baseline: a bare paced pool. CHARGE_CONCURRENCY plain threads create and confirm off-session
   PaymentIntents at the stand-in over HTTP (requests; no Django, no database), paced at
   CHARGE_RATE_PER_SECOND by a local pacer. Charges/s over BENCH_BASELINE charges.
2. For each N in BENCH_WORKER_COUNTS: BENCH_PREORDERS fresh approved pre-orders and N Celery
   worker processes (`celery worker --pool=threads`: one OS process each, running tasks on
   BENCH_WORKER_THREADS threads, so a shard's charges and the ticket emails share it) on Redis,
   with CHARGE_RUN_WORKERS=N and the shared Redis limiter. The run is started as a manager's
   button does (charging.start_run, then the execute_charge_run task) and timed to its
   finished_at. Reported: charges/s ÷ baseline, the most PaymentIntent requests the stand-in saw
   in any one second, 429s and the charges they made fail, double charges, each process's peak
   RSS (VmHWM of it and its children), and how the shards spread over the processes.
3. Time to ticket: from each charge's success (its ChargeAttempt's settle time) to its ticket
   email accepted by the SMTP server, p50/p95/max, with the 1-minute load average.

    .venv/bin/python bench/charge_run.py      # writes "Charge run" in docs/benchmarks.md

Environment: BENCH_PREORDERS (5000), BENCH_BASELINE (2000), BENCH_WORKER_COUNTS ("1,2,4"),
BENCH_WORKER_THREADS (4, as the app's CELERY_WORKER_CONCURRENCY), BENCH_TICKET_WAIT (300 s
for the last emails after a run), BENCH_LOG_DIR (keep the workers' logs there),
BENCH_CHARGE_DATABASE_URL (…/presale_bench_charge, dropped and recreated), BENCH_REDIS_URL
(redis://127.0.0.1:6379/10, flushed: give the benchmark a database of its own).
CHARGE_CONCURRENCY and CHARGE_RATE_PER_SECOND are the app's settings, used by both sides.
"""

import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _charge_support as support
from bench._charge_report import report
from bench._support import ROOT, fresh_database
from devtools.stripe_proxy_runner import free_port, running_localstripe, running_stripe_proxy

DATABASE_URL = os.environ.get(
    "BENCH_CHARGE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/presale_bench_charge"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
PREORDERS = int(os.environ.get("BENCH_PREORDERS", "5000"))
BASELINE = int(os.environ.get("BENCH_BASELINE", "2000"))
WORKER_COUNTS = [int(n) for n in os.environ.get("BENCH_WORKER_COUNTS", "1,2,4").split(",")]
WORKER_THREADS = int(os.environ.get("BENCH_WORKER_THREADS", "4"))
TICKET_WAIT = float(os.environ.get("BENCH_TICKET_WAIT", "300"))
LOG_DIR = os.environ.get("BENCH_LOG_DIR", "")  # keep the workers' logs there
LATENCY_MS, JITTER_MS, LIMIT = 400, 50, 25
PAYMENT_INTENTS = "POST /v1/payment_intents"
# Settings the benchmark decides; anything else inherited could change what is measured.
_DROPPED = ("DJANGO_", "STRIPE_", "SMTP_", "RESEND_", "MAILERSEND_", "CELERY_", "REDIS_")


def environment(stripe_url: str, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    env.pop("CHARGE_RUN_WORKERS", None)
    env.pop("CHARGE_RATE_LIMIT_URL", None)
    return {
        **env,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,  # broker, cache and the shared charge limiter
        "DJANGO_DEBUG": "0",
        "STRIPE_SECRET_KEY": support.API_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "STRIPE_API_BASE": stripe_url,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "LOG_LEVEL": "INFO",  # the production default; the shard lines are read from it
        "PYTHONUNBUFFERED": "1",
    }


def stripe_customer(localstripe: str) -> tuple[str, str]:
    """One customer with one saved card (bench/embedded_tickets.py charges it too)."""
    return support.saved_card(localstripe)


def prepare(cycle_week: dt.date, count: int, customer: str, method: str, prefix: str) -> int:
    """A cycle whose window has closed, one event, `count` tickets and `count` members each
    with one approved pre-order on the shared saved card; bulk-created."""
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
                amount_pence=support.AMOUNT_PENCE,
                stripe_customer_id=customer,
                payment_method_id=method,
                setup_intent_id=f"seti_{prefix}{n}",
                created_at=timezone.now(),
            )
            for n, member in enumerate(members)
        ),
        batch_size=5000,
    )
    if cycle.window_ends_at > timezone.now():
        cycle.closed_early_at = timezone.now() - dt.timedelta(seconds=1)
        cycle.save()
    return cycle.pk


@dataclass
class Phase:
    workers: int
    threads: int
    preorders: int
    seconds: float = 0.0
    attempts: Counter = field(default_factory=Counter)  # ChargeAttempt status -> count
    stand_in: dict = field(default_factory=dict)
    failures_from_429: int = 0
    doubles_at_stand_in: int = 0
    doubles_in_database: int = 0
    pacing: support.Pacing | None = None
    memory_mib: dict[str, float] = field(default_factory=dict)
    cpu_share: dict[str, float] = field(default_factory=dict)  # of one core, start to drained
    logs: dict[str, support.WorkerLog] = field(default_factory=dict)
    ticket_delays: list[float] = field(default_factory=list)
    ticket_waits: list[float] = field(default_factory=list)  # success -> email rendered
    ticket_sends: list[float] = field(default_factory=list)  # rendered -> accepted
    load: list[float] = field(default_factory=list)  # 1-minute load average, start to finish

    @property
    def succeeded(self) -> int:
        return self.attempts["succeeded"]

    @property
    def rate(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0

    @property
    def peak_per_second(self) -> int:
        return self.stand_in.get("charge_requests_peak_per_second", 0)

    @property
    def rate_limited(self) -> int:
        return self.stand_in.get("rate_limited_by_endpoint", {}).get(PAYMENT_INTENTS, 0)


def run_phase(workers: int, week: dt.date, localstripe: str, proxy, sink, env) -> Phase:
    import redis
    from django.conf import settings

    from config.celery import app
    from payments import charging
    from payments.tasks import execute_charge_run

    phase = Phase(workers, WORKER_THREADS, PREORDERS)
    customer, method = support.fresh_customer(localstripe)
    cycle_id = prepare(week, PREORDERS, customer, method, f"w{workers}n")
    redis.Redis.from_url(REDIS_URL).flushdb()  # no leftover task, no limiter state
    proxy.reset()
    with _log_folder() as folder:
        procs = support.start_workers(
            workers, WORKER_THREADS, {**env, "CHARGE_RUN_WORKERS": str(workers)},
            Path(folder), str(workers), ROOT,
        )  # fmt: skip
        watch = support.ProcessWatch({w.name: w.process.pid for w in procs})
        try:
            support.wait_until_ready(app, procs)
            phase.load.append(os.getloadavg()[0])
            cpu_before, started_mono, started = watch.cpu(), time.monotonic(), time.time()
            run = charging.start_run(cycle_id, trigger="bench", early=True)
            execute_charge_run.delay(run.pk)
            deadline = time.monotonic() + max(
                600.0, 4 * PREORDERS / settings.CHARGE_RATE_PER_SECOND
            )
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if run.finished_at or run.interrupted_at:
                    break
                time.sleep(0.5)
                phase.load.append(os.getloadavg()[0])
            if not run.finished_at:
                raise RuntimeError(f"charge run {run.pk} did not finish: {run.interrupted_at=}")
            phase.seconds = run.finished_at.timestamp() - started
            phase.load.append(os.getloadavg()[0])
            phase.stand_in = proxy.stats()
            phase.pacing = support.pacing(phase.stand_in["charge_requests"], started_mono)
            _wait_for_tickets(cycle_id)
            elapsed = time.monotonic() - started_mono
            phase.cpu_share = {
                name: (seconds - cpu_before[name]) / elapsed
                for name, seconds in watch.cpu().items()
            }
            phase.memory_mib = watch.read()
        finally:
            support.stop_workers(procs)
            watch.read()
        phase.logs = {w.name: support.read_worker_log(w) for w in procs}
    _count_outcomes(phase, cycle_id)
    ticket_times(phase, cycle_id, list(sink.messages))
    return phase


@contextlib.contextmanager
def _log_folder() -> Iterator[str]:
    if LOG_DIR:
        Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
        yield LOG_DIR
    else:
        with tempfile.TemporaryDirectory(prefix="bench-charge-") as folder:
            yield folder


def _wait_for_tickets(cycle_id: int) -> None:
    from notifications.models import OutboundEmail
    from payments.models import ChargeAttempt

    paid = ChargeAttempt.objects.filter(preorder__cycle_id=cycle_id, status="succeeded").count()
    sent = OutboundEmail.objects.filter(
        preorder__cycle_id=cycle_id, template="ticket", status=OutboundEmail.Status.SENT
    )
    deadline = time.monotonic() + TICKET_WAIT
    while sent.count() < paid and time.monotonic() < deadline:
        time.sleep(1)


def _count_outcomes(phase: Phase, cycle_id: int) -> None:
    """Attempts by status; doubles at the stand-in and in the database; and the charges that
    did not succeed although their request had been sent more than once (after 429s)."""
    from django.db.models import Count

    from payments.models import ChargeAttempt

    attempts = ChargeAttempt.objects.filter(preorder__cycle_id=cycle_id)
    phase.attempts = Counter(dict(attempts.values_list("status").annotate(n=Count("id"))))
    per_preorder = phase.stand_in.get("payment_intents_by_preorder", {})
    phase.doubles_at_stand_in = sum(1 for n in per_preorder.values() if n > 1)
    phase.doubles_in_database = (
        attempts.filter(status="succeeded")
        .values("preorder_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    sends = Counter(entry["preorder_id"] for entry in phase.stand_in.get("charge_requests", []))
    resent = {int(pk) for pk, n in sends.items() if pk and n > 1}
    phase.failures_from_429 = (
        attempts.filter(preorder_id__in=resent).exclude(status="succeeded").count()
        if phase.rate_limited
        else 0
    )


def ticket_times(phase: Phase, cycle_id: int, accepted: list[support.Accepted]) -> None:
    """Seconds from each succeeded charge (its attempt's settle time) to the SMTP server's
    acceptance of that pre-order's ticket email (matched by recipient and subject), and the
    two legs: to the email's rendering by the ticket task, and from there to acceptance."""
    from notifications.models import OutboundEmail
    from payments.models import ChargeAttempt

    paid_at = dict(
        ChargeAttempt.objects.filter(preorder__cycle_id=cycle_id, status="succeeded").values_list(
            "preorder_id", "finished_at"
        )
    )
    tickets = {
        (to.lower(), " ".join(subject.split())): (preorder_id, created_at)
        for to, subject, preorder_id, created_at in OutboundEmail.objects.filter(
            preorder__cycle_id=cycle_id, template="ticket"
        ).values_list("to_email", "subject", "preorder_id", "created_at")
    }
    first: dict[int, tuple[float, float]] = {}
    for message in accepted:
        for recipient in message.recipients:
            found = tickets.get((recipient, message.subject))
            if found is not None and found[0] not in first:
                first[found[0]] = (found[1].timestamp(), message.at)
    for preorder_id, at in paid_at.items():
        if preorder_id in first and at:
            rendered, accepted_at = first[preorder_id]
            phase.ticket_delays.append(accepted_at - at.timestamp())
            phase.ticket_waits.append(rendered - at.timestamp())
            phase.ticket_sends.append(accepted_at - rendered)


def main() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    fresh_database(DATABASE_URL)
    smtp_port = free_port()
    with (
        running_localstripe() as localstripe,
        running_stripe_proxy(
            localstripe, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS, rate_limit=LIMIT, seed=1
        ) as proxy,
        support.running_smtp_sink(smtp_port) as sink,
    ):
        env = environment(proxy.url, smtp_port)
        for name in [name for name in os.environ if name.startswith(_DROPPED)]:
            del os.environ[name]  # e.g. CELERY_TASK_ALWAYS_EAGER would run the run in here
        os.environ.update({**env, "LOG_LEVEL": "WARNING"})  # this process only sets up
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from events.selectors import current_cycle

        call_command("migrate", verbosity=0)
        concurrency, rate = settings.CHARGE_CONCURRENCY, settings.CHARGE_RATE_PER_SECOND
        customer, method = support.fresh_customer(localstripe)
        proxy.reset()
        load_before = os.getloadavg()[0]
        baseline = support.bare_paced_pool(
            proxy.url, customer, method, count=BASELINE, concurrency=concurrency,
            rate_per_second=rate,
        )  # fmt: skip
        baseline_stats = proxy.stats()
        print(f"baseline: {baseline.rate:.2f}/s over {baseline.succeeded} "
              f"(peak {baseline_stats['charge_requests_peak_per_second']}/s, "
              f"429s {baseline.rate_limited}, load {load_before:.2f})", flush=True)  # fmt: skip
        this_week = current_cycle().week_start
        phases = []
        for number, workers in enumerate(WORKER_COUNTS, start=1):
            week = this_week - dt.timedelta(weeks=number)  # past weeks: windows closed
            phase = run_phase(workers, week, localstripe, proxy, sink, env)
            phases.append(phase)
            print(f"{workers} worker(s): {phase.rate:.2f}/s = {phase.rate / baseline.rate:.3f} "
                  f"of baseline, peak {phase.peak_per_second}/s, 429s {phase.rate_limited}, "
                  f"RSS {phase.memory_mib}", flush=True)  # fmt: skip
    report(baseline, baseline_stats, load_before, phases, concurrency=concurrency, rate=rate)


if __name__ == "__main__":
    main()
