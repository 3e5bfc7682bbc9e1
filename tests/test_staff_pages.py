"""The staff pages (namespace "staff"): who may open them, the events list, an event's pre-order
list (filter, search, sort, pages, a query count that does not grow with the list), bulk and
single decisions with their confirmation, the CSV export and closing the window early."""

import csv
import datetime as dt
import io
import itertools
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events.models import Event, EventLogEntry, PresaleCycle
from members.models import Member
from preorders import decisions
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.states import Status
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Helpers -------------------------------------------------------------------------------

_numbers = itertools.count(1)


def add_tickets(event: Event, n: int) -> None:
    start = Ticket.objects.filter(event=event).count()
    Ticket.objects.bulk_create(
        Ticket(event=event, code=f"T{event.pk}-{i}") for i in range(start, start + n)
    )


def close_window(cycle: PresaleCycle) -> None:
    PresaleCycle.objects.filter(pk=cycle.pk).update(
        closed_early_at=timezone.now() - dt.timedelta(seconds=1)
    )


def place_many(event: Event, n: int, status: str = Status.PENDING, **member_fields):
    """n pre-orders of n new members, placed a second apart (oldest first), in two queries;
    each call's pre-orders are placed after those of the calls before."""
    tag = next(_numbers)
    members = Member.objects.bulk_create(
        Member(
            email=member_fields.get("email") or f"m{tag}-{i}@example.com",
            full_name=member_fields.get("full_name") or f"Member {tag}-{i}",
            password="!",
        )
        for i in range(n)
    )
    base = timezone.now() - dt.timedelta(days=60) + dt.timedelta(hours=tag)
    return PreOrder.objects.bulk_create(
        PreOrder(
            member=member,
            event=event,
            cycle=event.cycle,
            status=status,
            amount_pence=2250,
            stripe_customer_id="cus_x",
            payment_method_id="pm_x",
            setup_intent_id=f"seti_{tag}_{i}",
            card_brand="visa",
            card_last4="4242",
            created_at=base + dt.timedelta(seconds=i),
        )
        for i, member in enumerate(members)
    )


def place(event: Event, status: str = Status.PENDING, **member_fields) -> PreOrder:
    return place_many(event, 1, status, **member_fields)[0]


def status_of(preorder: PreOrder) -> str:
    return PreOrder.objects.get(pk=preorder.pk).status


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def row_ids(response) -> list[int]:
    """The pre-orders listed on an event page, in the order shown."""
    return [
        int(pk) for pk in re.findall(r'type="checkbox" name="ids" value="(\d+)"', html(response))
    ]


def html(response) -> str:
    return response.content.decode()


def hidden_fields(response) -> list[tuple[str, str]]:
    """The hidden inputs of the page's forms, as a browser would post them back."""
    return re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html(response))


