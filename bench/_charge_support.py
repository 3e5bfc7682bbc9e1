"""What bench/charge_run.py needs besides the app: the bare paced pool it is measured against,
a real SMTP server for the ticket emails, Celery worker processes, and their peak memory.

Nothing here imports Django: the baseline must not pay for it, and the workers are separate
processes started with `python -m celery`."""

import contextlib
import email.parser
import email.policy
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

API_KEY = "sk_test_bench"
AMOUNT_PENCE = 2250


# --- The baseline: plain threads at a plain pace --------------------------------------------


class Pacer:
    """Permits evenly spaced at `rate` a second for the threads of this process, no burst: each
    caller books the next free slot under a lock and sleeps until it."""

    def __init__(self, rate_per_second: float) -> None:
        self.interval = 1.0 / rate_per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            slot = max(time.monotonic(), self._next)
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class BaselineResult:
    count: int
    concurrency: int
    rate_per_second: float
    seconds: float
    started: float = 0.0  # time.monotonic(): comparable with the stand-in's request times
    succeeded: int = 0
    rate_limited: int = 0  # 429 answers, each tried again
    failed: int = 0  # anything but a succeeded PaymentIntent, after the tries

    @property
    def rate(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0


def saved_card(localstripe: str) -> tuple[str, str]:
    """One customer with one saved card, created directly rather than through the slow
    stand-in: every charge uses it, which is all an off-session PaymentIntent needs."""
    auth = (API_KEY, "")
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


def fresh_customer(localstripe: str) -> tuple[str, str]:
    """Empty localstripe first, so that every phase starts with the same store."""
    requests.delete(f"{localstripe}/_config/data", timeout=30).raise_for_status()
    return saved_card(localstripe)


def bare_paced_pool(
    stripe_url: str,
    customer: str,
    method: str,
    *,
    count: int,
    concurrency: int,
    rate_per_second: float,
    tries: int = 8,
) -> BaselineResult:
    """`count` off-session PaymentIntents (created and confirmed in one call, as the app does)
    from `concurrency` plain threads, each request paced by one Pacer; a 429 is tried again
    with the same key after a short pause, through the pacer, like the app's gateway."""
    pacer = Pacer(rate_per_second)
    numbers = itertools.count()
    lock = threading.Lock()
    result = BaselineResult(count, concurrency, rate_per_second, 0.0)

    def charge(session: requests.Session, number: int) -> None:
        key = f"bench-baseline-{number}"
        data = {
            "amount": str(AMOUNT_PENCE), "currency": "gbp", "customer": customer,
            "payment_method": method, "off_session": "true", "confirm": "true",
            "metadata[preorder_id]": f"baseline-{number}", "metadata[charge_key]": key,
        }  # fmt: skip
        for attempt in range(tries):
            if attempt:
                time.sleep(0.25)
            pacer.acquire()
            try:
                response = session.post(
                    f"{stripe_url}/v1/payment_intents",
                    data=data,
                    auth=(API_KEY, ""),
                    headers={"Idempotency-Key": key},
                    timeout=30,
                )
            except requests.RequestException:
                break
            if response.status_code == 429:
                with lock:
                    result.rate_limited += 1
                continue
            succeeded = response.ok and response.json().get("status") == "succeeded"
            with lock:
                result.succeeded += succeeded
                result.failed += not succeeded
            return
        with lock:
            result.failed += 1

    def thread_main() -> None:
        with requests.Session() as session:
            while (number := next(numbers)) < count:
                charge(session, number)

    threads = [threading.Thread(target=thread_main, daemon=True) for _ in range(concurrency)]
    result.started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - result.started
    return result


@dataclass(frozen=True)
class Pacing:
    """When PaymentIntent requests reached the stand-in, in seconds after the start."""

    requests: int
    first: float
    last: float

    @property
    def steady_rate(self) -> float:
        """Requests per second between the first and the last."""
        span = self.last - self.first
        return (self.requests - 1) / span if span > 0 else 0.0


def pacing(charge_requests: list[dict], started: float) -> Pacing:
    """From the stand-in's `charge_requests` (each `at` a time.monotonic() of its process: the
    same clock as ours on Linux) and our own monotonic start."""
    times = sorted(entry["at"] for entry in charge_requests)
    if not times:
        return Pacing(0, 0.0, 0.0)
    return Pacing(len(times), times[0] - started, times[-1] - started)


# --- A real SMTP server for the ticket emails -----------------------------------------------


@dataclass(frozen=True)
class Accepted:
    at: float  # time.time() when the whole message had arrived and was accepted
    recipients: tuple[str, ...]
    subject: str


@dataclass
class SmtpSink:
    """aiosmtpd handler: keeps when each message was accepted, to whom, and its subject."""

    messages: list[Accepted] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        at = time.time()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        headers = email.parser.BytesParser(policy=email.policy.default).parsebytes(
            content, headersonly=True
        )
        subject = " ".join(str(headers.get("Subject", "")).split())
        recipients = tuple(address.lower() for address in envelope.rcpt_tos)
        self.messages.append(Accepted(at, recipients, subject))  # one append: thread-safe
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def running_smtp_sink(port: int) -> Iterator[SmtpSink]:
    """An aiosmtpd server on 127.0.0.1:`port`, in a thread of this process."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# --- Peak memory of processes and their children --------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def family(pid: int) -> list[int]:
    """The process and all its descendants (Linux /proc)."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue += _children(current)
    return pids


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM: the most resident memory the process has had so far."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ProcessWatch:
    """Samples VmHWM of the given processes and their children every second, in a thread, so
    that a child that exits early is still counted; `read()` takes a last sample and stops.
    `cpu()` is the CPU time each process and its live children have used so far."""

    def __init__(self, roots: dict[str, int], every: float = 1.0) -> None:
        self.roots = roots
        self.peaks: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.sample()

    def sample(self) -> None:
        for label, root in self.roots.items():
            for pid in family(root):
                kib = peak_rss_kib(pid)
                if kib is not None:
                    key = (label if pid == root else f"{label} child {pid}", pid)
                    self.peaks[key] = max(self.peaks.get(key, 0), kib)

    def cpu(self) -> dict[str, float]:
        return {
            label: sum(cpu_seconds(pid) for pid in family(root))
            for label, root in self.roots.items()
        }

    def read(self) -> dict[str, float]:
        """Stop sampling; peak MiB by process label."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return {label: kib / 1024 for (label, _pid), kib in sorted(self.peaks.items())}


# --- Celery worker processes ----------------------------------------------------------------


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def hostname(self) -> str:
        return self.name


def start_workers(
    count: int, threads: int, env: dict[str, str], folder: Path, tag: str, cwd: Path
) -> list[Worker]:
    """`count` Celery worker processes, each one OS process running tasks on `threads` threads
    (the threads pool: one shard's charge threads and the ticket emails share the process)."""
    workers = []
    for number in range(1, count + 1):
        name = f"bench-{tag}-{number}@charge"
        log = folder / f"worker-{tag}-{number}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads",
                 f"--concurrency={threads}", "-n", name, "--loglevel=INFO"],
                cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        workers.append(Worker(name, process, log))
    return workers


def wait_until_ready(app, workers: list[Worker], timeout: float = 120.0) -> None:
    """Until every worker answers a ping over the broker (it is consuming)."""
    wanted = {worker.hostname for worker in workers}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"{worker.name} exited: {worker.log.read_text()[-2000:]}")
        answered = {name for reply in app.control.ping(timeout=1.0) for name in reply}
        if wanted <= answered:
            return
    raise RuntimeError(f"workers not ready after {timeout:.0f} s: {sorted(wanted)}")


def stop_workers(workers: list[Worker], timeout: float = 60.0) -> None:
    """Warm shutdown (SIGTERM: running tasks finish), then SIGKILL for any that hang."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


_SHARD_DONE = re.compile(r"charge_run_shard\[[0-9a-f-]+\] succeeded in ([0-9.]+)s: (\d+)")
_PROBLEM = re.compile(r" (ERROR|CRITICAL) ")


@dataclass
class WorkerLog:
    shards: list[tuple[float, int]]  # (seconds, pre-orders claimed) of each shard it ran
    problems: int  # ERROR / CRITICAL lines
    first_problem: str


def read_worker_log(worker: Worker) -> WorkerLog:
    text = worker.log.read_text(errors="replace")
    shards = [(float(s), int(n)) for s, n in _SHARD_DONE.findall(text)]
    problems = [line for line in text.splitlines() if _PROBLEM.search(line)]
    return WorkerLog(shards, len(problems), problems[0][:300] if problems else "")
