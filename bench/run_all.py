"""What `bench/all` runs: every benchmark in its own process, in a fixed order, then the
"Machine" section of docs/benchmarks.md: what the machine is, and the load average and the
busiest other processes before and after each benchmark (the machine is shared: a figure means
little without what else was running)."""

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, write_section

# Lightest first: the pages and webhooks do not leave workers or queues behind for the runs.
BENCHMARKS = [
    ("pages", "Pages with 50,000 pre-orders"),
    ("webhook_ingestion", "Webhook ingestion"),
    ("charge_run", "Charge run over 5,000 pre-orders, 1, 2 and 4 workers, and time to ticket"),
    ("embedded_tickets", "Tickets on the embedded default (300 charges)"),
    ("stripe_proxy_throughput", "The Stripe stand-in itself"),
]
DOC = ROOT / "docs" / "benchmarks.md"
INTRO = """# Benchmarks

Measured on the project's 2-core, 24 GiB machine, with the load generator, PostgreSQL, Redis,
localstripe and the Stripe stand-in on the same cores. The machine is shared and noisy, so each
benchmark measures its own baseline in the same run and the ratios matter more than the absolute
figures. `bench/all` runs them all, one after another, and rewrites this page; each section says
the one command that reproduces it on its own (PostgreSQL on 127.0.0.1:5432 and Redis on
127.0.0.1:6379 must be up; every benchmark builds its own `presale_bench*` database).

| what | command |
| --- | --- |
{commands}
"""


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def _command_line(proc: Path) -> str:
    """A short, readable command line ("python -m pytest tests/…"), to tell processes apart."""
    try:
        words = [w.decode(errors="replace") for w in (proc / "cmdline").read_bytes().split(b"\0")]
    except OSError:
        return ""
    words = [w for w in words if w]
    if not words:
        return ""
    return " ".join([Path(words[0]).name, *words[1:4]])[:70]


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = _command_line(stat.parent) or text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        ticks[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))  # utime+stime
    return ticks


def busiest_processes(limit: int = 5, window: float = 2.0) -> str:
    """The processes that used the most CPU over the last `window` seconds (not ps's lifetime
    average, which hides a process that has just become busy)."""
    first = _cpu_ticks()
    time.sleep(window)
    second = _cpu_ticks()
    per_second = os.sysconf("SC_CLK_TCK") * window
    busy = sorted(
        (
            ((ticks - first[pid][1]) / per_second * 100, name)
            for pid, (name, ticks) in second.items()
            if pid in first and pid != os.getpid()
        ),
        reverse=True,
    )
    named = [f"{name} {cpu:.0f} %" for cpu, name in busy[:limit] if cpu >= 1]
    return ", ".join(named) or "nothing above 1 % of a core"


def machine() -> str:
    import psycopg

    memory_kib = int(
        next(
            line for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
        ).split()[1]
    )
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres") as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    return (
        f"{os.cpu_count()} cores, {memory_kib / 1024 / 1024:.0f} GiB, {platform.system()} "
        f"{platform.release()}, CPython {platform.python_version()}, PostgreSQL {postgres}"
    )


def _earlier_rows(keep: set[str]) -> dict[str, str]:
    """The Machine table's rows of benchmarks not run this time (`bench/all pages` keeps the
    others' rows as they were)."""
    text = DOC.read_text() if DOC.exists() else ""
    start = text.find("## Machine\n")
    if start == -1:
        return {}
    rows = {}
    for line in text[start:].split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in keep:
            rows[cells[0]] = line
    return rows


def main(names: list[str]) -> int:
    chosen = [entry for entry in BENCHMARKS if not names or entry[0] in names]
    unknown = set(names) - {name for name, _ in BENCHMARKS}
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if not names:  # a full run starts the page afresh: no figure from an older run survives
        commands = "\n".join(
            f"| {title} | `.venv/bin/python bench/{name}.py` |" for name, title in BENCHMARKS
        )
        DOC.write_text(INTRO.format(commands=commands))
    rows = _earlier_rows(keep={title for name, title in BENCHMARKS if (name, title) not in chosen})
    failed = []
    for name, title in chosen:
        before, busy = load_average(), busiest_processes()
        started = time.monotonic()
        print(f"=== {name} (load average {before}) ===", flush=True)
        result = subprocess.run([sys.executable, f"bench/{name}.py"], cwd=ROOT, check=False)
        minutes = (time.monotonic() - started) / 60
        if result.returncode != 0:
            failed.append(name)
        outcome = "ok" if result.returncode == 0 else f"failed (exit {result.returncode})"
        rows[title] = (
            f"| {title} | {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} | {minutes:.1f} min | "
            f"{before} | {load_average()} | {busy} | {outcome} |"
        )
    ordered = [rows[title] for _name, title in BENCHMARKS if title in rows]
    write_section(
        "Machine",
        f"""{machine()}. Each row is one benchmark as `bench/all` last ran it (UTC, when it
ended). Load average is the 1 / 5 / 15-minute one; "busiest before" lists the processes using
the most CPU just before the benchmark started (its own processes appear only after).

| benchmark | ended | took | load before | load after | busiest before | result |
| --- | --- | ---: | --- | --- | --- | --- |
"""
        + "\n".join(ordered),
    )
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
