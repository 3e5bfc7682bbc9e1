"""The pre-order pages answer bad, forged and foreign input with a clear message or a 4xx, and
change nothing."""

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.stripe_helpers import new_confirmed_setup_intent

pytestmark = [pytest.mark.django_db, pytest.mark.stripe]


@pytest.fixture
def event(make_event):
    return make_event()


@pytest.fixture
def placed(stripe_server, member, event):
    return place_preorder(member, event.pk, new_confirmed_setup_intent(stripe_server, member))


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


def test_member_pages_need_login(client, event):
    for url in (
        reverse("preorders:dashboard"),
        reverse("preorders:place", args=[event.pk]),
        reverse("preorders:detail", args=[1]),
        reverse("preorders:edit", args=[1]),
        reverse("preorders:cancel", args=[1]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("members:login"))


def test_the_form_shows_what_the_brief_asks_for(stripe_server, member_client, event):
    response = member_client.get(reverse("preorders:place", args=[event.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert event.title in html
    assert "1 ticket" in html
    assert "£25" in html and "£22.50" in html
    assert "Pre-order – no charge now" in html
    assert f'src="{stripe_server}/js.stripe.com/v3/"' in html
    assert 'data-client-secret="seti_' in html


def test_posting_without_a_confirmed_card_saves_nothing(stripe_server, member_client, event):
    url = reverse("preorders:place", args=[event.pk])
    for data in (
        {},
        {"setup_intent_id": ""},
        {"setup_intent_id": "seti_nope"},
        {"setup_intent_id": "x" * 5000},
    ):
        response = member_client.post(url, data)
        assert response.status_code == 400
        assert b'role="alert"' in response.content
    assert not PreOrder.objects.exists()


def test_someone_elses_setup_intent_is_refused(stripe_server, member_client, make_member, event):
    stolen = new_confirmed_setup_intent(stripe_server, make_member())
    response = member_client.post(
        reverse("preorders:place", args=[event.pk]), {"setup_intent_id": stolen}
    )
    assert response.status_code == 400
    assert "does not belong to your account" in response.content.decode()
    assert not PreOrder.objects.exists()


def test_unknown_event_is_404(member_client):
    assert member_client.get(reverse("preorders:place", args=[999999])).status_code == 404


def test_a_second_preorder_form_redirects_to_the_existing_one(member_client, placed, make_event):
    other = make_event(title="Comedy Late")
    response = member_client.get(reverse("preorders:place", args=[other.pk]))
    assert response.status_code == 302
    assert response.url == reverse("preorders:detail", args=[placed.pk])


def test_another_members_preorder_is_invisible(client, placed, make_member):
    client.force_login(make_member())
    for name in ("preorders:detail", "preorders:edit", "preorders:cancel"):
        assert client.get(reverse(name, args=[placed.pk])).status_code == 404
    assert client.post(reverse("preorders:cancel", args=[placed.pk])).status_code == 404
    assert PreOrder.objects.get(pk=placed.pk).status == Status.PENDING


def test_dashboard_shows_the_status_and_deadline(member_client, placed):
    html = member_client.get(reverse("preorders:dashboard")).content.decode()
    assert "Pending" in html
    assert "Pre-order received. We'll charge your card at 7PM Tuesday" in html
    assert "Cancel pre-order" in html


def test_after_the_window_closes_buttons_go_and_forged_posts_are_refused(member_client, placed):
    with time_machine.travel(placed.cycle.closes_at, tick=False):
        html = member_client.get(reverse("preorders:detail", args=[placed.pk])).content.decode()
        assert "Cancel pre-order" not in html and "Edit pre-order" not in html
        response = member_client.post(reverse("preorders:cancel", args=[placed.pk]), follow=True)
        assert "locked" in response.content.decode()
        response = member_client.post(
            reverse("preorders:edit", args=[placed.pk]), {"event": placed.event_id}
        )
        assert response.status_code == 302
    assert PreOrder.objects.get(pk=placed.pk).status == Status.PENDING


def test_csrf_is_enforced(placed, member):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    response = strict.post(reverse("preorders:cancel", args=[placed.pk]))
    assert response.status_code == 403
    assert PreOrder.objects.get(pk=placed.pk).status == Status.PENDING


def test_edit_rejects_an_event_outside_the_list(stripe_server, member_client, placed):
    response = member_client.post(reverse("preorders:edit", args=[placed.pk]), {"event": "999999"})
    assert response.status_code == 400
    assert PreOrder.objects.get(pk=placed.pk).event_id == placed.event_id


def test_payment_provider_down_shows_a_clear_page(member_client, event, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    response = member_client.get(reverse("preorders:place", args=[event.pk]))
    assert response.status_code == 503
    assert "could not reach our payment provider" in response.content.decode()
