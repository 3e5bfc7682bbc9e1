"""The door pages over HTTP: the form without JavaScript, the JSON the scanner script reads, the
live count, the staff event page's list of who came, and the manager's undo page."""

import datetime as dt

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from events.models import EventLogEntry
from tickets.models import CheckIn, DoorScan

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def event(make_event):
    return make_event(title="Jazz in the Cellar")


@pytest.fixture
def ticket(event, member, issue_ticket):
    return issue_ticket(event, member, code="HC-7K3M-Q9TX-2B4R")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_door_picks_an_event_then_scans_without_javascript(event, ticket, door_staff):
    client = client_for(door_staff)
    events = client.get(reverse("tickets:door_events"))
    assert events.status_code == 200
    door_url = reverse("tickets:door", args=[event.pk])
    assert door_url in events.content.decode()

    page = client.get(door_url).content.decode()
    assert '0</b> of <b data-testid="issued">1</b>' in page

    answer = client.post(reverse("tickets:door_scan", args=[event.pk]), {"code": ticket.code})
    html = answer.content.decode()
    assert answer.status_code == 200
    assert 'data-result="valid"' in html and "Valid — welcome Alice Archer" in html
    assert '1</b> of <b data-testid="issued">1</b>' in html

    again = client.post(reverse("tickets:door_scan", args=[event.pk]), {"code": ticket.code})
    assert 'data-result="already_checked_in"' in again.content.decode()
    assert "by Dan Door" in again.content.decode()


def test_the_scanner_gets_the_answer_and_the_count_as_json(event, ticket, door_staff):
    client = client_for(door_staff)
    url = reverse("tickets:door_scan", args=[event.pk])
    with time_machine.travel(dt.datetime(2026, 12, 5, 19, 42, tzinfo=dt.UTC), tick=False):
        data = client.post(url, {"code": ticket.code}, **JSON).json()
    assert data == {
        "result": "valid",
        "label": "Valid",
        "time": "19:42",
        "headline": "Valid — welcome Alice Archer",
        "detail": "Ticket HC-7K3M-Q9TX-2B4R is now checked in.",
        "admitted": True,
        "ticket_code": "HC-7K3M-Q9TX-2B4R",
        "member": "Alice Archer",
        "count": {"checked_in": 1, "issued": 1},
    }
    unknown = client.post(url, {"code": "https://evil.example/HC-7K3M-Q9TX-2B4R"}, **JSON).json()
    assert (unknown["result"], unknown["admitted"]) == ("unknown", False)
    assert (unknown["ticket_code"], unknown["member"]) == ("", "")
    count = client.get(reverse("tickets:door_count", args=[event.pk])).json()
    assert count == {"checked_in": 1, "issued": 1}


def test_an_empty_scan_asks_for_a_code_and_records_nothing(event, door_staff):
    client = client_for(door_staff)
    url = reverse("tickets:door_scan", args=[event.pk])
    page = client.post(url, {"code": "  "})
    assert page.status_code == 400 and "Type or scan a ticket code first." in page.content.decode()
    assert client.post(url, {}, **JSON).json() == {"error": "Type or scan a ticket code first."}
    assert not DoorScan.objects.exists()


def test_a_huge_post_is_an_unknown_code(event, ticket, door_staff):
    client = client_for(door_staff)
    url = reverse("tickets:door_scan", args=[event.pk])
    data = client.post(url, {"code": "A" * 500_000}, **JSON).json()
    assert data["result"] == "unknown"
    assert not CheckIn.objects.exists()


def test_members_and_anonymous_visitors_cannot_scan_a_real_code(event, ticket, make_member):
    url = reverse("tickets:door_scan", args=[event.pk])
    assert client_for(make_member()).post(url, {"code": ticket.code}).status_code == 403
    assert Client().post(url, {"code": ticket.code}).status_code == 302
    assert not CheckIn.objects.exists() and not DoorScan.objects.exists()


def test_the_last_scans_are_on_the_door_page(event, ticket, door_staff):
    client = client_for(door_staff)
    client.post(reverse("tickets:door_scan", args=[event.pk]), {"code": ticket.code})
    client.post(reverse("tickets:door_scan", args=[event.pk]), {"code": "NOPE-1"})
    page = client.get(reverse("tickets:door", args=[event.pk])).content.decode()
    recent = page[page.index('data-testid="door-recent"') :]
    assert recent.index("Unknown code") < recent.index("Valid")  # newest first
    assert "Alice Archer" in recent and "NOPE-1" in recent


def test_the_staff_event_page_shows_who_came_and_managers_may_undo(
    event, ticket, door_staff, reviewer, staff
):
    client_for(door_staff).post(
        reverse("tickets:door_scan", args=[event.pk]), {"code": ticket.code}
    )
    check_in = CheckIn.objects.get()
    undo_url = reverse("tickets:check_in_undo", args=[check_in.pk])

    as_reviewer = client_for(reviewer).get(reverse("staff:event", args=[event.pk])).content
    section = as_reviewer.decode().split('data-testid="attendance"')[1]
    assert "1 of 1</b>" in section and "Alice Archer" in section and "Dan Door" in section
    assert undo_url not in section
    as_manager = client_for(staff).get(reverse("staff:event", args=[event.pk])).content.decode()
    assert undo_url in as_manager


def test_a_manager_undoes_a_check_in_from_its_page(event, ticket, door_staff, staff):
    client_for(door_staff).post(
        reverse("tickets:door_scan", args=[event.pk]), {"code": ticket.code}
    )
    check_in = CheckIn.objects.get()
    url = reverse("tickets:check_in_undo", args=[check_in.pk])
    manager = client_for(staff)

    assert "Why?" in manager.get(url).content.decode()
    refused = manager.post(url, {"reason": "   "})
    assert refused.status_code == 400
    assert "Say why the check-in is being undone." in refused.content.decode()
    assert CheckIn.objects.get().undone_at is None

    done = manager.post(url, {"reason": "Scanned the wrong phone"}, follow=True)
    page = done.content.decode()
    assert "is undone: it can be scanned in again" in page
    assert "Scanned the wrong phone" in page.split('data-testid="attendance"')[1]
    assert CheckIn.objects.get().undo_reason == "Scanned the wrong phone"
    assert EventLogEntry.objects.filter(action="check_in_undo").count() == 1
    assert "already undone" in manager.get(url).content.decode()


def test_a_reviewer_or_the_door_cannot_undo_a_check_in(event, ticket, door_staff, reviewer):
    client_for(door_staff).post(
        reverse("tickets:door_scan", args=[event.pk]), {"code": ticket.code}
    )
    url = reverse("tickets:check_in_undo", args=[CheckIn.objects.get().pk])
    for who in (door_staff, reviewer):
        client = client_for(who)
        assert client.get(url).status_code == 403
        assert client.post(url, {"reason": "Scanned by mistake"}).status_code == 403
    assert CheckIn.objects.get().undone_at is None
    assert not EventLogEntry.objects.filter(action="check_in_undo").exists()


def test_the_door_role_sees_the_door_in_the_menu_and_not_the_staff_pages(door_staff):
    page = client_for(door_staff).get(reverse("preorders:dashboard")).content.decode()
    assert reverse("tickets:door_events") in page
    assert reverse("staff:events") not in page