def as_post_data(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def event(make_event):
    return make_event(title="Jazz in the Cellar")


@pytest.fixture
def review(event):
    close_window(event.cycle)
    event.cycle.refresh_from_db()
    return event


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


# --- Who may open what -----------------------------------------------------------------------


@pytest.fixture
def staff_urls(event):
    """(url name, url, POST-only?) for every staff URL."""
    preorder = place(event)
    ballot = EventLogEntry.objects.create(
        event=event,
        cycle=event.cycle,
        action="auto_fulfil",
        data={"mode": "ballot", "seed": 1, "places": 0, "candidates": [], "approved": []},
    )
    return [
        ("events", reverse("staff:events"), False),
        ("event_new", reverse("staff:event_new"), False),
        ("event_edit", reverse("staff:event_edit", args=[event.pk]), False),
        ("event_delete", reverse("staff:event_delete", args=[event.pk]), False),
        ("copy_week", reverse("staff:copy_week", args=[event.cycle_id]), True),
        ("verify_ballot", reverse("staff:verify_ballot", args=[ballot.pk]), False),
        ("event", reverse("staff:event", args=[event.pk]), False),
        ("export_csv", reverse("staff:export_csv", args=[event.pk]), False),
        ("preorder", reverse("staff:preorder", args=[preorder.pk]), False),
        ("decide", reverse("staff:decide", args=[event.pk]), True),
        ("auto_fulfil", reverse("staff:auto_fulfil", args=[event.pk]), True),
        ("decide_one", reverse("staff:decide_one", args=[preorder.pk]), True),
        ("close_early", reverse("staff:close_early", args=[event.cycle_id]), True),
        ("resend_ticket", reverse("staff:resend_ticket", args=[preorder.pk]), True),
        (
            "resend_failed_tickets",
            reverse("staff:resend_failed_tickets", args=[event.pk]),
            True,
        ),
    ]


def test_every_staff_url_is_covered(staff_urls):
    from preorders import staff_urls as urlconf

    names = {pattern.name for pattern in urlconf.urlpatterns}
    assert names == {name for name, _, _ in staff_urls} | {"home"}


def test_anonymous_visitors_are_sent_to_log_in(client, staff_urls):
    login = reverse("members:login")
    for name, url, _ in staff_urls:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, (name, method)
            assert response.url.startswith(f"{login}?next="), (name, response.url)
    assert PresaleCycle.objects.get().closed_early_at is None
    assert not PreOrderLogEntry.objects.exists()


def test_members_who_are_not_staff_get_403(client, member, staff_urls):
    client.force_login(member)
    for name, url, _ in staff_urls:
        assert client.get(url).status_code == 403, name
        assert client.post(url, {"action": "approve"}).status_code == 403, name
    assert PresaleCycle.objects.get().closed_early_at is None


def test_staff_can_open_the_pages_and_post_only_urls_refuse_get(staff_client, staff_urls):
    for name, url, post_only in staff_urls:
        response = staff_client.get(url)
        assert response.status_code == (405 if post_only else 200), name


def test_staff_home_redirects_to_the_events(client, member, staff):
    url = reverse("staff:home")
    anonymous = client.get(url, follow=True)
    assert anonymous.redirect_chain[-1][0].startswith(reverse("members:login"))
    client.force_login(member)
    assert client.get(url, follow=True).status_code == 403
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 302 and response.url == reverse("staff:events")


def test_unknown_ids_are_404_for_staff(staff_client):
    for url in (
        reverse("staff:event", args=[999999]),
        reverse("staff:export_csv", args=[999999]),
        reverse("staff:preorder", args=[999999]),
    ):
        assert staff_client.get(url).status_code == 404
    for url in (
        reverse("staff:decide", args=[999999]),
        reverse("staff:auto_fulfil", args=[999999]),
        reverse("staff:decide_one", args=[999999]),
        reverse("staff:close_early", args=[999999]),
    ):
        assert staff_client.post(url, {"action": "approve", "ids": ["1"]}).status_code == 404


# --- The events list ---------------------------------------------------------------------------


def event_row_cells(page: str, event: Event) -> list[str]:
    """The numeric cells of the event's row on the events list, as text."""
    href = reverse("staff:event", args=[event.pk])
    row = next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if f'href="{href}"' in r)
    cells = re.findall(r'<td class="num"[^>]*>(.*?)</td>', row, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


def test_events_list_shows_counts_and_supply(staff_client, event, make_event):
    other = make_event(title="Comedy Night")
    add_tickets(event, 12)
    add_tickets(other, 3)
    Ticket.objects.filter(pk=Ticket.objects.filter(event=event).first().pk).update(
        voided_at=timezone.now()
    )
    place_many(event, 4)
    place_many(event, 3, Status.APPROVED)
    place_many(event, 2, Status.DENIED)
    place_many(event, 1, Status.CANCELLED)
    place_many(event, 2, Status.PAID)
    place_many(event, 1, Status.FAILED)

    response = staff_client.get(reverse("staff:events"))

    page = html(response)
    assert response.status_code == 200
    assert "Jazz in the Cellar" in page and "Comedy Night" in page
    # Pending, Approved, Denied, Not allocated, Cancelled, Paid, Tickets sent, Failed, Supply
    assert event_row_cells(page, event) == ["4", "3", "2", "0", "1", "2", "0", "1", "11"]
    assert event_row_cells(page, other) == ["0", "0", "0", "0", "0", "0", "0", "0", "3"]
    assert "5 / 11 taken · 6 left" in page  # approved 3 + paid 2: places taken, not "approved"
    assert "Close pre-orders now" in page  # the window is open


# --- An event's pre-orders ---------------------------------------------------------------------


def test_event_page_shows_the_pool_and_the_preorders(staff_client, event):
    add_tickets(event, 5)
    place_many(event, 1, full_name="Zoe Pending", email="zoe@example.com")
    place_many(event, 2, Status.APPROVED)

    response = staff_client.get(reverse("staff:event", args=[event.pk]))

    page = html(response)
    assert re.search(r'data-testid="stat-supply">5<', page)
    assert re.search(r'data-testid="stat-approved">2<', page)
    assert re.search(r'data-testid="stat-left">3<', page)
    assert "Zoe Pending" in page and "zoe@example.com" in page
    assert "£22.50" in page
    assert "3 pre-orders match this filter." in page
    # The window is open: no decisions yet.
    assert "Decisions open when the pre-order window closes." in page
    assert "Approve selected" not in page


def test_event_page_in_review_offers_decisions(staff_client, review):
    place_many(review, 2)
    page = html(staff_client.get(reverse("staff:event", args=[review.pk])))
    assert "Approve selected" in page and "Deny selected" in page and "Auto-fulfil" in page


def test_event_page_filters_by_status(staff_client, event):
    pending = place_many(event, 3)
    approved = place_many(event, 2, Status.APPROVED)
    url = reverse("staff:event", args=[event.pk])

    assert sorted(row_ids(staff_client.get(url, {"status": "approved"}))) == sorted(
        p.pk for p in approved
    )
    assert sorted(row_ids(staff_client.get(url, {"status": "pending"}))) == sorted(
        p.pk for p in pending
    )
    assert row_ids(staff_client.get(url, {"status": "denied"})) == []
    # An unknown status is ignored rather than an error.
    response = staff_client.get(url, {"status": "bogus"})
    assert response.status_code == 200 and len(row_ids(response)) == 5


def test_event_page_searches_by_name_and_email(staff_client, event):
    [ann] = place_many(event, 1, full_name="Ann Lovelace", email="ann@maths.example")
    [bob] = place_many(event, 1, full_name="Bob Babbage", email="bob@engines.example")
    url = reverse("staff:event", args=[event.pk])

    assert row_ids(staff_client.get(url, {"q": "lovelace"})) == [ann.pk]
    assert row_ids(staff_client.get(url, {"q": "ENGINES.example"})) == [bob.pk]
    assert row_ids(staff_client.get(url, {"q": "  bob  "})) == [bob.pk]
    assert row_ids(staff_client.get(url, {"q": "nobody"})) == []
    assert "No pre-orders match." in html(staff_client.get(url, {"q": "nobody"}))


def test_event_page_sorts_oldest_or_newest_first(staff_client, event):
    preorders = place_many(event, 4)
    url = reverse("staff:event", args=[event.pk])
    oldest_first = [p.pk for p in preorders]

    assert row_ids(staff_client.get(url)) == oldest_first
    assert row_ids(staff_client.get(url, {"sort": "oldest"})) == oldest_first
    assert row_ids(staff_client.get(url, {"sort": "newest"})) == oldest_first[::-1]


def test_event_page_paginates(staff_client, event):
    preorders = place_many(event, 120)
    url = reverse("staff:event", args=[event.pk])

    pages = [staff_client.get(url, {"page": n}) for n in (1, 2, 3)]

    assert [len(row_ids(page)) for page in pages] == [50, 50, 20]
    assert [pk for page in pages for pk in row_ids(page)] == [p.pk for p in preorders]
    assert "Page 1 of 3" in html(pages[0]) and "Page 3 of 3" in html(pages[2])
    assert "120 pre-orders match this filter." in html(pages[0])
    # Out-of-range or garbage page numbers fall back to a real page.
    assert row_ids(staff_client.get(url, {"page": 99})) == row_ids(pages[2])
    assert row_ids(staff_client.get(url, {"page": "abc"})) == row_ids(pages[0])
    # The page links keep the filter.
    filtered = staff_client.get(url, {"status": "pending", "sort": "newest"})
    assert re.search(r"\?status=pending&(amp;)?sort=newest&(amp;)?page=2", html(filtered))


def test_event_page_query_count_does_not_grow_with_the_preorders(staff_client, staff, make_event):
    small, large = make_event(title="Small"), make_event(title="Large")
    for event, n in ((small, 10), (large, 100)):
        add_tickets(event, 5)
        place_many(event, n)
    close_window(small.cycle)
    for event in (small, large):
        ids = list(PreOrder.objects.filter(event=event).values_list("pk", flat=True))
        decisions.approve(event.pk, ids[:3], actor=staff)
        decisions.deny(event.pk, ids[3:8], actor=staff)
        decisions.auto_fulfil(event.pk, actor=staff, mode="ballot", seed=1)
    staff_client.get(reverse("staff:event", args=[small.pk]))  # warm up caches

    counts = {}
    for event in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(reverse("staff:event", args=[event.pk]))
        assert response.status_code == 200
        counts[event.title] = len(queries)

    assert len(row_ids(response)) == 50
    assert counts["Large"] == counts["Small"], counts
    assert counts["Large"] <= 20, counts


def test_events_list_query_count_does_not_grow_with_events(staff_client, make_event):
    make_event(title="One")
    staff_client.get(reverse("staff:events"))
    with CaptureQueriesContext(connection) as few:
        staff_client.get(reverse("staff:events"))
    for i in range(15):
        event = make_event(title=f"More {i}")
        add_tickets(event, 2)
        place_many(event, 3)
    with CaptureQueriesContext(connection) as many:
        staff_client.get(reverse("staff:events"))
    assert len(many) == len(few)


# --- Bulk decisions ---------------------------------------------------------------------------


def test_bulk_approve_asks_for_confirmation_then_applies(staff_client, review):
    add_tickets(review, 2)
    preorders = place_many(review, 3)
    ids = [str(p.pk) for p in preorders]
    url = reverse("staff:decide", args=[review.pk])

    confirm = staff_client.post(url, {"action": "approve", "ids": ids, "note": "Friday crowd"})

    page = html(confirm)
    assert confirm.status_code == 200
    assert 'data-testid="confirmation"' in page
    assert "Approve 3 pre-orders?" in page
    assert "3 selected (3 pending)" in page
    assert "Only 2 places left: the first 2 by pre-order time will be approved" in page
    assert [status_of(p) for p in preorders] == [Status.PENDING] * 3
    assert not PreOrderLogEntry.objects.exists()

    done = staff_client.post(url, as_post_data(hidden_fields(confirm)))

    assert done.status_code == 302
    assert done.url == reverse("staff:event", args=[review.pk])
    assert [status_of(p) for p in preorders] == [Status.APPROVED, Status.APPROVED, Status.PENDING]
    assert set(PreOrderLogEntry.objects.values_list("note", flat=True)) == {"Friday crowd"}
    shown = messages_of(done)
    assert any(m.startswith("Approved 2.") for m in shown), shown
    assert any("1 pre-order not approved: the pool has no places left" in m for m in shown), shown


def test_bulk_approve_confirmation_when_supply_suffices(staff_client, review):
    add_tickets(review, 5)
    preorders = place_many(review, 3)
    response = staff_client.post(
        reverse("staff:decide", args=[review.pk]),
        {"action": "approve", "ids": [p.pk for p in preorders]},
    )
    assert "Supply suffices: 3 will be approved; 5 places left." in html(response)


def test_bulk_deny_asks_for_confirmation_then_applies(staff_client, review, staff):
    add_tickets(review, 5)
    preorders = place_many(review, 3)
    decisions.approve(review.pk, [preorders[0].pk], actor=staff)
    url = reverse("staff:decide", args=[review.pk])
    ids = [p.pk for p in preorders[:2]]

    confirm = staff_client.post(url, {"action": "deny", "ids": ids})

    page = html(confirm)
    assert "Deny 2 pre-orders?" in page
    assert "2 will be denied" in page
    assert status_of(preorders[0]) == Status.APPROVED

    done = staff_client.post(url, {"action": "deny", "ids": ids, "confirmed": "1"})

    assert done.status_code == 302
    assert [status_of(p) for p in preorders] == [Status.DENIED, Status.DENIED, Status.PENDING]
    assert any(m.startswith("Denied 2.") for m in messages_of(done))


def test_all_matching_acts_on_exactly_the_filtered_set(staff_client, review):
    add_tickets(review, 50)
    pending = place_many(review, 4)
    denied = place_many(review, 3, Status.DENIED)
    cancelled = place_many(review, 1, Status.CANCELLED)
    url = reverse("staff:decide", args=[review.pk])
    form = {"action": "approve", "all_matching": "1", "status": "denied", "q": "", "sort": ""}

    confirm = staff_client.post(url, form)

    assert "Approve 3 pre-orders?" in html(confirm)
    # The confirmation carries the filter, not thousands of ids: the set is resolved again on
    # confirm, so it fits any form-field limit.
    posted = as_post_data(hidden_fields(confirm))
    assert posted["all_matching"] in ("1", ["1"])
    assert posted["status"] in ("denied", ["denied"])
    assert "ids" not in posted

    done = staff_client.post(url, as_post_data(hidden_fields(confirm)))

    assert done.status_code == 302
    assert [status_of(p) for p in denied] == [Status.APPROVED] * 3
    assert [status_of(p) for p in pending] == [Status.PENDING] * 4
    assert status_of(cancelled[0]) == Status.CANCELLED


def test_after_confirming_staff_are_back_on_the_filtered_list(staff_client, review):
    add_tickets(review, 5)
    place_many(review, 2, Status.DENIED)
    url = reverse("staff:decide", args=[review.pk])
    confirm = staff_client.post(url, {"action": "approve", "all_matching": "1", "status": "denied"})
    assert f'href="{reverse("staff:event", args=[review.pk])}?status=denied"' in html(confirm)

    done = staff_client.post(url, as_post_data(hidden_fields(confirm)))

    assert done.url == f"{reverse('staff:event', args=[review.pk])}?status=denied"


def test_all_matching_confirmed_directly_keeps_the_filter(staff_client, review):
    add_tickets(review, 50)
    [ann] = place_many(review, 1, full_name="Ann Lovelace")
    others = place_many(review, 3)
    url = reverse("staff:decide", args=[review.pk])

    done = staff_client.post(
        url,
        {"action": "deny", "all_matching": "1", "q": "lovelace", "confirmed": "1"},
    )

    assert status_of(ann) == Status.DENIED
    assert [status_of(p) for p in others] == [Status.PENDING] * 3
    assert done.url == f"{reverse('staff:event', args=[review.pk])}?q=lovelace"


def test_all_matching_with_more_preorders_than_form_fields_can_be_confirmed(
    staff_client, review, settings
):
    """Selecting "all matching" for a big event must still be confirmable: the confirmation
    form cannot post back more ids than Django accepts fields (DATA_UPLOAD_MAX_NUMBER_FIELDS)."""
    n = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 10
    add_tickets(review, n)
    place_many(review, n)
    url = reverse("staff:decide", args=[review.pk])

    confirm = staff_client.post(url, {"action": "approve", "all_matching": "1"})
    assert confirm.status_code == 200
    done = staff_client.post(url, as_post_data(hidden_fields(confirm)))

    assert done.status_code == 302
    assert PreOrder.objects.filter(event=review, status=Status.APPROVED).count() == n


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "approve"}, "Select at least one pre-order."),
        ({"action": "approve", "ids": [], "confirmed": "1"}, "Select at least one pre-order."),
        ({"action": "explode", "ids": ["PK"], "confirmed": "1"}, "Select a valid choice."),
        ({"ids": ["PK"], "confirmed": "1"}, "This field is required."),
        ({"action": "approve", "ids": ["abc"], "confirmed": "1"}, "Select a valid choice."),
        ({"action": "approve", "ids": ["PK", "1.5"], "confirmed": "1"}, "Select a valid choice."),
        ({"action": "approve", "ids": ["PK"], "note": "x" * 201, "confirmed": "1"}, "at most"),
    ],
)
def test_bad_bulk_input_changes_nothing(staff_client, review, data, message):
    add_tickets(review, 5)
    preorder = place(review)
    if "ids" in data:
        data = {**data, "ids": [str(preorder.pk) if v == "PK" else v for v in data["ids"]]}

    response = staff_client.post(reverse("staff:decide", args=[review.pk]), data)

    assert response.status_code == 302
    assert response.url.startswith(reverse("staff:event", args=[review.pk]))
    assert any(message in m for m in messages_of(response)), messages_of(response)
    assert status_of(preorder) == Status.PENDING
    assert not PreOrderLogEntry.objects.exists()


