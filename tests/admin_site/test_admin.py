"""The Django admin is for support: every model of ours is registered with list columns,
search and filters, and nothing can be changed there (no add, no change, no delete), so no
admin save can bypass a state transition, a service's audit log or a rule."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from events.models import Event
from preorders.models import PreOrder

pytestmark = pytest.mark.django_db

OUR_APPS = ("members", "events", "preorders", "payments", "tickets", "notifications", "operations")


def our_models():
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models()]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def preorder(make_member, make_event, open_cycle):
    member = make_member(email="ada@example.com", full_name="Ada Lovelace")
    event = make_event(public_price_pence=2500)
    return PreOrder.objects.create(
        member=member,
        event=event,
        cycle=open_cycle,
        amount_pence=2250,
        stripe_customer_id="cus_Support1",
        payment_method_id="pm_Support1",
        setup_intent_id="seti_Support1",
        card_brand="visa",
        card_last4="4242",
    )


def test_every_model_of_ours_is_registered_with_columns():
    missing = [m.__name__ for m in our_models() if not admin.site.is_registered(m)]
    assert not missing, f"not in the admin: {missing}"
    for model in our_models():
        model_admin = admin.site._registry[model]
        assert len(model_admin.list_display) >= 2, f"{model.__name__} has no list columns"


@pytest.fixture
def superuser(db):
    from members.models import Member

    return Member.objects.create_superuser(
        email="root@example.com", password="x-Long-pass-1", full_name="Root"
    )


@pytest.mark.parametrize("role", ["staff", "reviewer", "superuser"])
def test_staff_look_up_every_model_but_cannot_add_change_or_delete(role, request, preorder):
    client = client_for(request.getfixturevalue(role))
    index = client.get(reverse("admin:index")).content.decode()
    for model in our_models():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert changelist in index, f"{meta.label} missing from the admin index"
        model_admin = admin.site._registry[model]
        query = "?q=ada" if model_admin.search_fields else ""
        response = client.get(changelist + query)
        assert response.status_code == 200, f"{meta.label}: {response.status_code}"
        page = response.content.decode()
        assert reverse(f"admin:{meta.app_label}_{meta.model_name}_add") not in page
        assert (
            client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403
        )
        row = model.objects.first()
        if row is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk])
            detail = client.get(change)
            assert detail.status_code == 200, f"{meta.label} detail: {detail.status_code}"
            assert 'name="_save"' not in detail.content.decode()
            # Not even a hand-made POST of the row's own values saves anything.
            assert client.post(change, {"_save": "Save"}).status_code == 403
            delete = reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[row.pk])
            assert client.post(delete, {"post": "yes"}).status_code == 403
            assert model.objects.filter(pk=row.pk).exists()


def test_no_model_admin_or_inline_grants_add_change_or_delete_to_a_superuser(superuser):
    """Rows of most models do not exist in the test above, so ask each admin (and its inlines)
    directly: none may let even a superuser add, change or delete, nor offer a bulk action."""
    from django.test import RequestFactory

    request = RequestFactory().get("/django-admin/")
    request.user = superuser
    for model in our_models():
        model_admin = admin.site._registry[model]
        admins = [model_admin, *model_admin.get_inline_instances(request)]
        for each in admins:
            name = f"{model.__name__}: {type(each).__name__}"
            assert not each.has_add_permission(request, None), name
            assert not each.has_change_permission(request, None), name
            assert not each.has_delete_permission(request, None), name
        assert not model_admin.get_actions(request), f"{model.__name__} offers bulk actions"


def test_the_role_groups_are_read_only_in_the_admin_too(superuser, staff):
    """Django's own Group admin would let a superuser give the Reviewer group the manager's
    permission behind members/roles.py; roles are given on the member's staff page."""
    from django.contrib.auth.models import Group

    reviewer_group = Group.objects.get(name="Reviewer")
    before = set(reviewer_group.permissions.values_list("pk", flat=True))
    client = client_for(superuser)
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 200
    change = reverse("admin:auth_group_change", args=[reviewer_group.pk])
    every_permission = list(
        Group.objects.get(name="Manager").permissions.values_list("pk", flat=True)
    )
    answer = client.post(change, {"name": "Reviewer", "permissions": every_permission})
    assert answer.status_code == 403
    assert set(reviewer_group.permissions.values_list("pk", flat=True)) == before
    assert client.post(reverse("admin:auth_group_add"), {"name": "Sneaky"}).status_code == 403
    assert not Group.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_an_admin_post_cannot_change_a_pre_orders_status_or_amount(who, request, preorder):
    user = request.getfixturevalue(who)
    client = client_for(user)
    url = reverse("admin:preorders_preorder_change", args=[preorder.pk])
    response = client.post(
        url,
        {
            "status": "paid",
            "amount_pence": "1",
            "member": preorder.member_id,
            "event": preorder.event_id,
            "cycle": preorder.cycle_id,
            "currency": "gbp",
            "stripe_customer_id": "cus_other",
            "payment_method_id": "pm_other",
            "setup_intent_id": "seti_other",
            "_save": "Save",
        },
    )
    assert response.status_code == 403
    preorder.refresh_from_db()
    assert (preorder.status, preorder.amount_pence, preorder.stripe_customer_id) == (
        "pending",
        2250,
        "cus_Support1",
    )
    assert preorder.log_entries.count() == 0
    bulk_delete = client.post(
        reverse("admin:preorders_preorder_changelist"),
        {"action": "delete_selected", "_selected_action": [preorder.pk], "post": "yes"},
    )
    assert bulk_delete.status_code in (200, 302, 403)
    assert PreOrder.objects.filter(pk=preorder.pk).exists()


