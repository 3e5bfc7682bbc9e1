"""The demo logins the README and `./bin/demo` print: each signs in, with the role it claims."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from demo.services import seed_demo
from members.roles import Role, role_of

pytestmark = pytest.mark.django_db


def test_every_printed_login_signs_in_with_its_role_and_a_rerun_is_safe(capsys):
    call_command("seed_demo")
    printed = capsys.readouterr().out
    logins = seed_demo()  # a second run changes nobody
    staff = authenticate(username=logins.staff[0], password=logins.staff[1])
    assert role_of(staff) == Role.MANAGER
    for email, password, role in logins.other_staff:
        assert f"{email} / {password} ({role.lower()})" in printed
        assert role_of(authenticate(username=email, password=password)) == Role(role)
    for email, password in logins.members:
        member = authenticate(username=email, password=password)
        assert member is not None and role_of(member) is None
