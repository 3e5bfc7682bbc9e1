"""Every page a person can open, checked with axe-core in Chromium: no serious or critical
violation. The pages come from the URL resolver (the access matrix's walk), so a new page is
checked without touching this file; member pages at phone size as a member, staff pages at laptop
size as a manager, public pages signed out. Screenshots land in test-artifacts/axe/."""

import pytest
from django.test import Client

from tests.axe import BLOCKING, assert_accessible, axe_violations
from tests.conftest import ARTIFACTS
from tests.test_access_matrix import ROUTES, build_path, world  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}
# Who opens each kind of page, and on what screen.
VISITOR = {
    "public": ("anonymous", PHONE),
    "member": ("member_a", PHONE),
    "staff": ("staff", LAPTOP),
}


def html_pages(world):  # noqa: F811
    """(label, path, role, viewport) for each page that answers 200 with HTML to its visitor."""
    for route in ROUTES:
        if route.kind not in VISITOR:
            continue
        role, viewport = VISITOR[route.kind]
        path = build_path(route, world)
        client = Client()
        if role != "anonymous":
            client.force_login(world.user(role))
        response = client.get(path)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            yield route.name, path, role, viewport


def test_every_page_has_no_serious_accessibility_violation(live_server, browser, world):  # noqa: F811
    problems, checked = [], 0
    contexts = {}
    (ARTIFACTS / "axe").mkdir(parents=True, exist_ok=True)
    for name, path, role, viewport in html_pages(world):
        if role not in contexts:
            context = browser.new_context(viewport=viewport)
            context.set_default_timeout(15_000)
            if role != "anonymous":
                client = Client()
                client.force_login(world.user(role))
                context.add_cookies(
                    [
                        {
                            "name": "sessionid",
                            "value": client.cookies["sessionid"].value,
                            "url": live_server.url,
                        }
                    ]
                )
            contexts[role] = context.new_page()
        page = contexts[role]
        page.goto(live_server.url + path)
        page.screenshot(path=ARTIFACTS / "axe" / f"{name.replace(':', '-')}.png", full_page=True)
        checked += 1
        for violation in axe_violations(page):
            if violation.get("impact") in BLOCKING:
                targets = ", ".join(" ".join(n["target"]) for n in violation["nodes"][:3])
                problems.append(
                    f"{name} {path}: [{violation['impact']}] {violation['id']} {targets}"
                )
    for page in contexts.values():
        page.context.close()
    assert not problems, "\n".join(problems)
    assert checked >= 15, f"only {checked} pages were checked"


def test_the_check_itself_catches_a_violation(browser):
    """So that a passing walk means something: a page with an unlabelled image fails."""
    page = browser.new_page()
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page, "a broken page")
    page.close()
