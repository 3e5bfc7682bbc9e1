"""Page speed with 50,000 pre-orders on PostgreSQL: the member dashboard, the staff events list
and the staff event page (first page, a deep page, a status filter, a search), with their query
counts, against /healthz in the same run as the baseline. Requests go through Django's whole
stack (middleware, session, auth, templates) in-process, BENCH_REPEAT times each.

Each staff event page is also measured against its floor (bench/pages_floor.py): a tuned bare
page showing the same rows and counts with the fewest queries and a minimal template, through
the same stack, mounted only here. Real and floor requests alternate, so load on the machine
falls on both alike; the benchmark checks that both show the same pre-orders. Targets: event page
p95 <= 1.2 x its floor's p95, and search p95 <= 50 ms.

    .venv/bin/python bench/pages.py            # writes the "Pages" section of docs/benchmarks.md

Environment: BENCH_ROWS (pre-orders on the big event, 50000), BENCH_SMALL_ROWS (on the small
one, 1000), BENCH_REPEAT (requests a page, 200), BENCH_DATABASE_URL (a database whose name starts
with presale_bench; dropped and rebuilt).
"""

import datetime as dt
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import fresh_database, setup_django, summary_ms, time_calls, write_section

ROWS = int(os.environ.get("BENCH_ROWS", "50000"))
SMALL = int(os.environ.get("BENCH_SMALL_ROWS", "1000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "200"))
BENCH_PASSWORD = "bench-password-1"


def build() -> dict:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from events.models import Event
    from events.selectors import current_cycle
    from members.models import Member
    from members.roles import Role, set_role
    from preorders.models import PreOrder
    from tickets.models import Ticket

    cycle = current_cycle()
    big = Event.objects.create(
        cycle=cycle,
        title="Big Night",
        venue="Hall",
        public_price_pence=2500,
        starts_at=cycle.charge_at + dt.timedelta(days=2),
    )
    small = Event.objects.create(
        cycle=cycle,
        title="Small Night",
        venue="Cellar",
        public_price_pence=2500,
        starts_at=cycle.charge_at + dt.timedelta(days=3),
    )
    Ticket.objects.bulk_create(Ticket(event=big, code=f"BIG-{n}") for n in range(5_000))
    password = make_password(BENCH_PASSWORD)
    members = Member.objects.bulk_create(
        Member(email=f"member{n}@example.com", full_name=f"Member {n}", password=password)
        for n in range(ROWS + SMALL)
    )
    staff = Member.objects.create_user(
        email="staff@example.com", password=BENCH_PASSWORD, full_name="Staff"
    )
    set_role(staff, Role.REVIEWER)
    statuses = ["pending"] * 6 + ["approved", "denied", "cancelled", "ticket_sent"]
    now = timezone.now()
    PreOrder.objects.bulk_create(
        (
            PreOrder(
                member=member,
                event=big if n < ROWS else small,
                cycle=cycle,
                status=statuses[n % len(statuses)],
                amount_pence=2250,
                stripe_customer_id=f"cus_{n}",
                payment_method_id=f"pm_{n}",
                setup_intent_id=f"seti_{n}",
                card_brand="visa",
                card_last4="4242",
                created_at=now - dt.timedelta(seconds=n),
            )
            for n, member in enumerate(members)
        ),
        batch_size=5_000,
    )
    from django.db import connection

    # The steady state autovacuum reaches soon after a bulk load: statistics for the planner, a
    # visibility map for index-only scans, and the GIN indexes' pending entries merged.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"big": big.pk, "small": small.pk, "member": members[7].email}


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


SEARCH = "member4242"
PRE_ORDER_IDS = re.compile(rb'name="ids" value="(\d+)"')
MATCHING = re.compile(rb"(\d+) pre-orders? match")


def _queries(client, url: str) -> int:
    from django.db import connection

    # Counted with a wrapper: Django clears its own query log at each request's start.
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        client.get(url)
    return counter.count


def _get(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content


def _same_rows(real: bytes, floor: bytes, url: str) -> int:
    """The floor must show what the real page shows: the same pre-orders and match count."""
    shown = PRE_ORDER_IDS.findall(real)
    assert shown == PRE_ORDER_IDS.findall(floor), url
    assert MATCHING.search(real).group(1) == MATCHING.search(floor).group(1), url
    return len(shown)


def _alternating(real, floor) -> tuple[list[float], list[float]]:
    """Real and floor requests one after the other, so a busy moment falls on both."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(3):
        real(), floor()
    for _ in range(REPEAT):
        for call, into in ((real, samples[0]), (floor, samples[1])):
            started = time.perf_counter()
            call()
            into.append((time.perf_counter() - started) * 1000)
    return samples


def measure(ids: dict) -> tuple[list, list]:
    from django.test import Client
    from django.test.utils import override_settings

    def client_for(email: str) -> Client:
        client = Client(SERVER_NAME="localhost")
        assert client.login(username=email, password=BENCH_PASSWORD)
        return client

    member = client_for(ids["member"])
    staff = client_for("staff@example.com")
    anonymous = Client(SERVER_NAME="localhost")
    big, deep = ids["big"], max(1, ROWS * 9 // 10 // 50)
    pages = [
        ("baseline: /healthz", anonymous, "/healthz"),
        ("member dashboard", member, "/"),
        ("staff events list", staff, "/staff/events/"),
        (f"staff event with {SMALL:,} rows", staff, f"/staff/events/{ids['small']}/"),
    ]
    event_pages = [
        (f"page 1 of {-(-ROWS // 50):,}", ""),
        (f"page {deep:,}", f"?page={deep}"),
        ("status=pending", "?status=pending"),
        (f"search {SEARCH!r}", f"?q={SEARCH}"),
    ]
    plain, paired = [], []
    with override_settings(ROOT_URLCONF="bench.pages_floor"):
        for label, client, url in pages:
            _get(client, url)
            samples = time_calls(lambda c=client, u=url: c.get(u), REPEAT)
            plain.append((label, summary_ms(samples), _queries(client, url)))
        for label, query in event_pages:
            real_url, floor_url = (
                f"/staff/events/{big}/{query}",
                f"/staff/bench-floor/events/{big}/{query}",
            )
            rows = _same_rows(_get(staff, real_url), _get(staff, floor_url), real_url)
            real, floor = _alternating(
                lambda u=real_url: staff.get(u), lambda u=floor_url: staff.get(u)
            )
            paired.append(
                (f"staff event, {label} ({rows} row{'s' if rows != 1 else ''})", summary_ms(real), _queries(staff, real_url),
                 summary_ms(floor), _queries(staff, floor_url))
            )  # fmt: skip
    return plain, paired


def _report(plain: list, paired: list, load: tuple[str, str]) -> str:
    baseline = plain[0][1]["p50"]
    lines = [
        "| page | p50 ms | p95 ms | p99 ms | queries | floor p50 | floor p95 | floor queries "
        "| p95 ÷ floor p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, ms, queries in plain:
        lines.append(f"| {label} | {ms['p50']} | {ms['p95']} | {ms['p99']} | {queries} | | | | |")
    for label, ms, queries, floor, floor_queries in paired:
        ratio = ms["p95"] / floor["p95"] if floor["p95"] else 0
        lines.append(
            f"| {label} | {ms['p50']} | {ms['p95']} | {ms['p99']} | {queries} | {floor['p50']} "
            f"| {floor['p95']} | {floor_queries} | {ratio:.2f}× |"
        )
    search = paired[-1][1]["p95"]
    return f"""Command: `.venv/bin/python bench/pages.py` (PostgreSQL `presale_bench`, dropped and
rebuilt, then VACUUM ANALYZE; {ROWS:,} pre-orders on one event plus {SMALL:,} on another;
{REPEAT} requests a page through Django's whole stack, in-process, on this 2-core machine; load
average {load[0]} at the start, {load[1]} at the end). Overrides: BENCH_ROWS, BENCH_SMALL_ROWS,
BENCH_REPEAT.

The floor beside each staff event page (bench/pages_floor.py, mounted only by the benchmark) is a
tuned bare page through the same middleware, session and staff permission check: the same
pre-orders in the same order with name, email, date, status, payment, card and price, the same
per-status counts, pool figures, match count and page number, from one grouped count, one pool
count and one row query (plus a count when searching), in a minimal template. The benchmark
checks that both show the same pre-orders. What the real page shows beyond it (event header and
forms, audit log, waitlist, door attendance, failed ticket emails, the missed-run banner, the
site layout) is the difference in queries and time.

Targets: staff event page p95 ≤ 1.2 × its floor's p95; search p95 ≤ 50 ms (here {search} ms); a
query count that does not grow with the rows. /healthz p50: {baseline} ms.

""" + "\n".join(lines)


def _load() -> str:
    return " / ".join(f"{n:.1f}" for n in os.getloadavg())


def main() -> None:
    fresh_database()
    setup_django()
    started = time.perf_counter()
    ids = build()
    print(f"Built {ROWS + SMALL:,} pre-orders in {time.perf_counter() - started:.0f} s")
    load_before = _load()
    plain, paired = measure(ids)
    for label, ms, queries in plain:
        print(f"{label:44} p50 {ms['p50']:7} p95 {ms['p95']:7} queries {queries}")
    for label, ms, queries, floor, floor_queries in paired:
        print(
            f"{label:44} p50 {ms['p50']:7} p95 {ms['p95']:7} queries {queries}"
            f"  floor p95 {floor['p95']:6} queries {floor_queries}"
            f"  ratio {ms['p95'] / floor['p95']:.2f}"
        )
    write_section("Pages with 50,000 pre-orders", _report(plain, paired, (load_before, _load())))


if __name__ == "__main__":
    main()
