"""Every member and staff page (each URL the resolver knows, filled by the access matrix) tells
every cache not to keep it: `Cache-Control: private, no-store`. A shared proxy or the browser's
history must never hand one member's page, or a staff list, to someone else."""

import pytest
from django.test import Client

from tests.test_access_matrix import ROUTES, build_path, world  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_every_member_and_staff_page_is_private_and_not_stored(world):  # noqa: F811
    checked, problems = 0, []
    for route in ROUTES:
        if route.kind not in ("member", "staff", "admin", "public"):
            continue
        path = build_path(route, world)
        for role in ("member_a", "staff"):
            client = Client(raise_request_exception=False)
            client.force_login(world.user(role))
            response = client.get(path)
            if response.status_code != 200:
                continue
            checked += 1
            directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
            if not {"private", "no-store"} <= directives:
                problems.append(
                    f"{path} as {role}: Cache-Control {response.get('Cache-Control')!r}"
                )
    assert not problems, "\n".join(problems)
    assert checked > 20
