"""The staff ticket-pool page and its endpoints: who may reach them, what bad input gets back
(a clear message, status 400, nothing changed) and what good input does."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from events.models import EventLogEntry
from preorders.models import PreOrder
from tickets.models import Ticket
from tickets.services import assign_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(make_event):
    return make_event(title="Jazz in the Cellar")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def pool_url(event) -> str:
    return reverse("tickets:pool", args=[event.pk])


def import_url(event) -> str:
    return reverse("tickets:pool_import", args=[event.pk])


def generate_url(event) -> str:
    return reverse("tickets:pool_generate", args=[event.pk])


def add_tickets(event, *codes: str) -> list[Ticket]:
    return Ticket.objects.bulk_create(Ticket(event=event, code=code) for code in codes)


def preorder(event, member, status: str = "approved", n: int = 1) -> PreOrder:
    return PreOrder.objects.create(
        member=member,
        event=event,
        cycle=event.cycle,
        status=status,
        amount_pence=1000,
        stripe_customer_id="cus_x",
        payment_method_id="pm_x",
        setup_intent_id=f"seti_pages_{n}",
    )


def csv_upload(content: bytes, name: str = "codes.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Who may reach what ---------------------------------------------------------------------


@pytest.fixture
def all_urls(event):
    (ticket,) = add_tickets(event, "T1")
    return {
        "pool": pool_url(event),
        "import": import_url(event),
        "generate": generate_url(event),
        "void": reverse("tickets:ticket_void", args=[ticket.pk]),
    }


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_sent_to_log_in(client, all_urls, method):
    login = reverse("members:login")
    for url in all_urls.values():
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{login}?next="), url
    assert Ticket.objects.get().voided_at is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_members_who_are_not_staff_get_403(client, member, all_urls, method):
    client.force_login(member)
    for url in all_urls.values():
        assert getattr(client, method)(url, {"count": "5"}).status_code == 403, url
    assert Ticket.objects.count() == 1 and Ticket.objects.get().voided_at is None


def test_staff_see_the_page_and_the_endpoints_are_post_only(staff_client, all_urls):
    assert staff_client.get(all_urls["pool"]).status_code == 200
    for name in ("import", "generate", "void"):
        assert staff_client.get(all_urls[name]).status_code == 405, name
    assert staff_client.post(all_urls["pool"]).status_code == 405


def test_the_posts_need_a_csrf_token(staff, all_urls):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    assert client.post(all_urls["import"], {"codes": "NEW-1"}).status_code == 403
    assert client.post(all_urls["generate"], {"count": "5"}).status_code == 403
    assert client.post(all_urls["void"]).status_code == 403
    assert list(Ticket.objects.values_list("code", "voided_at")) == [("T1", None)]


def test_the_forms_on_the_page_carry_a_csrf_token(staff_client, event):
    add_tickets(event, "T1")
    html = staff_client.get(pool_url(event)).text
    assert html.count('name="csrfmiddlewaretoken"') == 4  # sign out, import, generate, one void


def test_unknown_events_and_tickets_are_404(staff_client):
    assert staff_client.get("/staff/events/999999/pool/").status_code == 404
    assert (
        staff_client.post("/staff/events/999999/pool/generate/", {"count": "1"}).status_code == 404
    )
    assert staff_client.post("/staff/tickets/999999/void/").status_code == 404


@pytest.mark.parametrize("huge", ["99999999999999999999999", "9223372036854775808"])
def test_ids_too_big_for_the_database_are_404_not_500(staff_client, huge):
    assert staff_client.get(f"/staff/events/{huge}/pool/").status_code == 404
    assert staff_client.post(f"/staff/events/{huge}/pool/import/").status_code == 404
    assert staff_client.post(f"/staff/tickets/{huge}/void/").status_code == 404


# --- The page -------------------------------------------------------------------------------


def test_the_page_shows_the_summary_and_the_tickets(staff_client, event, make_member):
    tickets = add_tickets(event, "T1", "T2", "T3", "T4", "T5")
    Ticket.objects.filter(pk=tickets[4].pk).update(voided_at=tickets[4].created_at)
    paid = preorder(event, make_member(full_name="Paula Paid", password=None), "paid", n=1)
    assign_ticket(paid)
    preorder(event, make_member(password=None), "approved", n=2)

    response = staff_client.get(pool_url(event))

    html = response.text
    assert "Jazz in the Cellar" in html
    for name, value in {"supply": 4, "reserved": 1, "assigned": 1, "left": 2, "void": 1}.items():
        assert f'data-stat="{name}">{value}<' in html, name
    assert "Paula Paid" in html
    assert html.count('class="pool-void"') == 3  # T2-T4 are available; T1 assigned, T5 void
    assert "Void ticket T1" not in html and "Void ticket T5" not in html


def test_the_page_warns_when_approved_places_exceed_the_pool(staff_client, event, member):
    preorder(event, member)

    response = staff_client.get(pool_url(event))

    assert "1 more approved place than tickets" in response.text
    assert 'data-stat="left">-1<' in response.text


@pytest.mark.parametrize(
    ("state", "shown"),
    [("", {"T1", "T2", "T3"}), ("available", {"T2"}), ("assigned", {"T1"}), ("void", {"T3"})],
)
def test_the_table_filters_by_state(staff_client, event, member, state, shown):
    *_, t3 = add_tickets(event, "T1", "T2", "T3")
    assign_ticket(preorder(event, member, "paid"))
    Ticket.objects.filter(pk=t3.pk).update(voided_at=t3.created_at)

    response = staff_client.get(pool_url(event), {"state": state} if state else {})

    assert {ticket.code for ticket in response.context["page"]} == shown


def test_the_table_shows_100_tickets_a_page(staff_client, event):
    add_tickets(event, *(f"T{i:03d}" for i in range(150)))

    first = staff_client.get(pool_url(event))
    second = staff_client.get(pool_url(event), {"page": "2"})
    nonsense = staff_client.get(pool_url(event), {"page": "zzz", "state": "nonsense"})

    assert len(first.context["page"]) == 100 and "Page 1 of 2" in first.text
    assert [t.code for t in second.context["page"]][:1] == ["T100"]
    assert len(second.context["page"]) == 50
    assert nonsense.status_code == 200 and nonsense.context["page"].number == 1


# --- Import ---------------------------------------------------------------------------------


def test_import_a_csv_file(staff_client, event, staff):
    upload = csv_upload(b"\xef\xbb\xbfTicket code,Seat\r\nBX-001 ,A1\r\nBX-002,A2\r\n")

    response = staff_client.post(import_url(event), {"csv_file": upload}, follow=True)

    assert response.redirect_chain == [(pool_url(event), 302)]
    assert messages_of(response) == ["Imported 2 codes into the pool of Jazz in the Cellar."]
    assert list(Ticket.objects.filter(event=event).values_list("code", flat=True)) == [
        "BX-001",
        "BX-002",
    ]
    assert EventLogEntry.objects.get(action="pool_import").actor == staff


def test_import_pasted_codes(staff_client, event):
    response = staff_client.post(import_url(event), {"codes": "  P-1\nP-2  \n\n"})

    assert response.status_code == 302
    assert Ticket.objects.filter(event=event).count() == 2


def test_import_problems_are_listed_with_line_numbers_and_nothing_changes(
    staff_client, event, make_event
):
    add_tickets(make_event(title="Folk Night"), "TAKEN")

    response = staff_client.post(import_url(event), {"codes": "OK-1\nOK-1\nTAKEN\n\nBAD CODE\n"})

    assert response.status_code == 400
    html = response.text
    assert "Nothing was imported: 4 problems to fix first." in html
    assert "Line 1: “OK-1” is listed more than once (lines 1 and 2)." in html
    assert "Line 3: “TAKEN” is already in the pool of “Folk Night”." in html
    assert "Line 4: empty line between codes." in html
    assert "Line 5: “BAD CODE” contains U+0020" in html
    assert Ticket.objects.filter(event=event).count() == 0
    assert response.context["import_form"]["codes"].value().startswith("OK-1")


def test_a_file_not_saved_as_utf8_is_refused(staff_client, event):
    upload = csv_upload("CAFÉ-1\nCAFÉ-2\n".encode("cp1252"))

    response = staff_client.post(import_url(event), {"csv_file": upload})

    assert response.status_code == 400
    assert "Please upload a CSV saved as UTF-8." in response.text
    assert not Ticket.objects.exists()


def test_a_file_over_1mb_is_refused(staff_client, event):
    upload = csv_upload(b"A" * 60 + b"\n" + b"X" * (1024 * 1024))

    response = staff_client.post(import_url(event), {"csv_file": upload})

    assert response.status_code == 400
    assert "That file is too big: 1 MB at most." in response.text
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose a CSV file or paste some codes."),
        ({"codes": "  \n "}, "Choose a CSV file or paste some codes."),
        ({"codes": "A-1", "csv_file": "file"}, "Choose a file or paste codes, not both."),
        ({"csv_file": "empty"}, "The submitted file is empty."),
    ],
)
def test_the_import_form_needs_one_source(staff_client, event, data, message):
    if data.get("csv_file") == "file":
        data["csv_file"] = csv_upload(b"B-1\n")
    elif data.get("csv_file") == "empty":
        data["csv_file"] = csv_upload(b"")

    response = staff_client.post(import_url(event), data)

    assert response.status_code == 400
    assert message in response.text
    assert not Ticket.objects.exists()


# --- Generate -------------------------------------------------------------------------------


def test_generate_codes(staff_client, event):
    response = staff_client.post(generate_url(event), {"count": "25"}, follow=True)

    assert messages_of(response) == ["Generated 25 new codes for Jazz in the Cellar."]
    assert Ticket.objects.filter(event=event).count() == 25
    assert response.context["summary"].supply == 25


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("0", "Generate at least 1 code."),
        ("5001", "Generate at most 5,000 codes at a time."),
        ("ten", "Enter a whole number from 1 to 5,000."),
        ("", "Enter how many codes to generate: 1 to 5,000."),
        ("2.5", "Enter a whole number from 1 to 5,000."),
    ],
)
def test_generate_refuses_bad_counts(staff_client, event, count, message):
    response = staff_client.post(generate_url(event), {"count": count})

    assert response.status_code == 400
    assert message in response.text
    assert not Ticket.objects.exists()


# --- Void -----------------------------------------------------------------------------------


def test_void_a_ticket_and_come_back_to_the_same_list(staff_client, event):
    t1, _ = add_tickets(event, "T1", "T2")
    url = reverse("tickets:ticket_void", args=[t1.pk]) + "?state=available&page=1"

    response = staff_client.post(url)

    assert response.status_code == 302
    assert response["Location"] == pool_url(event) + "?state=available&page=1"
    t1.refresh_from_db()
    assert t1.state == "void"
    page = staff_client.get(response["Location"])
    assert "Ticket T1 is void" in " ".join(messages_of(page))


def test_voiding_an_assigned_ticket_is_refused_with_a_message(staff_client, event, member):
    (ticket,) = add_tickets(event, "T1")
    assign_ticket(preorder(event, member, "paid"))

    response = staff_client.post(reverse("tickets:ticket_void", args=[ticket.pk]))

    assert response.status_code == 400
    assert "cannot be voided" in response.text
    ticket.refresh_from_db()
    assert ticket.voided_at is None


def test_voiding_below_the_approved_places_is_refused_with_a_message(staff_client, event, member):
    (ticket,) = add_tickets(event, "T1")
    preorder(event, member)

    response = staff_client.post(reverse("tickets:ticket_void", args=[ticket.pk]))

    assert response.status_code == 400
    assert "would leave 0 tickets for 1 approved places" in response.text
    assert Ticket.objects.get().voided_at is None