@pytest.mark.parametrize("bad_id", ["99999999999999999999999", "-1", "0"])
def test_out_of_range_ids_are_refused_or_ignored(staff_client, review, bad_id):
    add_tickets(review, 5)
    preorder = place(review)

    response = staff_client.post(
        reverse("staff:decide", args=[review.pk]),
        {"action": "approve", "ids": [bad_id], "confirmed": "1"},
    )

    assert response.status_code == 302
    assert status_of(preorder) == Status.PENDING


def test_ids_of_another_event_are_ignored(staff_client, review, make_event):
    add_tickets(review, 5)
    other = make_event(title="Other")
    add_tickets(other, 5)
    foreign = place(other)

    staff_client.post(
        reverse("staff:decide", args=[review.pk]),
        {"action": "approve", "ids": [foreign.pk], "confirmed": "1"},
    )

    assert status_of(foreign) == Status.PENDING


def test_bulk_decisions_while_the_window_is_open_are_refused(staff_client, event):
    add_tickets(event, 5)
    preorder = place(event)

    response = staff_client.post(
        reverse("staff:decide", args=[event.pk]),
        {"action": "approve", "ids": [preorder.pk], "confirmed": "1"},
    )

    assert response.status_code == 302
    assert any("still open" in m for m in messages_of(response))
    assert status_of(preorder) == Status.PENDING


