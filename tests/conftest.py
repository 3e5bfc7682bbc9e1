"""Shared fixtures: a real localstripe over HTTP, a real Chromium through Playwright, and small
factories for the domain."""

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from config.csp import csp_policy

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API in live tests

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _empty_cache():
    # Sign-in throttling counts in the cache: one test's attempts must not limit the next.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Hashing strength is not under test; the default hasher costs ~0.3 s a member.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_inline():
    """Background tasks run inline, in the caller's thread, unless a test starts a real worker
    (see test_celery_worker.py)."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_url():
    """A localstripe of this test process's own, on a free loopback port, in memory only."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.localstripe_server", "--port", str(port), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/js.stripe.com/v3/", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    "localstripe did not start: " + process.stderr.read().decode()[-2000:]
                ) from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def stripe_server(localstripe_url, settings):
    """Point the app at the test localstripe (as STRIPE_API_BASE does in real settings), emptied
    of the previous test's objects (its registered webhook endpoints stay)."""
    requests.delete(f"{localstripe_url}/_config/data", timeout=10).raise_for_status()
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_JS_URL = f"{localstripe_url}/js.stripe.com/v3/"
    settings.STRIPE_SECRET_KEY = "sk_test_presale_tests"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_presale_tests"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    # The CSP allows the Stripe.js and API of the settings: here, this test's localstripe.
    settings.SECURE_CSP = csp_policy(
        stripe_js_url=settings.STRIPE_JS_URL, stripe_api_base=settings.STRIPE_API_BASE
    )
    return localstripe_url


# --- Browser -------------------------------------------------------------------------------


def _chromium_path() -> str | None:
    for candidate in (os.environ.get("PRESALE_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None  # Playwright's own browser, if `playwright install chromium` fetched one


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=_chromium_path(),
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
        except Error as error:
            pytest.fail(
                "No Chromium for the browser tests. Install it with 'apt-get install chromium' "
                f"or '.venv/bin/python -m playwright install chromium'. ({error})",
                pytrace=False,
            )
        yield chromium
        chromium.close()


@pytest.fixture
def phone_page(browser, request):
    """A page the size of a phone. Its last state is saved as a screenshot in test-artifacts/."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{request.node.name}-final.png", full_page=True)
    context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


# --- Domain factories ----------------------------------------------------------------------


@pytest.fixture
def make_member(db):
    from members.models import Member

    counter = {"n": 0}

    def make(email: str | None = None, password: str = "a-Good-passw0rd", **fields) -> Member:
        counter["n"] += 1
        fields.setdefault("full_name", f"Member {counter['n']}")
        return Member.objects.create_user(
            email=email or f"member{counter['n']}@example.com", password=password, **fields
        )

    return make


@pytest.fixture
def member(make_member):
    return make_member(email="alice@example.com", full_name="Alice Archer")


@pytest.fixture
def make_staff(make_member):
    """A member with one staff role (members/roles.py): "Manager", "Reviewer" or "Door"."""
    from members.roles import Role, set_role

    def make(role: str = "Manager", **fields):
        member = make_member(**fields)
        set_role(member, Role(role))
        return member

    return make


@pytest.fixture
def staff(make_staff):
    """A manager: every staff page."""
    return make_staff("Manager", email="staff@example.com", full_name="Harriet Staff")


@pytest.fixture
def reviewer(make_staff):
    return make_staff("Reviewer", email="reviewer@example.com", full_name="Rita Reviewer")


@pytest.fixture
def door_staff(make_staff):
    return make_staff("Door", email="door@example.com", full_name="Dan Door")


@pytest.fixture
def open_cycle(db):
    from events.selectors import open_cycle

    cycle = open_cycle()
    assert cycle is not None, "the default schedule always has an open window"
    return cycle


@pytest.fixture
def make_event(open_cycle):
    from events.models import Event

    def make(cycle=None, **fields) -> Event:
        cycle = cycle or open_cycle
        fields.setdefault("title", "Jazz in the Cellar")
        fields.setdefault("venue", "Harry's Club")
        fields.setdefault("starts_at", cycle.charge_at + dt.timedelta(days=2))
        fields.setdefault("public_price_pence", 2500)
        return Event.objects.create(cycle=cycle, **fields)

    return make


@pytest.fixture
def approved_preorder_factory(stripe_server, make_member, make_event):
    """Pre-orders placed through localstripe with a given card, then approved by staff after
    the window closed early; returns a function(number=...) -> PreOrder."""
    from django.utils import timezone

    from events.models import PresaleCycle
    from preorders.models import PreOrder
    from preorders.services import place_preorder
    from tests.stripe_helpers import SUCCEEDS, new_confirmed_setup_intent

    state = {"event": None}

    def make(number: str = SUCCEEDS, event=None, approve: bool = True) -> PreOrder:
        if event is None:
            if state["event"] is None:
                state["event"] = make_event(public_price_pence=2500, discount_percent=10)
                _add_tickets(state["event"], 50)
            event = state["event"]
        member = make_member()
        preorder = place_preorder(
            member, event.pk, new_confirmed_setup_intent(stripe_server, member, number)
        )
        if approve:
            from preorders.decisions import approve as approve_preorders

            # Decisions need a closed window; reopen it afterwards so more can be placed.
            cycle = PresaleCycle.objects.filter(pk=event.cycle_id)
            cycle.update(closed_early_at=timezone.now())
            approve_preorders(event.pk, [preorder.pk], actor=None)
            cycle.update(closed_early_at=None)
            preorder = PreOrder.objects.get(pk=preorder.pk)
        return preorder

    return make


def _add_tickets(event, count: int) -> None:
    from tickets.models import Ticket

    Ticket.objects.bulk_create(
        Ticket(event=event, code=f"E{event.pk}-{n:05d}") for n in range(count)
    )


def close_window(cycle_id: int) -> None:
    """Close a cycle's pre-order window now, as staff do to start the review early."""
    from django.utils import timezone

    from events.models import PresaleCycle

    PresaleCycle.objects.filter(pk=cycle_id).update(closed_early_at=timezone.now())
