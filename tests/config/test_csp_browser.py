"""The Content-Security-Policy, in Chromium: every page a person can open (the access matrix's
walk: public pages signed out, member pages as a member, staff pages as a manager), including
the card form with Stripe.js, loads with no CSP violation. And the check itself catches one."""

import re

import pytest
from django.test import Client

from tests.test_access_matrix import world  # noqa: F401 (fixture)
from tests.test_accessibility_browser import html_pages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collects every violation the browser reports, from the first script on.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} ` +
    `(${event.sourceFile || ""}:${event.lineNumber || ""})`);
});
"""


# Pages outside the access matrix's walk of 200s: error pages a visitor meets, and the admin.
ERROR_AND_ADMIN_PAGES = [
    ("404", "/no-such-page/", "anonymous", None),
    ("404 signed in", "/no-such-page/", "member_a", None),
    ("403 (a staff page for a member)", "/staff/events/", "member_a", None),
    ("admin:login", "/admin/login/", "anonymous", None),
    ("admin:index", "/admin/", "staff", None),
    ("admin changelist", "/admin/members/member/", "staff", None),
]


def _page_as(browser, live_server, world, role: str, messages: list[str]):  # noqa: F811
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_VIOLATIONS)
    if role != "anonymous":
        client = Client()
        client.force_login(world.user(role))
        context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value,
              "url": live_server.url}]
        )  # fmt: skip
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            messages.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return page


def _violations(page) -> list[str]:
    page.wait_for_load_state("networkidle")
    return page.evaluate("() => window.__cspViolations")


def test_no_page_breaks_the_content_security_policy(live_server, browser, world):  # noqa: F811
    pages, problems, checked, card_forms = {}, [], 0, 0
    # The walk, and the card form (shown on asking when the member has a saved card).
    new_card = f"/pre-orders/{world.preorder_a.pk}/edit/?card=new"
    for name, path, role, _viewport in [
        *html_pages(world),
        ("preorders:edit (new card)", new_card, "member_a", None),
        *ERROR_AND_ADMIN_PAGES,
    ]:
        messages: list[str] = []
        if role not in pages:
            pages[role] = (_page_as(browser, live_server, world, role, messages), messages)
        page, messages = pages[role]
        messages.clear()
        response = page.goto(live_server.url + path)
        policy = response.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        checked += 1
        if page.locator("[data-card-setup]").count():
            card_forms += 1
            # Stripe.js (here localstripe's stand-in) loaded and mounted its card field.
            page.wait_for_function("() => typeof window.Stripe === 'function'")
        found = _violations(page) + messages
        problems += [f"{name} {path} as {role}: {v}" for v in found]
    for page, _ in pages.values():
        page.context.close()
    assert not problems, "\n".join(problems)
    assert checked >= 15, f"only {checked} pages were checked"
    assert card_forms >= 1, "no page with the card form was checked"


def test_the_csrf_failure_page_keeps_the_policy(live_server, browser, world):  # noqa: F811
    """A form sent without its token (an expired page, a cross-site post) gets Django's CSRF
    page, which has an inline <style>: it must carry the nonce like ours."""
    messages: list[str] = []
    page = _page_as(browser, live_server, world, "anonymous", messages)
    page.goto(live_server.url + "/login/")
    with page.expect_navigation():
        page.evaluate(
            """() => { const form = document.querySelector("main form[method=post]");
                       form.querySelector("[name=csrfmiddlewaretoken]").remove();
                       form.submit(); }"""
        )
    assert "CSRF" in page.content()
    assert not _violations(page) + messages
    page.context.close()


def test_the_check_catches_an_inline_script_without_the_nonce(live_server, browser, world):  # noqa: F811
    messages: list[str] = []
    page = _page_as(browser, live_server, world, "staff", messages)
    page.goto(live_server.url + "/staff/events/")
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__ran = true"; document.body.append(s); }"""
    )
    assert page.evaluate("() => window.__ran === undefined")
    assert any(v.startswith("script-src") for v in _violations(page))
    page.context.close()


def test_inline_scripts_carry_the_requests_nonce(client, world):  # noqa: F811
    client.force_login(world.staff)
    event_id = world.event.pk
    response = client.get(f"/staff/events/{event_id}/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.text)
    assert scripts, "the event page has an inline script"
    assert all(f'nonce="{nonce}"' in attributes for attributes in scripts)