def test_bulk_decisions_after_the_lock_are_refused(staff_client, review):
    add_tickets(review, 5)
    preorder = place(review, Status.DENIED)
    decisions.lock_decisions(review.cycle_id)

    response = staff_client.post(
        reverse("staff:decide", args=[review.pk]),
        {"action": "approve", "ids": [preorder.pk], "confirmed": "1"},
    )

    assert any("charge run has started" in m for m in messages_of(response))
    assert status_of(preorder) == Status.DENIED


# --- Auto-fulfil from the page ------------------------------------------------------------------


def test_auto_fulfil_asks_then_runs_the_ballot_with_the_given_seed(staff_client, review):
    add_tickets(review, 2)
    place_many(review, 5)
    url = reverse("staff:auto_fulfil", args=[review.pk])

    confirm = staff_client.post(url, {"mode": "ballot", "seed": "42"})

    assert confirm.status_code == 200
    assert "approve up to <strong>2</strong> of the <strong>5</strong> pending" in html(confirm)
    assert "Seed 42 will be used." in html(confirm)
    assert not PreOrder.objects.filter(status=Status.APPROVED).exists()

    done = staff_client.post(url, as_post_data(hidden_fields(confirm)))

    assert done.status_code == 302
    approved = PreOrder.objects.filter(event=review, status=Status.APPROVED)
    assert approved.count() == 2
    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert entry.data["seed"] == 42 and decisions.verify_ballot(entry)
    assert any("Ballot seed: 42." in m for m in messages_of(done))
    assert Event.objects.get(pk=review.pk).fulfilment_mode == "ballot"


