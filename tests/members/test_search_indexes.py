"""Staff search by name or email is served by trigram indexes on PostgreSQL (members migration
0005): the indexes exist, and the plans of the real search querysets (the staff event page's and
the members page's) use them. On SQLite the migration does nothing and search still works."""

import pytest
from django.db import connection

from members.models import Member
from members.selectors import search_members
from preorders.models import PreOrder
from preorders.selectors import staff_event_preorders

pytestmark = pytest.mark.django_db

INDEXES = {"member_full_name_trgm", "member_email_trgm"}

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="pg_trgm indexes exist on PostgreSQL only; run with DATABASE_URL=postgres://...",
)


def _with_many_preorders(event, n: int = 2_000) -> None:
    """n members with a pre-order each, and fresh statistics: on an empty, never analysed table
    the planner rightly walks the event's pre-orders instead of any index of members."""
    members = Member.objects.bulk_create(
        Member(email=f"m{i}@example.com", full_name=f"Member {i}", password="!") for i in range(n)
    )
    PreOrder.objects.bulk_create(
        PreOrder(
            member=member,
            event=event,
            cycle=event.cycle,
            amount_pence=2250,
            stripe_customer_id="cus_x",
            payment_method_id="pm_x",
            setup_intent_id=f"seti_{member.pk}",
        )
        for member in members
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member, preorders_preorder")


def _plan(queryset) -> str:
    # Only bitmap scans left unpenalised: members can then be found only through a trigram
    # index or a lookup by id per pre-order, and a plan names a trigram index only if its
    # expression is exactly the query's. (At 50,000 rows the planner picks these indexes with
    # every plan allowed; see bench/pages.py.) SET LOCAL ends with the test's transaction.
    paths = ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan")
    with connection.cursor() as cursor:
        for path in paths:
            cursor.execute(f"SET LOCAL {path} = off")
    try:
        return queryset.explain()
    finally:
        with connection.cursor() as cursor:
            for path in paths:
                cursor.execute(f"RESET {path}")


@postgres_only
def test_the_trigram_indexes_exist_on_the_searched_expressions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'members_member'"
        )
        found = dict(cursor.fetchall())
    assert INDEXES <= found.keys()
    assert "gin_trgm_ops" in found["member_full_name_trgm"]
    assert "upper((full_name)::text)" in found["member_full_name_trgm"]
    assert "upper((email)::text)" in found["member_email_trgm"]


@postgres_only
def test_staff_event_search_uses_both_indexes(make_member, make_event):
    event = make_event()
    _with_many_preorders(event)
    ada = Member.objects.get(email="m1234@example.com")
    ids = staff_event_preorders(event.pk, query="m1234@").values_list("pk", flat=True)
    assert list(ids.all()) == list(ada.preorders.values_list("pk", flat=True))
    plan = _plan(ids[:50])
    assert all(name in plan for name in INDEXES), plan


@postgres_only
def test_members_page_search_uses_both_indexes(make_member, make_event):
    _with_many_preorders(make_event())
    plan = _plan(search_members("Lovelace")[:50])
    assert all(name in plan for name in INDEXES), plan


def test_search_finds_by_part_of_name_or_email_on_every_database(make_member):
    ada = make_member(email="ada@example.com", full_name="Ada Lovelace")
    make_member(email="grace@example.com", full_name="Grace Hopper")
    assert list(search_members("LOVEL")) == [ada]
    assert list(search_members("da@exa")) == [ada]
