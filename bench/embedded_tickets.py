"""Tickets on the embedded default: does every ticket email of a charge run reach a real SMTP
server within 60 s of the run's end, on `./bin/demo`'s stack (SQLite, kombu's filesystem broker,
one Celery worker and beat started with Procfile.dev's own command lines)?

The benchmark starts localstripe behind the Stripe stand-in (400 ms ± 50 latency, 25 requests/s
per endpoint, as bench/charge_run.py), an aiosmtpd sink that records when it accepts each
message, and the demo's worker and beat pointed at a fresh SQLite file and a fresh queue folder
in var/bench-embedded/ (kept afterwards, with the processes' logs). It creates approved
pre-orders, starts the run as a manager's click does (start_run, then the execute_charge_run
task), and waits for the run's end and the emails.

    .venv/bin/python bench/embedded_tickets.py   # writes "Tickets on the embedded default"

Environment: BENCH_PREORDERS (300), BENCH_TARGET_SECONDS (60: the requirement), BENCH_WAIT_SECONDS
(300: how long after the run's end to keep waiting for late emails, so the latest delay is
measured even when the target is missed), BENCH_DIR (var/bench-embedded).
"""

import datetime as dt
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, percentile, write_section
from bench.charge_run import prepare, stripe_customer
from devtools.stripe_proxy_runner import free_port, running_localstripe, running_stripe_proxy

PREORDERS = int(os.environ.get("BENCH_PREORDERS", "300"))
TARGET_SECONDS = float(os.environ.get("BENCH_TARGET_SECONDS", "60"))
WAIT_SECONDS = float(os.environ.get("BENCH_WAIT_SECONDS", "300"))
FOLDER = Path(os.environ.get("BENCH_DIR", ROOT / "var" / "bench-embedded"))
LATENCY_MS, JITTER_MS, LIMIT = 400, 50, 25
PREFIX = "tk"
# As devtools/procfile.py: a worker on the filesystem broker may need a while to stop cleanly.
STOP_WAIT_SECONDS = 30
RUN_TIMEOUT_SECONDS = 900


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback: the moment it accepts each message's DATA is
    the moment the email was delivered, as far as the app can ever know."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: list[tuple[float, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self.accepted.append((time.time(), tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def first_accepts(self) -> dict[str, float]:
        """Each recipient's first acceptance (a second one would be a duplicate email)."""
        first: dict[str, float] = {}
        with self._lock:
            for at, recipients in self.accepted:
                for address in recipients:
                    first.setdefault(address.lower(), at)
        return first

    @contextmanager
    def running(self) -> Iterator["SmtpSink"]:
        from aiosmtpd.controller import Controller

        controller = Controller(self, hostname="127.0.0.1", port=self.port)
        controller.start()
        try:
            yield self
        finally:
            controller.stop()


def environment(folder: Path, stripe_url: str, smtp_port: int) -> dict[str, str]:
    """The demo's environment (bin/demo), with its own database, queue and SMTP; Stripe is the
    embedded localstripe default (no key), reached through the stand-in."""
    dropped = ("DJANGO_", "STRIPE_", "CELERY_", "CHARGE_", "DATABASE_", "REDIS_", "SMTP_")
    dropped += ("RESEND_", "MAILERSEND_", "LOCALSTRIPE_", "PRESALE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"sqlite:///{folder / 'presale.sqlite3'}",
        "PRESALE_QUEUE_DIR": str(folder / "celery"),
        "STRIPE_API_BASE": stripe_url,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
    }


def procfile_commands(folder: Path, names: tuple[str, ...] = ("worker", "beat")) -> dict:
    """Procfile.dev's command lines for these processes, with beat's schedule file moved into
    the benchmark's folder (the demo's own var/ is left alone)."""
    commands = {}
    for line in (ROOT / "Procfile.dev").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() not in names:
            continue
        argv = shlex.split(command)
        argv = [sys.executable if arg == "python" else arg for arg in argv]
        if "--schedule" in argv:
            argv[argv.index("--schedule") + 1] = str(folder / "celerybeat-schedule")
        commands[name.strip()] = argv
    if set(commands) != set(names) or "--schedule" not in commands["beat"]:
        raise SystemExit("Procfile.dev no longer has the worker and beat lines this expects.")
    return commands