def test_auto_fulfil_with_a_bad_mode_changes_nothing(staff_client, review):
    add_tickets(review, 2)
    place_many(review, 2)
    response = staff_client.post(
        reverse("staff:auto_fulfil", args=[review.pk]), {"mode": "loudest", "confirmed": "1"}
    )
    assert response.status_code == 302
    assert messages_of(response)
    assert not PreOrder.objects.filter(status=Status.APPROVED).exists()


# --- CSV export --------------------------------------------------------------------------------


def test_csv_export_has_a_header_and_one_row_per_preorder(staff_client, event):
    preorders = place_many(event, 3)

    response = staff_client.get(reverse("staff:export_csv", args=[event.pk]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="event-{event.pk}-preorders-'
    )
    rows = csv_rows(response)
    assert rows[0] == [
        "preorder_id",
        "member_name",
        "member_email",
        "placed_at_london",
        "status",
        "payment",
        "amount_pence",
        "card_brand",
        "card_last4",
    ]
    assert [int(row[0]) for row in rows[1:]] == [p.pk for p in preorders]
    first = rows[1]
    assert first[1] == preorders[0].member.full_name
    assert first[2] == preorders[0].member.email
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", first[3])
    assert first[4:] == ["pending", "Not charged", "2250", "visa", "4242"]


def test_csv_export_applies_the_filter(staff_client, event):
    place_many(event, 3)
    approved = place_many(event, 2, Status.APPROVED)
    [ann] = place_many(event, 1, Status.APPROVED, full_name="Ann Lovelace")
    url = reverse("staff:export_csv", args=[event.pk])

    rows = csv_rows(staff_client.get(url, {"status": "approved", "sort": "newest"}))
    assert [int(r[0]) for r in rows[1:]] == [ann.pk, *[p.pk for p in reversed(approved)]]
    rows = csv_rows(staff_client.get(url, {"q": "lovelace"}))
    assert [int(r[0]) for r in rows[1:]] == [ann.pk]


@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://evil.example","Click me")', "+SUM(1,2)", "-2+3", "@cmd", "\t=1"],
)
def test_csv_export_neutralises_formulas(staff_client, event, name):
    place_many(event, 1, full_name=name, email="=evil@example.com")

    rows = csv_rows(staff_client.get(reverse("staff:export_csv", args=[event.pk])))

    assert rows[1][1] == "'" + name
    assert rows[1][2] == "'=evil@example.com"


