"""How fast is the Stripe proxy itself? It must never be the bottleneck of a benchmark.

Starts a localstripe (devtools.localstripe_server, in memory) and the proxy in subprocesses on
loopback, then creates customers (POST /v1/customers) with concurrent aiohttp clients:

  a. straight at localstripe                       (--in-flight requests at a time)
  b. through the proxy, no latency, no faults       (--in-flight)
  c. through the proxy, 400 ms latency, no limit    (--latency-in-flight)

a and b alternate for --rounds rounds in one run, because this machine is noisy: only ratios
from the same run mean anything. Prints the figures and writes them to --out (Markdown).

    .venv/bin/python bench/stripe_proxy_throughput.py [--requests 3000 --in-flight 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import write_section  # noqa: E402
from devtools.stripe_proxy_runner import running_localstripe, running_stripe_proxy  # noqa: E402

# Basic auth with the secret key, as Stripe clients send it.
AUTH = {"Authorization": aiohttp.encode_basic_auth("sk_test_x", "")}


@dataclass
class Result:
    label: str
    requests: int
    in_flight: int
    seconds: float
    errors: int
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def load(base: str, total: int, in_flight: int, label: str) -> Result:
    """`total` customer creations, `in_flight` at a time (closed loop: each worker sends its
    next request when the previous one is answered)."""
    next_index = 0
    errors = 0
    latencies: list[float] = []

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=in_flight), headers=AUTH
    ) as session:
        # Empty store for every phase: localstripe's cost must not grow across phases.
        async with session.delete(f"{base}/_config/data") as response:
            await response.read()

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < total:  # bounded: stops after `total` requests overall
                index = next_index
                next_index += 1
                started = time.perf_counter()
                async with session.post(
                    f"{base}/v1/customers",
                    data={"email": f"bench{index}@example.com", "metadata[n]": str(index)},
                ) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    return Result(label, total, in_flight, seconds, errors, latencies)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; Linux only. Unlike req/s, this does
    not depend on what else the machine is doing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe(result: Result) -> str:
    return (
        f"{result.label:<44} {result.rate:8.1f} req/s  "
        f"p50 {result.percentile(0.5):7.1f} ms  p99 {result.percentile(0.99):7.1f} ms  "
        f"errors {result.errors}"
    )


async def measure(args: argparse.Namespace, upstream: str, plain: str, slow: str, pid: int) -> dict:
    load_at_start = os.getloadavg()[0]
    # Warm-up: connections, imports, the first allocations of both servers.
    await load(upstream, 200, args.in_flight, "warm-up")
    await load(plain, 200, args.in_flight, "warm-up")
    rounds = []
    cpu_before = cpu_seconds(pid)
    for number in range(1, args.rounds + 1):
        direct = await load(upstream, args.requests, args.in_flight, f"a. direct (round {number})")
        print(describe(direct), flush=True)
        proxied = await load(plain, args.requests, args.in_flight, f"b. via proxy (round {number})")
        print(describe(proxied), flush=True)
        rounds.append((direct, proxied))
    cpu_after = cpu_seconds(pid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None:
        cpu_ms = (cpu_after - cpu_before) * 1000 / (args.requests * args.rounds)
        print(f"proxy CPU per request (phase b): {cpu_ms:.2f} ms", flush=True)
    slow_result = await load(
        slow, args.requests, args.latency_in_flight, "c. via proxy, 400 ms latency"
    )
    print(describe(slow_result), flush=True)
    return {"rounds": rounds, "slow": slow_result, "cpu_ms": cpu_ms, "load": load_at_start}


def write_report(path: Path, args: argparse.Namespace, figures: dict) -> str:
    rounds = figures["rounds"]
    ratios = [proxied.rate / direct.rate for direct, proxied in rounds]
    slow: Result = figures["slow"]
    ceiling = args.latency_in_flight / 0.4
    lines = [
        f"Measured {dt.date.today().isoformat()} with `bench/stripe_proxy_throughput.py` on "
        f"{os.cpu_count()} cores ({platform.python_implementation()} "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}); the load generator, the "
        "proxy and localstripe share those cores, all on loopback. Each phase: "
        f"{args.requests} `POST /v1/customers` (closed loop), localstripe emptied first. "
        f"Load average when it started: {figures['load']:.1f} (other work on the machine "
        "slows a and b alike; compare the ratio, not the rates, across runs).",
        "",
        "| Phase | In flight | req/s | p50 ms | p99 ms | Errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    all_results = [result for pair in rounds for result in pair] + [slow]
    for result in all_results:
        lines.append(
            f"| {result.label} | {result.in_flight} | {result.rate:.0f} | "
            f"{result.percentile(0.5):.1f} | {result.percentile(0.99):.1f} | {result.errors} |"
        )
    lines += [
        "",
        "- Ratio b/a (proxy ÷ direct, same round): "
        + ", ".join(f"{ratio:.2f}" for ratio in ratios)
        + f"; median {statistics.median(ratios):.2f}.",
        f"- c. with 400 ms added to every call and {args.latency_in_flight} in flight, the "
        f"ceiling is {ceiling:.0f} req/s ({args.latency_in_flight} / 0.4 s); measured "
        f"{slow.rate:.0f} req/s ({slow.rate / ceiling:.0%} of it), p50 "
        f"{slow.percentile(0.5):.0f} ms.",
    ]
    if figures["cpu_ms"]:
        lines.append(
            f"- The proxy's own CPU per proxied request (phase b, from /proc): "
            f"{figures['cpu_ms']:.2f} ms, i.e. ≈ {1000 / figures['cpu_ms']:.0f} req/s per core "
            "if it had one to itself; this moves much less with the machine's load than req/s."
        )
    lines += [
        "- b/a below 1 is mostly the proxy's CPU competing with localstripe's for the same "
        "cores (one more hop per request); what it can carry on its own is far above what it "
        "has to pass: Stripe allows 25 req/s per endpoint in test mode, 100 req/s live. "
        "In c, the 200 requests released together after each 400 ms queue at localstripe.",
        "",
    ]
    text = "\n".join(lines)
    write_section("Stripe stand-in throughput (devtools/stripe_proxy.py)", text, path)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--latency-in-flight", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    with (
        running_localstripe() as upstream,
        running_stripe_proxy(upstream) as plain,
        running_stripe_proxy(upstream, latency_ms=400) as slow,
    ):
        figures = asyncio.run(measure(args, upstream, plain.url, slow.url, plain.process.pid))
        stats = plain.stats()
        assert stats["upstream_errors"] == 0, stats
    ratios = [proxied.rate / direct.rate for direct, proxied in figures["rounds"]]
    print(f"ratio b/a per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    write_report(args.out, args, figures)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
