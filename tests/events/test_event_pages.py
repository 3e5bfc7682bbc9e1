"""The staff event pages (create, edit, duplicate, delete, copy a week), the events page's future
weeks, and what members see of a week before it opens."""

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from events.models import Event, EventLogEntry
from events.selectors import cycle_for_week
from tests.events.conftest import london

pytestmark = pytest.mark.django_db

FORM = {
    "title": "Soul Night",
    "starts_at": "2026-12-12T20:00",
    "venue": "The Cellar",
    "description": "",
    "public_price": "25.00",
    "discount_kind": "default",
    "discount_percent": "",
    "discount_fixed": "",
    "fulfilment_mode": "fifo",
    "public_sale_url": "",
    "public_sale_at": "",
}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def soul(this_week, reviewer):
    from events.planning import EventDetails, create_event

    return create_event(
        EventDetails(
            cycle=this_week,
            title="Soul Night",
            starts_at=london(2026, 12, 12, 20, 0),
            venue="The Cellar",
            public_price_pence=2500,
        ),
        actor=reviewer,
    )


def test_a_reviewer_creates_an_event_in_pounds_and_london_time(this_week, reviewer):
    response = client_for(reviewer).post(
        reverse("staff:event_new"),
        {
            **FORM,
            "cycle": this_week.pk,
            "public_price": "22.50",
            "discount_kind": "fixed",
            "discount_fixed": "2.50",
            "public_sale_url": "tickets.example/soul",
            "public_sale_at": "2026-12-09T10:00",
        },
    )
    event = Event.objects.get()
    assert response.status_code == 302 and response.url == reverse("tickets:pool", args=[event.pk])
    assert "Soul Night is ready. Now fill its ticket pool." in messages_of(response)
    assert (event.public_price_pence, event.discount_fixed_pence) == (2250, 250)
    assert event.starts_at == london(2026, 12, 12, 20, 0)
    assert event.public_sale_url == "https://tickets.example/soul"
    assert event.public_sale_at == london(2026, 12, 9, 10, 0)
    assert EventLogEntry.objects.get(event=event).actor == reviewer


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"public_price": "0.29"}, "at least 30p, Stripe&#x27;s minimum charge"),
        ({"starts_at": "2026-12-08T18:00"}, "after its week&#x27;s charge run"),
        ({"discount_kind": "fixed", "discount_fixed": "25"}, "less than the price (£25)"),
        ({"discount_kind": "percent"}, "Enter the percentage"),
        ({"public_price": "abc"}, "Enter a number"),
        ({"starts_at": "next friday"}, "Enter a valid date/time"),
        ({"public_sale_url": "not a link"}, "Enter a valid URL"),
        ({"title": ""}, "This field is required"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_saved(this_week, reviewer, changes, words):
    response = client_for(reviewer).post(
        reverse("staff:event_new"), {**FORM, "cycle": this_week.pk, **changes}
    )
    assert response.status_code == 400
    assert "Nothing was saved" in text(response)
    assert words in text(response)
    assert not Event.objects.exists() and not EventLogEntry.objects.exists()


def test_a_week_beyond_the_planning_horizon_is_not_offered(reviewer):
    far = cycle_for_week(dt.date(2027, 1, 4))
    response = client_for(reviewer).post(reverse("staff:event_new"), {**FORM, "cycle": far.pk})
    assert response.status_code == 400
    assert "Select a valid choice" in text(response)


def test_the_new_event_form_offers_this_week_and_the_two_after(reviewer):
    page = text(client_for(reviewer).get(reverse("staff:event_new") + "?week=2026-12-14"))
    assert "Week of 30 November 2026" in page
    assert "Week of 7 December 2026" in page
    assert "Week of 14 December 2026" in page
    assert "Week of 21 December 2026" not in page
    week = cycle_for_week(dt.date(2026, 12, 14))
    assert f'<option value="{week.pk}" selected>' in page


def test_duplicate_starts_from_a_copy_and_saves_only_when_submitted(soul, reviewer):
    client = client_for(reviewer)
    page = text(client.get(reverse("staff:event_new") + f"?from={soul.pk}"))
    assert "New event, from a copy of Soul Night" in page
    assert 'value="The Cellar"' in page and 'value="2026-12-12T20:00"' in page
    assert Event.objects.count() == 1
    response = client.post(
        reverse("staff:event_new") + f"?from={soul.pk}",
        {**FORM, "cycle": soul.cycle_id, "starts_at": "2026-12-13T20:00"},
    )
    assert response.status_code == 302
    copy = Event.objects.exclude(pk=soul.pk).get()
    assert copy.starts_at == london(2026, 12, 13, 20, 0)
    assert EventLogEntry.objects.get(event=copy).data == {"copied_from": soul.pk}


def test_an_edit_after_pre_orders_warns_before_changing_the_price(soul, reviewer, place):
    place(soul)
    client = client_for(reviewer)
    url = reverse("staff:event_edit", args=[soul.pk])
    form = {**FORM, "cycle": soul.cycle_id, "public_price": "30.00"}
    warned = client.post(url, form)
    assert warned.status_code == 200
    page = text(warned)
    assert "placed pre-orders keep theirs" in page
    assert "keeps it: they will be charged £22.50" in page
    assert "Save the new price" in page
    assert 'name="confirm_price_change" value="True"' in page
    assert Event.objects.get(pk=soul.pk).public_price_pence == 2500

    saved = client.post(url, {**form, "confirm_price_change": "True"})
    assert saved.status_code == 302
    assert "Saved Soul Night: public price changed." in messages_of(saved)
    assert Event.objects.get(pk=soul.pk).public_price_pence == 3000


def test_an_event_with_pre_orders_is_not_deleted(soul, reviewer, place):
    place(soul)
    response = client_for(reviewer).post(reverse("staff:event_delete", args=[soul.pk]))
    assert response.url == reverse("staff:event", args=[soul.pk])
    assert any("cannot be deleted" in m for m in messages_of(response))
    assert Event.objects.filter(pk=soul.pk).exists()


def test_an_event_without_pre_orders_is_deleted_after_a_confirmation(soul, reviewer):
    client = client_for(reviewer)
    assert "Delete Soul Night?" in text(client.get(reverse("staff:event_delete", args=[soul.pk])))
    response = client.post(reverse("staff:event_delete", args=[soul.pk]))
    assert response.url == reverse("staff:events")
    assert not Event.objects.exists()


def test_copy_this_weeks_events_to_next_week_in_one_action(soul, reviewer):
    client = client_for(reviewer)
    page = text(client.get(reverse("staff:events")))
    assert "Copy these events to the week of 7 December" in page
    response = client.post(reverse("staff:copy_week", args=[soul.cycle_id]))
    assert response.url == reverse("staff:events") + "#week-2026-12-07"
    assert "Copied 1 event to the week of 7 December, with empty pools." in messages_of(response)
    again = client.post(reverse("staff:copy_week", args=[soul.cycle_id]))
    assert "Nothing to copy: the week of 7 December already has these events." in messages_of(again)
    assert Event.objects.count() == 2


def test_the_events_page_shows_next_week_and_the_week_after_to_prepare(reviewer, this_week):
    page = text(client_for(reviewer).get(reverse("staff:events")))
    for week in ("2026-11-30", "2026-12-07", "2026-12-14"):
        assert f'data-testid="cycle-{week}"' in page
        assert f"?week={week}" in page  # "Add an event to this week"
    assert 'data-testid="cycle-2026-12-21"' not in page
    assert "Prepared ahead: pre-orders open midnight Monday 7 December" in page
    # A week without events is one line, not an empty table of eleven headings.
    assert page.count('data-testid="no-events"') == 3
    assert '<table class="data events">' not in page


def test_a_week_closed_early_comes_first_marked_in_review(soul, reviewer):
    from events.services import close_window_early

    client = client_for(reviewer)
    page = text(client.get(reverse("staff:events")))
    assert re.search(r"Week of 30 November 2026 <span class=\"badge\">open now</span>", page)

    close_window_early(soul.cycle_id, actor=reviewer)
    page = text(client.get(reverse("staff:events")))
    weeks = re.findall(r'data-testid="cycle-(\d{4}-\d\d-\d\d)"', page)
    # The closed week is where staff decide now: first, and not mistaken for next week.
    assert weeks[:3] == ["2026-11-30", "2026-12-07", "2026-12-14"]
    assert re.search(r"Week of 30 November 2026 <span class=\"badge\">in review</span>", page)
    assert "open now" not in page
    assert "Week of 7 December 2026</h2>" in page  # prepared ahead, no badge


def test_the_paid_column_counts_paid_and_sent_tickets_apart(soul, reviewer, place):
    place(soul, "ticket_sent")
    place(soul, "paid")
    page = client_for(reviewer).get(reverse("staff:events")).content.decode()
    assert re.search(r'data-testid="paid">2<', page)
    assert re.search(r'data-testid="tickets-sent">1<', page)
    assert "+ 1 sent" not in page


# --- What members see ------------------------------------------------------------------------


def test_members_do_not_see_next_weeks_events_before_it_opens(
    soul, next_week, reviewer, member, _wednesday_noon
):
    from events.planning import EventDetails, create_event
    from events.services import close_window_early

    create_event(
        EventDetails(
            cycle=next_week,
            title="Next Week's Gig",
            starts_at=london(2026, 12, 19, 20, 0),
            venue="Main Room",
            public_price_pence=2000,
        ),
        actor=reviewer,
    )
    client = client_for(member)
    assert "Next Week&#x27;s Gig" not in text(client.get("/"))
    assert "Soul Night" in text(client.get("/"))

    # Staff closed this week early: next week is not open yet.
    close_window_early(soul.cycle_id, actor=reviewer)
    page = text(client.get("/"))
    assert "Next Week&#x27;s Gig" not in page
    assert "The events are announced when the presale opens, at midnight Monday 7" in page
    next_event = Event.objects.get(title="Next Week's Gig")
    refused = client.get(reverse("preorders:place", args=[next_event.pk]))
    assert messages_of(refused) == ["That event is not open for pre-orders."]

    _wednesday_noon.move_to(london(2026, 12, 7, 0, 0, 1))
    assert "Next Week&#x27;s Gig" in text(client.get("/"))


def test_a_pre_order_sent_just_after_the_close_is_told_when_it_closed(
    soul, member, _wednesday_noon
):
    client = client_for(member)
    _wednesday_noon.move_to(london(2026, 12, 7, 0, 0, 2))
    response = client.post(reverse("preorders:place", args=[soul.pk]), {"setup_intent_id": "x"})
    assert messages_of(response) == [
        "Pre-orders for Soul Night closed at 11:59PM Sunday 6 December."
    ]


def test_the_event_page_links_to_edit_duplicate_and_delete(soul, reviewer):
    soul.public_sale_url = "https://tickets.example/soul"
    soul.save()
    page = text(client_for(reviewer).get(reverse("staff:event", args=[soul.pk])))
    assert f'href="{reverse("staff:event_edit", args=[soul.pk])}"' in page
    assert f'href="{reverse("staff:event_new")}?from={soul.pk}"' in page
    assert f'href="{reverse("staff:event_delete", args=[soul.pk])}"' in page
    assert "public price £25 · member price £22.50 (10% member discount)" in page
    assert 'href="https://tickets.example/soul"' in page


def test_a_deleted_event_and_a_copied_week_stay_in_the_weeks_log(soul, reviewer):
    client = client_for(reviewer)
    client.post(reverse("staff:copy_week", args=[soul.cycle_id]))
    client.post(reverse("staff:event_delete", args=[soul.pk]))
    page = text(client.get(reverse("staff:events")))
    assert page.count("This week's log (1)") == 2
    assert "Rita Reviewer</strong>: Event deleted: Soul Night, Sat 12 Dec 2026, 8PM" in page
    assert "Rita Reviewer</strong>: Copied 1 event from the week of 30 November 2026." in page


@pytest.mark.parametrize("source", ["abc", "９", "9" * 40, "-1", "0"])
def test_duplicating_from_nonsense_opens_an_empty_form(reviewer, source):
    response = client_for(reviewer).get(reverse("staff:event_new"), {"from": source})
    assert response.status_code == 200
    assert "New event</h1>" in text(response)