def test_csv_export_of_failed_payment_says_why(staff_client, event):
    [failed] = place_many(event, 1, Status.FAILED)
    PreOrder.objects.filter(pk=failed.pk).update(failure_reason="card_declined: Declined.")
    rows = csv_rows(staff_client.get(reverse("staff:export_csv", args=[event.pk])))
    assert rows[1][4:6] == ["failed", "Failed: card_declined: Declined."]


# --- One pre-order at a time ---------------------------------------------------------------------


def test_preorder_page_shows_the_preorder_and_its_history(staff_client, review, staff):
    add_tickets(review, 1)
    [preorder] = place_many(review, 1, full_name="Zoe Page", email="zoe@example.com")
    decisions.approve(review.pk, [preorder.pk], actor=staff)

    page = html(staff_client.get(reverse("staff:preorder", args=[preorder.pk])))

    assert "Zoe Page" in page and "zoe@example.com" in page
    assert 'data-testid="staff-status">Approved<' in page
    assert "from Pending to <strong>Approved</strong>" in page
    assert "Harriet Staff" in page


def test_decide_one_approves_and_denies(staff_client, review):
    add_tickets(review, 1)
    preorder = place(review)
    url = reverse("staff:decide_one", args=[preorder.pk])

    approved = staff_client.post(url, {"action": "approve"})

    assert approved.status_code == 302
    assert approved.url == reverse("staff:preorder", args=[preorder.pk])
    assert status_of(preorder) == Status.APPROVED
    assert f"Pre-order #{preorder.pk} approved." in messages_of(approved)

    denied = staff_client.post(url, {"action": "deny", "next": "event"})

    assert denied.url == reverse("staff:event", args=[review.pk])
    assert status_of(preorder) == Status.DENIED
    assert f"Pre-order #{preorder.pk} denied." in messages_of(denied)
    log = PreOrderLogEntry.objects.filter(preorder=preorder).order_by("id")
    assert [(e.to_status, e.source) for e in log] == [
        (Status.APPROVED, "staff"),
        (Status.DENIED, "staff"),
    ]


