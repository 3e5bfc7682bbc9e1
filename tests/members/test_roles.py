"""Staff roles: groups holding our three permissions; views ask for the permission."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from members.roles import PERM_CHECK_IN, PERM_MANAGE, PERM_REVIEW, Role, role_of, set_role
from members.selectors import manager_emails

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "review", "manage", "check_in", "is_staff"),
    [
        (Role.DOOR, False, False, True, False),
        (Role.REVIEWER, True, False, True, True),
        (Role.MANAGER, True, True, True, True),
    ],
)
def test_each_role_holds_its_permissions(make_member, role, review, manage, check_in, is_staff):
    member = make_member()
    set_role(member, role)
    assert member.has_perm(PERM_REVIEW) is review
    assert member.has_perm(PERM_MANAGE) is manage
    assert member.has_perm(PERM_CHECK_IN) is check_in
    assert member.is_staff is is_staff  # Django's admin is for reviewers and managers
    assert role_of(member) == role


def test_a_member_holds_one_role_at_a_time_and_can_lose_it(make_member):
    member = make_member()
    mine = Group.objects.create(name="Box office")  # a club's own group is left alone
    member.groups.add(mine)
    set_role(member, Role.MANAGER)
    set_role(member, Role.DOOR)
    assert set(member.groups.values_list("name", flat=True)) == {"Door", "Box office"}
    set_role(member, None)
    assert not member.has_perm(PERM_CHECK_IN)
    assert role_of(member) is None
    assert not member.is_staff


def test_a_plain_member_and_a_bare_is_staff_flag_grant_nothing(make_member):
    member = make_member(is_staff=True)
    assert not member.has_perm(PERM_REVIEW)


def test_migrate_keeps_the_groups_exactly_as_roles_py_says(make_member):
    Group.objects.get(name="Reviewer").permissions.clear()
    Group.objects.filter(name="Door").delete()
    call_command("migrate", verbosity=0)
    member = make_member()
    set_role(member, Role.REVIEWER)
    assert member.has_perm(PERM_REVIEW)
    assert Group.objects.filter(name="Door").exists()


def test_staff_alerts_go_to_managers_only(make_staff, make_member):
    make_staff("Manager", email="m@example.com")
    make_staff("Reviewer", email="r@example.com")
    make_staff("Door", email="d@example.com")
    make_member(email="boss@example.com", is_superuser=True)
    make_staff("Manager", email="gone@example.com", is_active=False)
    assert manager_emails() == ["boss@example.com", "m@example.com"]


def test_a_reviewer_sees_the_run_but_only_a_manager_may_start_it(
    client, make_staff, open_cycle, make_event
):
    from django.urls import reverse

    from tests.conftest import close_window

    make_event()
    close_window(open_cycle.pk)
    page = reverse("payments:charge_run", args=[open_cycle.pk])
    start = reverse("payments:start_charge_run", args=[open_cycle.pk])
    client.force_login(make_staff("Reviewer"))
    assert client.get(page).status_code == 200
    assert client.post(start, {"confirm": "charge"}).status_code == 403
    client.force_login(make_staff("Manager"))
    assert client.get(page).status_code == 200
