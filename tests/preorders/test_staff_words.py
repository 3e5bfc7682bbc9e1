"""Words and small things staff noticed (issue 8 §6), each as a test: refusals shown as
refusals, confirmations that say what will really happen, "not allocated" kept apart from a
staff denial, staff landing on their own page, one page width, the status region, a ballot
that can be verified."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from events.models import EventLogEntry
from members.models import Member
from preorders import decisions
from preorders.models import PreOrder
from preorders.states import Status
from tests.test_access_matrix import world  # noqa: F401 (fixture)
from tests.test_staff_pages import (  # noqa: F401 (fixtures)
    add_tickets,
    event,
    place,
    place_many,
    review,
    staff_client,
)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_confirmation_with_no_places_left_offers_no_approval(staff_client, review):  # noqa: F811
    add_tickets(review, 1)
    place(review, Status.APPROVED)
    preorder = place(review)
    page = text(
        staff_client.post(
            reverse("staff:decide", args=[review.pk]), {"action": "approve", "ids": [preorder.pk]}
        )
    )
    assert "No places left in the pool: none of the 1 can be approved" in page
    assert "Yes, approve" not in page
    assert "Only 0" not in page
    assert reverse("tickets:pool", args=[review.pk]) in page


def test_a_confirmation_offers_to_approve_only_what_fits(staff_client, review):  # noqa: F811
    add_tickets(review, 2)
    preorders = place_many(review, 3)
    page = text(
        staff_client.post(
            reverse("staff:decide", args=[review.pk]),
            {"action": "approve", "ids": [p.pk for p in preorders]},
        )
    )
    assert "Only 2 places left: the first 2 by pre-order time will be approved" in page
    assert "the other 1 stay as they are" in page
    assert "Yes, approve 2" in page and "Yes, approve 3" not in page


def test_a_refused_approval_is_shown_only_as_a_refusal(staff_client, review):  # noqa: F811
    add_tickets(review, 1)
    place(review, Status.APPROVED)
    preorder = place(review)
    response = staff_client.post(
        reverse("staff:decide", args=[review.pk]),
        {"action": "approve", "ids": [preorder.pk], "confirmed": "1"},
    )
    shown = [(m.level_tag, str(m)) for m in response.wsgi_request._messages]
    assert shown == [
        (
            "error",
            "1 pre-order not approved: the pool has no places left. "
            "Add tickets to the pool, or deny others first.",
        )
    ]
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.PENDING


def test_pending_at_the_run_is_not_allocated_apart_from_a_staff_denial(
    staff_client,  # noqa: F811
    review,  # noqa: F811
    staff,
    settings,
):
    settings.PRESALE_WAITLIST = False  # the brief's rule: not allocated at the lock
    add_tickets(review, 5)
    denied, left_pending = place(review), place(review)
    decisions.deny(review.pk, [denied.pk], actor=staff)
    decisions.lock_decisions(review.cycle_id)

    assert PreOrder.objects.get(pk=denied.pk).status == Status.DENIED
    assert PreOrder.objects.get(pk=left_pending.pk).status == Status.NOT_ALLOCATED
    event_page = text(staff_client.get(reverse("staff:event", args=[review.pk])))
    assert "Not allocated" in event_page and "Denied" in event_page
    assert "from Pending to <strong>Not allocated</strong>" in event_page
    assert "from Pending to <strong>Denied</strong>" in event_page
    detail = text(staff_client.get(reverse("staff:preorder", args=[left_pending.pk])))
    assert "no staff member denied it" in detail
    events_page = staff_client.get(reverse("staff:events")).content.decode()
    href = reverse("staff:event", args=[review.pk])
    row = next(r for r in re.findall(r"<tr>.*?</tr>", events_page, re.S) if href in r)
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td class=\"num\"[^>]*>(.*?)</td>", row, re.S)
    ]
    assert cells[2:4] == ["1", "1"]  # denied by staff, not allocated at the run


def test_members_read_the_same_words_for_both(review, staff, make_member, settings):  # noqa: F811
    settings.PRESALE_WAITLIST = False
    add_tickets(review, 5)
    denied, left = place(review), place(review)
    decisions.deny(review.pk, [denied.pk], actor=staff)
    decisions.lock_decisions(review.cycle_id)
    for preorder in (denied, left):
        assert PreOrder.objects.get(pk=preorder.pk).member_label == "Not allocated this week"


def test_the_audit_log_reads_money_and_cards_as_the_rest_of_the_site(
    stripe_server, member, make_event, staff
):
    from preorders.services import place_preorder
    from tests.stripe_helpers import SUCCEEDS, new_confirmed_setup_intent

    jazz = make_event(public_price_pence=2500, discount_percent=10)
    preorder = place_preorder(
        member, jazz.pk, new_confirmed_setup_intent(stripe_server, member, SUCCEEDS)
    )
    note = preorder.log_entries.get(action="placed").note
    assert note.endswith("Visa •••• 4242, £22.50")
    assert "2250p" not in note and "visa" not in note
    client = Client()
    client.force_login(staff)
    page = text(client.get(reverse("staff:event", args=[jazz.pk])))
    assert "Visa •••• 4242, £22.50" in page


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [
        ("staff", "staff:events"),
        ("reviewer", "staff:events"),
        ("door_staff", "tickets:door_events"),
        ("member", "preorders:dashboard"),
    ],
)
def test_staff_land_on_the_events_page_and_members_on_their_dashboard(request, role, lands_on):
    user: Member = request.getfixturevalue(role)
    client = Client()
    response = client.post(
        reverse("members:login"), {"username": user.email, "password": "a-Good-passw0rd"}
    )
    assert response.status_code == 302 and response.url == reverse(lands_on)
    page = client.get(reverse("preorders:dashboard")).content.decode()
    assert f'<a class="brand" href="{reverse(lands_on)}">' in page


def test_a_next_link_still_wins_over_the_staff_landing(staff):
    wanted = reverse("members:invitations")
    response = Client().post(
        reverse("members:login") + f"?next={wanted}",
        {"username": staff.email, "password": "a-Good-passw0rd"},
    )
    assert response.url == wanted


def test_every_staff_page_has_the_same_width(staff, event):  # noqa: F811
    client = Client()
    client.force_login(staff)
    preorder = place(event)
    pages = [
        reverse("staff:events"),
        reverse("staff:event", args=[event.pk]),
        reverse("staff:event_new"),
        reverse("staff:preorder", args=[preorder.pk]),
        reverse("tickets:pool", args=[event.pk]),
        reverse("members:invitations"),
        reverse("payments:webhook_log"),
        reverse("payments:charge_run", args=[event.cycle_id]),
        reverse("notifications:email_log"),
    ]
    for path in pages:
        body = re.search(r"<body class=\"([^\"]*)\"", client.get(path).content.decode())
        assert body and "wide" in body.group(1).split(), f"{path} is narrower"
    member_page = client.get(reverse("preorders:dashboard")).content.decode()
    assert "wide" not in re.search(r"<body class=\"([^\"]*)\"", member_page).group(1)


def test_every_staff_page_the_resolver_knows_has_the_same_width(world):  # noqa: F811
    """The list above, extended to every HTML page under staff/ (the access matrix's walk)."""
    from tests.test_access_matrix import staff_html_pages

    pages = dict(staff_html_pages(world))
    checked = len(pages)
    narrow = []
    for name, html in pages.items():
        body = re.search(r"<body class=\"([^\"]*)\"", html)
        if not (body and "wide" in body.group(1).split()):
            narrow.append(name)
    assert not narrow, f"narrower staff pages: {narrow}"
    assert checked > 15


def test_flash_messages_are_a_list_inside_a_status_region(staff_client, review):  # noqa: F811
    response = staff_client.post(
        reverse("staff:decide", args=[review.pk]), {"action": "approve"}, follow=True
    )
    page = response.content.decode()
    assert '<div role="status" data-testid="messages">' in page
    assert re.search(r'<ul class="messages">\s*<li class="message message-error">', page)
    assert '<ul class="messages" role="status">' not in page


def test_the_webhook_table_names_every_column(staff_client):  # noqa: F811
    page = staff_client.get(reverse("payments:webhook_log")).content.decode()
    assert "<th></th>" not in page and "<th>Action</th>" in page


def test_a_recorded_ballot_can_be_verified_from_the_event_page(
    staff_client,  # noqa: F811
    review,  # noqa: F811
    staff,
):
    add_tickets(review, 2)
    place_many(review, 5)
    decisions.auto_fulfil(review.pk, actor=staff, mode="ballot", seed=424242)
    entry = EventLogEntry.objects.get(action="auto_fulfil")
    event_page = staff_client.get(reverse("staff:event", args=[review.pk])).content.decode()
    link = reverse("staff:verify_ballot", args=[entry.pk])
    assert f'href="{link}"' in event_page and "Verify this draw" in event_page

    page = text(staff_client.get(link))
    assert "This draw checks out" in page and "424242" in page

    entry.data["approved"] = entry.data["candidates"][-2:][::-1][:1] + entry.data["candidates"][:1]
    entry.save()
    assert "This draw does not check out" in text(staff_client.get(link))


def test_only_a_ballot_has_a_verify_page(staff_client, review, staff):  # noqa: F811
    add_tickets(review, 2)
    place_many(review, 2)
    decisions.auto_fulfil(review.pk, actor=staff, mode="fifo")
    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert staff_client.get(reverse("staff:verify_ballot", args=[entry.pk])).status_code == 404


def test_stripe_ids_in_the_webhook_log_link_to_the_test_dashboard(staff_client, settings):  # noqa: F811
    from payments.models import StripeEvent

    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    StripeEvent.objects.create(stripe_id="evt_Abc123", type="payment_intent.succeeded", payload={})
    page = staff_client.get(reverse("payments:webhook_log")).content.decode()
    assert 'href="https://dashboard.stripe.com/test/events/evt_Abc123"' in page