def test_decide_one_without_supply_or_with_a_bad_action(staff_client, review):
    add_tickets(review, 1)
    place(review, Status.PAID)
    preorder = place(review)
    url = reverse("staff:decide_one", args=[preorder.pk])

    full = staff_client.post(url, {"action": "approve"})
    bad = staff_client.post(url, {"action": "explode"})

    assert "Not approved: the event's pool has no places left." in messages_of(full)
    assert "Choose approve or deny." in messages_of(bad)
    assert status_of(preorder) == Status.PENDING


def test_decide_one_on_a_paid_preorder_is_refused(staff_client, review):
    add_tickets(review, 1)
    preorder = place(review, Status.PAID)
    response = staff_client.post(
        reverse("staff:decide_one", args=[preorder.pk]), {"action": "deny"}
    )
    assert "This pre-order can no longer be decided." in messages_of(response)
    assert status_of(preorder) == Status.PAID


def test_decide_one_while_the_window_is_open_is_refused(staff_client, event):
    add_tickets(event, 1)
    preorder = place(event)
    response = staff_client.post(
        reverse("staff:decide_one", args=[preorder.pk]), {"action": "approve"}
    )
    assert any("still open" in m for m in messages_of(response))
    assert status_of(preorder) == Status.PENDING


# --- Closing the window early --------------------------------------------------------------------


