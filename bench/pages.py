"""Page speed with 50,000 pre-orders on PostgreSQL: the member dashboard and the staff event
page (first page, a deep page, a status filter, a search), with their query counts, against
/healthz in the same run as the baseline. Requests go through Django's whole stack (middleware,
session, auth, templates) in-process, 200 times each.

    .venv/bin/python bench/pages.py            # writes the "Pages" section of docs/benchmarks.md
"""

import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import fresh_database, setup_django, summary_ms, time_calls, write_section

ROWS = 50_000
SMALL = 1_000
REPEAT = 200
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

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"big": big.pk, "small": small.pk, "member": members[7].email}


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(ids: dict) -> list[tuple[str, dict, int]]:
    from django.db import connection
    from django.test import Client

    def client_for(email: str) -> Client:
        client = Client(SERVER_NAME="localhost")
        assert client.login(username=email, password=BENCH_PASSWORD)
        return client

    member = client_for(ids["member"])
    staff = client_for("staff@example.com")
    anonymous = Client(SERVER_NAME="localhost")
    pages = [
        ("baseline: /healthz", anonymous, "/healthz"),
        ("member dashboard", member, "/"),
        ("staff events list", staff, "/staff/events/"),
        ("staff event, page 1 of 1,000", staff, f"/staff/events/{ids['big']}/"),
        ("staff event, page 900", staff, f"/staff/events/{ids['big']}/?page=900"),
        ("staff event, status=pending", staff, f"/staff/events/{ids['big']}/?status=pending"),
        ("staff event, search", staff, f"/staff/events/{ids['big']}/?q=member4242"),
        ("staff event with 1,000 rows", staff, f"/staff/events/{ids['small']}/"),
    ]
    results = []
    for label, client, url in pages:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        # Counted with a wrapper: Django clears its own query log at each request's start.
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            client.get(url)
        samples = time_calls(lambda c=client, u=url: c.get(u), REPEAT)
        results.append((label, summary_ms(samples), counter.count))
    return results


def main() -> None:
    fresh_database()
    setup_django()
    started = time.perf_counter()
    ids = build()
    print(f"Built {ROWS + SMALL:,} pre-orders in {time.perf_counter() - started:.0f} s")
    results = measure(ids)
    baseline = results[0][1]["p50"]
    lines = [
        "| page | p50 ms | p95 ms | p99 ms | p50 / baseline | queries |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, ms, queries in results:
        ratio = ms["p50"] / baseline if baseline else 0
        lines.append(
            f"| {label} | {ms['p50']} | {ms['p95']} | {ms['p99']} | {ratio:.1f}× | {queries} |"
        )
        print(f"{label:32} p50 {ms['p50']:7} p95 {ms['p95']:7} queries {queries}")
    write_section(
        "Pages with 50,000 pre-orders",
        f"""Command: `.venv/bin/python bench/pages.py` (PostgreSQL `presale_bench`, dropped and
rebuilt; {ROWS:,} pre-orders on one event plus {SMALL:,} on another; {REPEAT} requests a page
through Django's whole stack, in-process, on this 2-core machine). Target: p95 < 150 ms, and a
query count that does not grow with the rows (compare the 50,000-row and 1,000-row event).

"""
        + "\n".join(lines),
    )


if __name__ == "__main__":
    main()