@contextmanager
def running_processes(commands: dict, env: dict, folder: Path) -> Iterator[dict]:
    """Start each command (its output in folder/<name>.log); on the way out, however it is left,
    stop each as honcho would (SIGTERM, then SIGKILL after STOP_WAIT_SECONDS)."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            with (folder / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for name, process in processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within {STOP_WAIT_SECONDS} s: killed", file=sys.stderr)
                process.kill()
                process.wait()


def wait_until_ready(processes: dict, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    log = folder / "worker.log"
    while " ready." not in log.read_text(errors="replace"):
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: see {folder / (name + '.log')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker was not ready after {timeout:.0f} s: see {log}")
        time.sleep(0.2)


def start_run(cycle_id: int) -> int:
    """As a manager's "start the charge run" click (payments.staff_views.start_charge_run)."""
    from payments import charging
    from payments.tasks import execute_charge_run

    run = charging.start_run(cycle_id, trigger="staff", early=True)
    execute_charge_run.delay(run.pk)
    return run.pk


def wait_for_run(run_id: int, processes: dict) -> dt.datetime:
    from django.db import connection

    from payments.models import ChargeRun

    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        run = ChargeRun.objects.get(pk=run_id)
        connection.close()
        if run.finished_at or run.interrupted_at:
            if run.interrupted_at:
                raise RuntimeError(f"run {run_id} was interrupted")
            return run.finished_at
        if any(process.poll() is not None for process in processes.values()):
            raise RuntimeError("the worker or beat exited during the run")
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} not finished after {RUN_TIMEOUT_SECONDS} s")
        time.sleep(0.2)


def wait_for_emails(sink: SmtpSink, expected: set[str], run_end: dt.datetime) -> None:
    """Until every expected recipient has its email, or WAIT_SECONDS after the run's end."""
    until = run_end.timestamp() + max(WAIT_SECONDS, TARGET_SECONDS)
    while time.time() < until and not expected <= set(sink.first_accepts()):
        time.sleep(0.2)


def measure(run_id: int, cycle_id: int, sink: SmtpSink) -> dict:
    from notifications.models import OutboundEmail
    from payments.models import ChargeAttempt, ChargeRun

    run = ChargeRun.objects.get(pk=run_id)
    paid = dict(
        ChargeAttempt.objects.filter(run_id=run_id, status="succeeded").values_list(
            "preorder__member__email", "finished_at"
        )
    )
    attempts = ChargeAttempt.objects.filter(run_id=run_id).count()
    queued = dict(
        OutboundEmail.objects.filter(template="ticket", preorder__cycle_id=cycle_id).values_list(
            "to_email", "created_at"
        )
    )
    accepted = {k: v for k, v in sink.first_accepts().items() if k in paid}
    end = run.finished_at.timestamp()
    seconds = (run.finished_at - run.started_at).total_seconds()
    after_end = [at - end for at in accepted.values()]
    to_accept = [at - paid[k].timestamp() for k, at in accepted.items()]
    to_queue = [(queued[k] - paid[k]).total_seconds() for k in paid if k in queued]
    queue_to_accept = [at - queued[k].timestamp() for k, at in accepted.items() if k in queued]
    during = sum(1 for at in accepted.values() if at <= end)
    late = [at for at in accepted.values() if at > end]
    return {
        "attempts": attempts,
        # Emails accepted a second while the run charged, and while the backlog drained after.
        "rate_during": during / seconds if seconds else 0.0,
        "rate_after": len(late) / (max(late) - end) if late else 0.0,
        "paid": len(paid),
        "seconds": seconds,
        "rate": attempts / seconds if seconds else 0.0,
        "accepted": len(accepted),
        "in_time": sum(1 for d in after_end if d <= TARGET_SECONDS),
        "latest": max(after_end) if after_end else None,
        "to_accept": to_accept,
        "to_queue": to_queue,
        "queue_to_accept": queue_to_accept,
        "extra": sum(len(r) for _, r in sink.accepted) - len(sink.first_accepts()),
    }


def _p(samples: list[float], pct: float) -> str:
    return f"{percentile(samples, pct):.1f} s" if samples else "n/a"


def reading_of(result: dict, met: bool) -> str:
    """The figures' plain reading: how the emails trail the run, and what that leaves."""
    trail = (
        "Each ticket is one task (render the email and send it) on the one worker, whose "
        "threads also carry the run itself (one task, its charging threads in the same "
        f"process): while the run charges {result['rate']:.1f}/s the worker sends "
        f"{result['rate_during']:.1f} emails/s, so a backlog builds and is cleared after the "
        f"run at {result['rate_after']:.1f}/s."
    )
    if met:
        latest = result["latest"] or 0.0
        return (
            f"Reading: met, with {TARGET_SECONDS - latest:.0f} s to spare. {trail} The backlog "
            "grows with the run's size, so the margin shrinks for a larger run on one worker."
        )
    return (
        f"Reading: missed: {PREORDERS - result['in_time']} of {PREORDERS} ticket emails were "
        f"not accepted within {TARGET_SECONDS:.0f} s of the run's end. {trail} Check the load "
        "average (a busy machine slows the one worker) and the worker's log in "
        f"{FOLDER.relative_to(ROOT) if FOLDER.is_relative_to(ROOT) else FOLDER}."
    )