def test_close_early_from_the_events_page(staff_client, open_cycle, staff):
    url = reverse("staff:close_early", args=[open_cycle.pk])

    response = staff_client.post(url)

    assert response.status_code == 302 and response.url == reverse("staff:events")
    assert "Pre-orders are closed. The review can start now." in messages_of(response)
    cycle = PresaleCycle.objects.get(pk=open_cycle.pk)
    assert cycle.closed_early_at is not None
    entry = EventLogEntry.objects.get(action="window_closed_early")
    assert entry.actor_id == staff.pk

    again = staff_client.post(url)

    assert any("already closed" in m for m in messages_of(again))
    assert PresaleCycle.objects.get(pk=open_cycle.pk).closed_early_at == cycle.closed_early_at
    assert EventLogEntry.objects.filter(action="window_closed_early").count() == 1
    page = html(staff_client.get(reverse("staff:events")))
    assert "In review" in page
    # In the week's log on the events page, as the README says.
    assert f"{staff.full_name}</strong>: Pre-order window closed early at" in page


# --- CSRF ----------------------------------------------------------------------------------------


def test_posts_need_a_csrf_token(staff, review):
    add_tickets(review, 5)
    preorder = place(review)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    posts = [
        (
            reverse("staff:decide", args=[review.pk]),
            {"action": "approve", "ids": [preorder.pk], "confirmed": "1"},
        ),
        (reverse("staff:decide_one", args=[preorder.pk]), {"action": "approve"}),
        (reverse("staff:auto_fulfil", args=[review.pk]), {"mode": "fifo", "confirmed": "1"}),
        (reverse("staff:close_early", args=[review.cycle_id]), {}),
    ]

    for url, data in posts:
        assert client.post(url, data).status_code == 403, url

    assert status_of(preorder) == Status.PENDING
    assert not EventLogEntry.objects.exists()

    # With the token from the page, the same post goes through.
    page = html(client.get(reverse("staff:preorder", args=[preorder.pk])))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("staff:decide_one", args=[preorder.pk]),
        {"action": "approve", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert status_of(preorder) == Status.APPROVED