def test_an_admin_post_cannot_create_or_edit_an_event(staff, make_event):
    event = make_event(public_price_pence=2500)
    client = client_for(staff)
    add = client.post(
        reverse("admin:events_event_add"), {"title": "Sneaky", "public_price_pence": "1"}
    )
    assert add.status_code == 403
    change = client.post(
        reverse("admin:events_event_change", args=[event.pk]),
        {"title": "Renamed", "public_price_pence": "1", "_save": "Save"},
    )
    assert change.status_code == 403
    event.refresh_from_db()
    assert (event.title, event.public_price_pence) == ("Jazz in the Cellar", 2500)
    assert Event.objects.count() == 1


def test_the_event_list_sends_staff_to_the_staff_pages_to_change_an_event(staff, make_event):
    event = make_event(public_price_pence=2500, discount_percent=10)
    page = client_for(staff).get(reverse("admin:events_event_changelist")).content.decode()
    assert reverse("staff:event_edit", args=[event.pk]) in page
    assert "£25" in page and "£22.50" in page


def test_money_reads_in_pounds_and_stripe_ids_link_to_the_test_dashboard(staff, preorder, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_abc123"
    page = client_for(staff).get(reverse("admin:preorders_preorder_changelist")).content.decode()
    assert "£22.50" in page and "Visa •••• 4242" in page
    assert 'href="https://dashboard.stripe.com/test/customers/cus_Support1"' in page


def test_stripe_ids_link_to_the_live_dashboard_with_a_live_key(staff, preorder, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_abc123"
    page = client_for(staff).get(reverse("admin:preorders_preorder_changelist")).content.decode()
    assert 'href="https://dashboard.stripe.com/customers/cus_Support1"' in page
    detail = client_for(staff).get(reverse("staff:preorder", args=[preorder.pk])).content.decode()
    assert 'href="https://dashboard.stripe.com/customers/cus_Support1"' in detail
    assert 'href="https://dashboard.stripe.com/setup_intents/seti_Support1"' in detail


@pytest.mark.parametrize("role", ["member", "door_staff"])
def test_members_and_the_door_cannot_open_the_admin(role, request):
    response = client_for(request.getfixturevalue(role)).get(
        reverse("admin:preorders_preorder_changelist")
    )
    assert response.status_code == 302 and "/django-admin/login/" in response.url


def test_the_readme_sends_staff_to_the_staff_pages_for_events():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "create events in the admin" not in readme.lower()
    assert re.search(r"`/staff/events/new/`", readme)
    assert re.search(r"`/django-admin/`.*read-only", readme)