def report(result: dict, load: tuple[float, float], commands: dict) -> None:
    met = result["in_time"] == PREORDERS and result["paid"] == PREORDERS
    latest = "n/a" if result["latest"] is None else f"{result['latest']:.1f} s"
    reading = reading_of(result, met)
    line = (
        f"run {result['seconds']:.1f} s, {result['rate']:.2f} charges/s, paid "
        f"{result['paid']}/{PREORDERS}; ticket emails accepted within {TARGET_SECONDS:.0f} s of "
        f"the end: {result['in_time']}/{PREORDERS} (accepted at all: {result['accepted']}), "
        f"latest {latest} after the end; charge → accept p50 {_p(result['to_accept'], 50)}, "
        f"p95 {_p(result['to_accept'], 95)}; load {load[0]:.2f} → {load[1]:.2f}"
    )
    print(line)
    worker = " ".join(commands["worker"][1:])
    write_section(
        "Tickets on the embedded default",
        f"""Command: `.venv/bin/python bench/embedded_tickets.py` (`BENCH_PREORDERS`, default 300).
The demo's own stack: SQLite, kombu's filesystem broker, Procfile.dev's worker (`python {worker}`)
and beat, DEBUG on; the Stripe stand-in ({LATENCY_MS} ms ± {JITTER_MS}, {LIMIT}/s per endpoint) in
front of localstripe; `SMTP_URL` pointing at an aiosmtpd server started by the benchmark, whose
acceptance of each message is the delivery time. The run is started as a manager's click (the
`execute_charge_run` task). Target: every ticket email accepted within {TARGET_SECONDS:.0f} s of
the run's end (ChargeRun.finished_at).

| | figure |
| --- | ---: |
| pre-orders paid | {result["paid"]:,} of {PREORDERS:,} |
| run duration | {result["seconds"]:.1f} s |
| charges/s | {result["rate"]:.2f} |
| ticket emails accepted within {TARGET_SECONDS:.0f} s of the run's end | **{result["in_time"]:,} of {PREORDERS:,}** ({"met" if met else "missed"}) |
| latest acceptance after the run's end | {latest} |
| charge success → SMTP accepted, p50 / p95 | {_p(result["to_accept"], 50)} / {_p(result["to_accept"], 95)} |
| of which charge success → email rendered and queued, p50 / p95 | {_p(result["to_queue"], 50)} / {_p(result["to_queue"], 95)} |
| of which queued → SMTP accepted, p50 / p95 | {_p(result["queue_to_accept"], 50)} / {_p(result["queue_to_accept"], 95)} |
| ticket emails accepted a second, during the run / after it | {result["rate_during"]:.1f} / {result["rate_after"]:.1f} |
| duplicate messages accepted | {result["extra"]} |
| 1-minute load average, before → after | {load[0]:.2f} → {load[1]:.2f} |

{reading}
""",
    )


def _stop_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds the with-blocks, so the worker, beat and the servers are stopped too.
    raise SystemExit(128 + signum)


def main() -> None:
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        _main()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main() -> None:
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
    FOLDER.mkdir(parents=True)
    sink = SmtpSink()
    with ExitStack() as stack:
        localstripe = stack.enter_context(running_localstripe())
        proxy = stack.enter_context(
            running_stripe_proxy(
                localstripe, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS, rate_limit=LIMIT, seed=1
            )
        )
        stack.enter_context(sink.running())
        env = environment(FOLDER, proxy.url, sink.port)
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        # aiosmtpd logs every SMTP command at INFO.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        from django.core.management import call_command
        from django.db import connection

        from events.selectors import current_cycle

        call_command("migrate", verbosity=0)
        customer, method = stripe_customer(localstripe)
        cycle_id = prepare(current_cycle().week_start, PREORDERS, customer, method, PREFIX)
        expected = {f"{PREFIX}{n}@example.com" for n in range(PREORDERS)}
        connection.close()

        commands = procfile_commands(FOLDER)
        processes = stack.enter_context(running_processes(commands, env, FOLDER))
        wait_until_ready(processes, FOLDER)
        load_before = os.getloadavg()[0]
        run_id = start_run(cycle_id)
        run_end = wait_for_run(run_id, processes)
        print(f"run {run_id} finished at {run_end:%H:%M:%S}; waiting for the emails")
        wait_for_emails(sink, expected, run_end)
        load_after = os.getloadavg()[0]
        result = measure(run_id, cycle_id, sink)
    report(result, (load_before, load_after), commands)


if __name__ == "__main__":
    main()
