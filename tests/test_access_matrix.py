"""Who may open what: every URL pattern of the project, walked from the URL resolver, opened as
an anonymous visitor, as member A (who owns a pre-order), as member B (who must never see it)
and as each staff role (door, reviewer, manager — "staff" below is the manager). A new page is
covered without touching this file, as long as its URL's arguments
are ones this file knows how to fill (`FILLERS`); one it cannot fill fails the test by name.

The classes of URL:
- public (`PUBLIC`): sign-in, invitations, password reset, health checks, the Stripe webhook;
- staff (every path under staff/): anonymous -> sign in, members -> 403, staff -> 200/302 (a
  redirect that ends at sign-in does not count), or
  405 on GET for a POST-only action, whose empty POST then gives 200/302/400; a reviewer is
  refused (403) the manager's pages (`MANAGER_ONLY`) and the door role everything but its own
  pages (`DOOR_PAGES`), which every role may open;
- member (everything else): anonymous -> sign in, members -> 200 for what is theirs and 404 for
  another member's pre-order;
- Django's admin: its index only (reviewers and managers 200, everyone else to the admin's
  sign-in);
- anymail's provider webhooks: they exist and refuse an unauthenticated POST.

Also here: Stripe signatures that are forged or older than the SDK's 300-second tolerance, and
the sign-in throttle. Invitation links being single-use and expiring is in test_signup.py
(test_the_same_link_twice_..., test_an_expired_link_..., test_a_link_that_expired_while_...)."""

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from events.models import EventLogEntry, PresaleCycle
from members import services as member_services
from members.account import EMAIL_CHANGE_SALT
from members.models import Invitation, Member
from notifications.models import OutboundEmail, OutboxMessage
from payments.models import StripeEvent
from preorders.models import PreOrder
from preorders.states import Status
from tickets.models import CheckIn, DoorScan, Ticket

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "member_a", "member_b", "door", "reviewer", "staff")
SIGNED_IN = ROLES[1:]
PASSWORD = "a-Good-passw0rd"  # the conftest factory's default
LOGIN = reverse("members:login")
DASHBOARD = reverse("preorders:dashboard")
STAFF_HOME = reverse("staff:events")
DOOR_HOME = reverse("tickets:door_events")

PUBLIC = frozenset(
    {
        "healthz",
        "readyz",
        "members:accept",
        "members:login",
        "members:logout",
        "members:password_reset",
        "members:password_reset_done",
        "members:password_reset_confirm",
        "members:password_reset_complete",
        "payments:stripe_webhook",
    }
)
# The only page of Django's admin tested here; the rest is Django's own.
ADMIN_INDEX = "admin:index"
# Staff pages only a manager may open (a reviewer gets 403).
MANAGER_ONLY = frozenset(
    {
        "payments:start_charge_run",
        "payments:offer_freed_places",
        "payments:webhook_log",
        "payments:replay",
        "notifications:outbox",
        "notifications:outbox_message",
        "notifications:email_log",
        "members:invitations",
        "members:invitation_revoke",
        "members:invitation_resend",
        "members:staff_members",
        "members:staff_member",
        "members:member_role",
        "members:member_deactivate",
        "members:member_reactivate",
        "payments:refund",
        "tickets:check_in_undo",
    }
)
# Staff pages the door role may open (every other staff role may too).
DOOR_PAGES: frozenset[str] = frozenset(
    {"tickets:door_events", "tickets:door", "tickets:door_scan", "tickets:door_count"}
)


@pytest.fixture(autouse=True)
def _empty_cache():
    """The sign-in throttle counts in the cache; no test may inherit another's count."""
    cache.clear()
    yield
    cache.clear()


# --- The objects the URLs point at ------------------------------------------------------------


@dataclass
class World:
    member_a: Member
    member_b: Member
    staff: Member  # a manager
    reviewer: Member
    door: Member
    cycle: PresaleCycle
    event: object
    preorder_a: PreOrder
    ticket: Ticket
    check_in: CheckIn
    stripe_event: StripeEvent
    outbox_message: OutboxMessage
    outbound_email: OutboundEmail
    invite_token: str
    ballot_entry: EventLogEntry
    email_change_token: str
    reset_uid: str
    reset_token: str

    def user(self, role: str) -> Member | None:
        return None if role == "anonymous" else getattr(self, role)


@pytest.fixture
def world(stripe_server, make_member, make_staff, make_event, open_cycle) -> World:
    member_a = make_member(email="a@example.com", full_name="Ada A")
    member_b = make_member(email="b@example.com", full_name="Bea B")
    staff = make_staff("Manager", email="boss@example.com", full_name="Stan Staff")
    reviewer = make_staff("Reviewer", email="rev@example.com", full_name="Rita Reviewer")
    door = make_staff("Door", email="door@example.com", full_name="Dan Door")
    event = make_event()
    preorder_a = PreOrder.objects.create(
        member=member_a,
        event=event,
        cycle=open_cycle,
        amount_pence=event.member_price_pence,
        stripe_customer_id="cus_matrix_a",
        payment_method_id="pm_matrix_a",
        setup_intent_id="seti_matrix_a",
        card_brand="visa",
        card_last4="4242",
    )
    ticket = Ticket.objects.create(event=event, code="MATRIX-0001")
    check_in = CheckIn.objects.create(ticket=ticket, checked_in_by=door)
    stripe_event = StripeEvent.objects.create(
        stripe_id="evt_matrix", type="payment_intent.succeeded", payload={"id": "evt_matrix"}
    )
    outbox_message = OutboxMessage.objects.create(
        message_id="<matrix@test>",
        from_email="tickets@harrys.club",
        to="a@example.com",
        subject="Hello",
        body_text="Hello A",
    )
    outbound_email = OutboundEmail.objects.create(
        to_email="a@example.com", template="ticket", subject="Hello", body_text="Hello A"
    )
    invite_token = secrets.token_urlsafe(32)
    Invitation.objects.create(
        email="newbie@example.com",
        token_hash=member_services.hash_token(invite_token),
        invited_by=staff,
        expires_at=timezone.now() + dt.timedelta(days=14),
    )
    return World(
        member_a=member_a,
        member_b=member_b,
        staff=staff,
        reviewer=reviewer,
        door=door,
        cycle=open_cycle,
        event=event,
        preorder_a=preorder_a,
        ticket=ticket,
        check_in=check_in,
        stripe_event=stripe_event,
        outbox_message=outbox_message,
        outbound_email=outbound_email,
        invite_token=invite_token,
        ballot_entry=EventLogEntry.objects.create(
            event=event,
            cycle=open_cycle,
            action="auto_fulfil",
            data={"mode": "ballot", "seed": 7, "places": 0, "candidates": [], "approved": []},
        ),
        email_change_token=signing.dumps(
            {"m": member_a.pk, "from": member_a.email, "to": "new-a@example.com"},
            salt=EMAIL_CHANGE_SALT,
        ),
        reset_uid=urlsafe_base64_encode(force_bytes(member_a.pk)),
        reset_token=default_token_generator.make_token(member_a),
    )


# How to fill a URL argument, by its name; some names mean different things in different URLs.
FILLERS: dict[str, Callable[[World], object]] = {
    "event_id": lambda w: w.event.pk,
    "preorder_id": lambda w: w.preorder_a.pk,
    "cycle_id": lambda w: w.cycle.pk,
    "ticket_id": lambda w: w.ticket.pk,
    "check_in_id": lambda w: w.check_in.pk,
    "event_pk": lambda w: w.stripe_event.pk,
    "message_id": lambda w: w.outbox_message.pk,
    "email_id": lambda w: w.outbound_email.pk,
    "entry_id": lambda w: w.ballot_entry.pk,
    "member_id": lambda w: w.member_b.pk,
    "invitation_id": lambda w: Invitation.objects.get(email="newbie@example.com").pk,
}
FILLERS_BY_URL: dict[str, dict[str, Callable[[World], object]]] = {
    "members:accept": {"token": lambda w: w.invite_token},
    "members:confirm_email": {"token": lambda w: w.email_change_token},
    "members:password_reset_confirm": {
        "uidb64": lambda w: w.reset_uid,
        "token": lambda w: w.reset_token,
    },
}
# Member pages whose argument is member A's pre-order: nobody else may see it.
OWNED_BY_A = frozenset({"preorder_id"})
# Member actions that only take a POST (an empty one is refused or changes nothing).
MEMBER_POST_ONLY = frozenset(
    {
        "members:account_details",
        "members:account_password",
        "members:sign_out_others",
        "members:default_card",
    }
)


# --- Walking the resolver -----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str | None  # "namespace:name"
    route: str  # the pattern as written, for messages
    arguments: tuple[str, ...]
    namespace: str

    @property
    def label(self) -> str:
        return f"{self.name or '(unnamed)'} [{self.route}]"

    @property
    def kind(self) -> str:
        if self.namespace.split(":")[0] == "admin":
            return "admin" if self.name == ADMIN_INDEX else "admin-internal"
        if self.namespace.split(":")[0] == "anymail":
            return "provider-webhook"
        if self.name in PUBLIC:
            return "public"
        if self.route.startswith("staff/"):
            return "staff"
        return "member"


def _arguments(pattern) -> tuple[str, ...]:
    if isinstance(pattern, RoutePattern):
        return tuple(pattern.converters)
    regex = pattern.regex
    named = tuple(regex.groupindex)
    unnamed = regex.groups - len(named)
    return named + tuple(f"<unnamed group {i + 1}>" for i in range(unnamed))


def walk(
    resolver: URLResolver | None = None,
    prefix: str = "",
    namespace: str = "",
    inherited: tuple[str, ...] = (),
) -> Iterator[Route]:
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part)
            yield from walk(
                entry, prefix + str(entry.pattern), inner, inherited + _arguments(entry.pattern)
            )
        elif isinstance(entry, URLPattern):
            name = None
            if entry.name:
                name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Route(
                name=name,
                route=prefix + str(entry.pattern),
                arguments=inherited + _arguments(entry.pattern),
                namespace=namespace,
            )


ROUTES = list(walk())


def build_path(route: Route, world: World) -> str:
    """The URL with its arguments filled with real ids, or AssertionError naming the URL."""
    fillers = FILLERS_BY_URL.get(route.name or "", {})
    missing = [arg for arg in route.arguments if arg not in fillers and arg not in FILLERS]
    if route.name is None or missing:
        raise AssertionError(
            f"The access matrix does not know how to fill {route.label}: "
            f"{'it has no name' if route.name is None else 'unknown arguments ' + str(missing)}. "
            "Add a filler to FILLERS (or FILLERS_BY_URL) in tests/test_access_matrix.py."
        )
    kwargs = {arg: (fillers.get(arg) or FILLERS[arg])(world) for arg in route.arguments}
    return reverse(route.name, kwargs=kwargs)


def staff_html_pages(world: World):
    """(URL name, page text) for every HTML page under staff/ the resolver knows, opened by the
    world's manager: for checks that must hold on every staff page, not a list picked by hand."""
    from django.test import Client

    client = Client()
    client.force_login(world.staff)
    for route in ROUTES:
        if route.kind != "staff":
            continue
        response = client.get(build_path(route, world), follow=True)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            yield route.name, response.content.decode()


# --- Requests, each undone afterwards so that one URL's action cannot change the next's answer --


def snapshot() -> dict:
    return {
        "preorders": list(PreOrder.objects.order_by("pk").values_list("pk", "status", "event_id")),
        "tickets": list(
            Ticket.objects.order_by("pk").values_list("pk", "preorder_id", "voided_at")
        ),
        "check_ins": list(
            CheckIn.objects.order_by("pk").values_list("pk", "ticket_id", "undone_at")
        ),
        "door_scans": DoorScan.objects.count(),
        "invitations": list(
            Invitation.objects.order_by("pk").values_list("pk", "accepted_at", "revoked_at")
        ),
        "members": list(Member.objects.order_by("pk").values_list("pk", "email", "password")),
        "emails": list(OutboundEmail.objects.order_by("pk").values_list("pk", "status")),
        "stripe_events": list(
            StripeEvent.objects.order_by("pk").values_list("pk", "status", "attempts")
        ),
        "cycles": list(
            PresaleCycle.objects.order_by("pk").values_list(
                "pk", "closed_early_at", "charge_run_started_at"
            )
        ),
    }


@dataclass
class Answer:
    status: int
    location: str
    changed: bool
    path: str  # the page that gave this answer, after same-site redirects that were followed


def request_as(world: World, role: str, method: str, path: str, *, follow: bool = False) -> Answer:
    """One request (and, with follow, the same-site redirects after it, except to sign-in),
    rolled back afterwards so that one URL's action cannot change the next one's answer."""
    with transaction.atomic():
        client = Client(raise_request_exception=False)
        user = world.user(role)
        if user is not None:
            client.force_login(user)
        before = snapshot()
        response = client.get(path) if method == "GET" else client.post(path)
        for _ in range(3):
            target = urlsplit(response.get("Location", ""))
            if not (follow and response.status_code == 302 and not target.netloc):
                break
            if target.path in (LOGIN, reverse("admin:login")):
                break
            path = target.path
            response = client.get(path)
        if response.status_code == 200 and getattr(response, "streaming", False):
            b"".join(response.streaming_content)  # a CSV export fails while it streams
        changed = snapshot() != before
        transaction.set_rollback(True)
    return Answer(response.status_code, response.get("Location", ""), changed, path)


def is_login_redirect(answer: Answer, login: str = LOGIN) -> bool:
    if answer.status != 302:
        return False
    target = urlsplit(answer.location)
    return target.path == login and parse_qs(target.query).get("next") == [answer.path]


# --- What each class of URL must answer ---------------------------------------------------------


Expectation = Callable[[Answer], bool]


def status(*codes: int) -> Expectation:
    check = lambda answer: answer.status in codes  # noqa: E731
    check.__doc__ = "/".join(map(str, codes))
    return check


def redirect_to(path: str, *, suffix: bool = False) -> Expectation:
    def check(answer: Answer) -> bool:
        where = urlsplit(answer.location).path
        return answer.status == 302 and (where.endswith(path) if suffix else where == path)

    check.__doc__ = f"302 to {path}"
    return check


def to_login(login: str = LOGIN) -> Expectation:
    check = lambda answer: is_login_redirect(answer, login)  # noqa: E731
    check.__doc__ = f"302 to {login}?next=<the page>"
    return check


def opens() -> Expectation:
    """A page this role may open: 200 (405 for a POST-only action), or a redirect (followed
    above) that does not end at the sign-in page."""

    def check(answer: Answer) -> bool:
        if answer.status == 302:
            return urlsplit(answer.location).path != LOGIN
        return answer.status in (200, 405)

    check.__doc__ = "200/405, or 302 anywhere but the sign-in page"
    return check


def nothing_changes(check: Expectation) -> Expectation:
    wrapped = lambda answer: check(answer) and not answer.changed  # noqa: E731
    wrapped.__doc__ = f"{check.__doc__}, changing nothing"
    return wrapped


def expectations(route: Route, path: str, world: World) -> list[tuple[str, str, Expectation]]:
    """(method, role, expectation) for one URL. A staff URL's POST checks are added by the
    caller once a GET shows it is POST-only."""
    name = route.name
    every = lambda method, check: [(method, role, check) for role in ROLES]  # noqa: E731
    signed_in = SIGNED_IN
    if route.kind == "public":
        if name in ("members:accept", "members:login"):
            # Signed in already: staff who review start from the events page, the door role at
            # the door, others from their dashboard (an invitation link: the dashboard).
            homes = {"reviewer": STAFF_HOME, "staff": STAFF_HOME, "door": DOOR_HOME}
            home = lambda role: (  # noqa: E731
                homes.get(role, DASHBOARD) if name == "members:login" else DASHBOARD
            )
            return [("GET", "anonymous", status(200))] + [
                ("GET", role, redirect_to(home(role))) for role in signed_in
            ]
        if name == "members:logout":
            return every("GET", status(405)) + every("POST", redirect_to(LOGIN))
        if name == "members:password_reset_confirm":
            # Django swaps the emailed token for one held in the session, then redirects. The
            # token is for member A: their signing in (a newer last_login) has spent it.
            return [
                ("GET", role, redirect_to("/set-password/", suffix=True))
                for role in ROLES
                if role != "member_a"
            ] + [("GET", "member_a", status(200))]
        if name == "payments:stripe_webhook":
            return every("GET", status(405)) + every("POST", nothing_changes(status(400)))
        if name == "readyz":
            # For the load balancer, no sign-in; red here (no beat runs in this test).
            return every("GET", status(200, 503))
        return every("GET", status(200))
    if route.kind == "admin":
        admin_login = reverse("admin:login")
        return [
            ("GET", role, status(200) if role in ("reviewer", "staff") else to_login(admin_login))
            for role in ROLES
        ]
    if route.kind == "staff":
        return [("GET", "anonymous", to_login())] + [
            ("GET", role, opens() if staff_may(role, name) else status(403)) for role in SIGNED_IN
        ]
    # Member pages.
    checks = [("GET", "anonymous", to_login())]
    if name == "preorders:calendar":
        # Member A's pre-order is pending: no ticket, so no calendar entry for anyone.
        checks += [("GET", role, status(404)) for role in SIGNED_IN]
    elif name in MEMBER_POST_ONLY:
        checks += [("GET", role, status(405)) for role in SIGNED_IN]
        checks += [("POST", "anonymous", nothing_changes(to_login()))]
        checks += [("POST", role, nothing_changes(status(302, 400))) for role in SIGNED_IN]
    elif name == "members:remove_card":
        # Without a card of theirs, back to the account page with a message.
        checks += [("GET", role, redirect_to(reverse("members:account"))) for role in SIGNED_IN]
    elif name == "members:confirm_email":
        # The link is member A's: anyone else signed in is told it is for another account.
        checks += [("GET", "member_a", status(200))]
        checks += [("GET", role, status(400)) for role in SIGNED_IN if role != "member_a"]
    elif OWNED_BY_A & set(route.arguments):
        checks += [
            ("GET", "member_a", status(200)),
            *(("GET", role, status(404)) for role in SIGNED_IN if role != "member_a"),
            # Nor may they act on it.
            *(
                ("POST", role, nothing_changes(status(404)))
                for role in SIGNED_IN
                if role != "member_a"
            ),
        ]
    elif name == "preorders:place":
        # Member A already has this week's pre-order: the form sends them to it.
        detail = reverse("preorders:detail", args=[world.preorder_a.pk])
        checks += [
            ("GET", "member_a", redirect_to(detail)),
            *(("GET", role, status(200)) for role in SIGNED_IN if role != "member_a"),
        ]
    else:
        checks += [("GET", role, status(200)) for role in signed_in]
    return checks


def staff_may(role: str, name: str | None) -> bool:
    if role == "staff" or (role == "reviewer" and name not in MANAGER_ONLY):
        return True
    return role in ("door", "reviewer") and name in DOOR_PAGES


def staff_post_only(name: str | None) -> list[tuple[str, str, Expectation]]:
    """An empty POST to a POST-only staff action: it may do something only for those allowed."""
    return [("POST", "anonymous", nothing_changes(to_login()))] + [
        (
            "POST",
            role,
            status(200, 302, 400) if staff_may(role, name) else nothing_changes(status(403)),
        )
        for role in SIGNED_IN
    ]


# --- The matrix ---------------------------------------------------------------------------------


def test_every_url_answers_each_kind_of_visitor_as_its_class_says(world):
    problems: list[str] = []
    tested = 0
    for route in ROUTES:
        if route.kind in ("admin-internal", "provider-webhook"):
            continue
        try:
            path = build_path(route, world)
        except AssertionError as error:
            problems.append(str(error))
            continue
        checks = expectations(route, path, world)
        answers: dict[tuple[str, str], Answer] = {}
        for method, role, check in checks:
            # A staff URL that only redirects (staff/ -> staff/events/) is judged by where it
            # leads.
            follow = route.kind == "staff" and method == "GET"
            answers[method, role] = answer = request_as(world, role, method, path, follow=follow)
            tested += 1
            if not check(answer):
                problems.append(
                    f"{route.label} {method} {path} as {role}: expected {check.__doc__}, "
                    f"got {answer.status} {answer.location}"
                    + (" and the data changed" if answer.changed else "")
                )
        if route.kind == "staff" and answers["GET", "staff"].status == 405:
            # POST-only: an empty POST, which must do nothing for anyone but staff.
            for method, role, check in staff_post_only(route.name):
                answer = request_as(world, role, method, path)
                tested += 1
                if not check(answer):
                    problems.append(
                        f"{route.label} {method} {path} as {role}: expected {check.__doc__}, "
                        f"got {answer.status} {answer.location}"
                        + (" and the data changed" if answer.changed else "")
                    )
    assert not problems, "\n".join(problems)
    assert tested > 100


def test_the_matrix_knows_every_public_url_it_names():
    """A name in PUBLIC that no longer exists would silently stop being checked."""
    names = {route.name for route in ROUTES}
    assert PUBLIC <= names, PUBLIC - names
    assert DOOR_PAGES | MANAGER_ONLY <= names, (DOOR_PAGES | MANAGER_ONLY) - names
    assert ADMIN_INDEX in names


def test_the_walk_finds_the_urls_of_every_app():
    names = {route.name for route in ROUTES}
    for expected in (
        "preorders:dashboard",
        "preorders:detail",
        "staff:events",
        "staff:decide",
        "tickets:pool_import",
        "tickets:door_scan",
        "tickets:check_in_undo",
        "payments:replay",
        "notifications:outbox_message",
        "members:invitations",
        "anymail:resend_tracking_webhook",
        "anymail:mailersend_tracking_webhook",
    ):
        assert expected in names


def test_a_url_the_matrix_cannot_fill_fails_by_name(world):
    new_page = Route(
        name="preorders:seat", route="seats/<row_id:seat_id>/", arguments=("seat_id",), namespace=""
    )
    with pytest.raises(AssertionError, match=r"preorders:seat \[seats/<row_id:seat_id>/\]"):
        build_path(new_page, world)
    unnamed = Route(name=None, route="oops/", arguments=(), namespace="")
    with pytest.raises(AssertionError, match=r"\(unnamed\) \[oops/\]"):
        build_path(unnamed, world)


def test_an_unknown_page_outside_staff_is_treated_as_a_member_page():
    """The safe default: a new page needs sign-in unless it is declared public."""
    assert Route(name="x:y", route="new/", arguments=(), namespace="x").kind == "member"
    assert Route(name="x:y", route="staff/new/", arguments=(), namespace="x").kind == "staff"


def test_member_b_cannot_cancel_or_edit_member_as_pre_order_with_data(world):
    """The matrix posts empty bodies; here B posts what the real forms send."""
    client = Client()
    client.force_login(world.member_b)
    cancel = client.post(reverse("preorders:cancel", args=[world.preorder_a.pk]))
    edit = client.post(
        reverse("preorders:edit", args=[world.preorder_a.pk]),
        {"event": world.event.pk, "setup_intent_id": ""},
    )
    assert (cancel.status_code, edit.status_code) == (404, 404)
    assert PreOrder.objects.get(pk=world.preorder_a.pk).status == Status.PENDING


# --- Email provider webhooks (anymail) ---------------------------------------------------------

PROVIDER_WEBHOOKS = [route for route in ROUTES if route.kind == "provider-webhook"]


def _provider_webhook_answers() -> dict[str, int]:
    client = Client(raise_request_exception=False)
    answers = {}
    for route in PROVIDER_WEBHOOKS:
        # Regex routes (mailgun's inbound) have no arguments to fill: the route itself is a path.
        if route.arguments:  # mailgun's inbound route is a regex with an optional group
            path = "/" + route.route.replace("^", "").replace("(_mime)?", "").replace("$", "")
        else:
            path = reverse(route.name)
        answers[path] = client.post(path, data=b"{}", content_type="application/json").status_code
    return answers


def test_the_providers_delivery_report_webhooks_are_mounted():
    names = {route.name for route in PROVIDER_WEBHOOKS}
    assert "anymail:resend_tracking_webhook" in names
    assert "anymail:mailersend_tracking_webhook" in names


def test_every_provider_webhook_refuses_an_unauthenticated_post(db):
    """Without the shared secret (basic auth) or the provider's signature, a delivery report
    must be refused with a 4xx: accepted, anyone could mark our emails as bounced; a 5xx means
    the endpoint of a provider we do not use is mounted without its settings."""
    answers = _provider_webhook_answers()
    wrong = {path: code for path, code in answers.items() if not 400 <= code < 500}
    assert not wrong, f"Unauthenticated POSTs not refused with a 4xx: {wrong}"


def test_every_provider_webhook_refuses_an_unauthenticated_post_once_the_secret_is_set(
    db, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "anymail:" + "s" * 32}
    answers = _provider_webhook_answers()
    accepted = {path: code for path, code in answers.items() if 200 <= code < 300}
    assert not accepted, f"Unauthenticated POSTs accepted: {accepted}"
    wrong = {path: code for path, code in answers.items() if not 400 <= code < 500}
    assert not wrong, f"Unauthenticated POSTs not refused with a 4xx: {wrong}"


def test_a_forged_delivery_report_does_not_mark_an_email_failed(db):
    """An unauthenticated "bounce" in a provider's format, naming one of our sent emails."""
    email = OutboundEmail.objects.create(
        to_email="a@example.com",
        template="ticket",
        subject="Your ticket",
        body_text="…",
        status=OutboundEmail.Status.SENT,
        sent_at=timezone.now(),
        provider_message_id="0a1b2c3d-0000-4000-8000-000000000001",
    )
    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": email.provider_message_id,
        "Email": "a@example.com",
        "BouncedAt": "2026-01-01T00:00:00Z",
        "Description": "forged",
    }
    client = Client(raise_request_exception=False)
    for path in ("/anymail/postmark/tracking/", "/anymail/resend/tracking/"):
        client.post(path, data=json.dumps(bounce), content_type="application/json")
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


# --- Stripe webhook signatures (more in test_webhooks.py) -------------------------------------

WEBHOOK = reverse("payments:stripe_webhook")
SDK_TOLERANCE_SECONDS = 300


def stripe_signature(payload: bytes, *, secret: str | None = None, at: int | None = None) -> str:
    secret = settings.STRIPE_WEBHOOK_SECRET if secret is None else secret
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def stripe_payload() -> bytes:
    return json.dumps(
        {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    ).encode()


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda body: stripe_signature(body, secret="whsec_forged"), id="forged"),
        pytest.param(
            lambda body: stripe_signature(body, at=int(time.time()) - SDK_TOLERANCE_SECONDS - 1),
            id="stale-by-one-second",
        ),
        pytest.param(
            lambda body: stripe_signature(body).replace("v1=", "v0="), id="only-a-v0-scheme"
        ),
    ],
)
def test_a_forged_or_stale_stripe_signature_is_refused_and_nothing_is_stored(
    client, make_signature
):
    payload = stripe_payload()
    response = client.post(
        WEBHOOK,
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": make_signature(payload)},
    )
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_signature_just_inside_the_tolerance_is_accepted(client):
    payload = stripe_payload()
    response = client.post(
        WEBHOOK,
        data=payload,
        content_type="application/json",
        headers={
            "Stripe-Signature": stripe_signature(
                payload, at=int(time.time()) - SDK_TOLERANCE_SECONDS + 30
            )
        },
    )
    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1


# --- Sign-in throttling (members/throttling.py) ------------------------------------------------

THROTTLED = "Too many sign-in attempts. Please wait"


def sign_in(email: str, password: str = "wrong-password", ip: str = "203.0.113.7", **headers):
    client = Client(REMOTE_ADDR=ip, **headers)
    return client.post(LOGIN, {"username": email, "password": password})


@pytest.fixture
def limits(settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 5
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 900
    settings.LOGIN_THROTTLE_PROXY_COUNT = 0


def test_after_five_failures_for_an_email_the_sixth_attempt_is_refused_unchecked(member, limits):
    for n in range(5):
        response = sign_in("alice@example.com", ip=f"198.51.100.{n}")
        assert response.status_code == 200, n  # the form again, with its error

    # Even the right password, from yet another address, is not checked now.
    with mock.patch.object(ModelBackend, "authenticate") as authenticate:
        refused = sign_in("alice@example.com", PASSWORD, ip="198.51.100.99")

    authenticate.assert_not_called()
    assert refused.status_code == 429
    assert THROTTLED in refused.text
    assert "minutes or reset your password." in refused.text
    assert 1 <= int(refused["Retry-After"]) <= 900
    assert "_auth_user_id" not in refused.wsgi_request.session
    assert "no-cache" in refused["Cache-Control"] or "no-store" in refused["Cache-Control"]


def test_the_email_is_counted_whatever_its_case(member, limits):
    for n, email in enumerate(["alice@example.com", "ALICE@example.com", " Alice@Example.COM "]):
        sign_in(email, ip=f"198.51.100.{n}")
    sign_in("alice@EXAMPLE.com", ip="198.51.100.3")
    sign_in("aLiCe@example.com", ip="198.51.100.4")

    assert sign_in("alice@example.com", PASSWORD, ip="198.51.100.5").status_code == 429


def test_failures_from_one_ip_lock_that_ip_for_any_email(member, make_member, limits):
    for n in range(5):
        sign_in(f"nobody{n}@example.com", ip="203.0.113.50")

    assert sign_in("alice@example.com", PASSWORD, ip="203.0.113.50").status_code == 429
    # Another address is not affected, and the member can still sign in from there.
    assert sign_in("alice@example.com", PASSWORD, ip="203.0.113.51").status_code == 302


def test_a_forged_x_forwarded_for_does_not_escape_the_ip_count(member, limits):
    for n in range(5):
        sign_in(f"nobody{n}@example.com", ip="203.0.113.60", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")

    response = sign_in(
        "alice@example.com", PASSWORD, ip="203.0.113.60", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_address_it_saw_is_counted(member, limits, settings):
    settings.LOGIN_THROTTLE_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    for n in range(5):
        sign_in(
            f"nobody{n}@example.com",
            ip=proxy,
            HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.70",  # the client wrote the first entry
        )

    blocked = sign_in("alice@example.com", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.70")
    other_client = sign_in(
        "alice@example.com", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.71"
    )
    assert (blocked.status_code, other_client.status_code) == (429, 302)


def test_an_ipv6_client_is_counted_by_its_64_prefix(member, limits):
    for n in range(5):
        sign_in(f"nobody{n}@example.com", ip=f"2001:db8:1:2::{n + 1}")

    assert sign_in("alice@example.com", PASSWORD, ip="2001:db8:1:2::ff").status_code == 429
    assert sign_in("alice@example.com", PASSWORD, ip="2001:db8:1:3::1").status_code == 302


def test_a_successful_sign_in_resets_the_emails_count(member, limits):
    for n in range(4):
        sign_in("alice@example.com", ip=f"198.51.100.{n}")
    assert sign_in("Alice@example.com", PASSWORD, ip="198.51.100.10").status_code == 302

    for n in range(4):
        assert sign_in("alice@example.com", ip=f"198.51.100.{20 + n}").status_code == 200
    assert sign_in("alice@example.com", PASSWORD, ip="198.51.100.30").status_code == 302


def test_the_lock_ends_with_the_window(member, limits):
    with time_machine.travel(dt.datetime(2026, 3, 4, 12, 0, 5, tzinfo=dt.UTC), tick=False):
        for n in range(5):
            sign_in("alice@example.com", ip=f"198.51.100.{n}")
        refused = sign_in("alice@example.com", PASSWORD, ip="198.51.100.9")
        assert refused.status_code == 429
        assert "Please wait 15 minutes" in refused.text  # the window opened at the first failure
    with time_machine.travel(dt.datetime(2026, 3, 4, 12, 14, 30, tzinfo=dt.UTC), tick=False):
        refused = sign_in("alice@example.com", PASSWORD, ip="198.51.100.9")
        assert refused.status_code == 429
        assert "Please wait 1 minute or" in refused.text
    with time_machine.travel(dt.datetime(2026, 3, 4, 12, 15, 4, tzinfo=dt.UTC), tick=False):
        assert sign_in("alice@example.com", PASSWORD, ip="198.51.100.9").status_code == 429
    with time_machine.travel(dt.datetime(2026, 3, 4, 12, 15, 6, tzinfo=dt.UTC), tick=False):
        assert sign_in("alice@example.com", PASSWORD, ip="198.51.100.9").status_code == 302


def test_the_limits_come_from_settings(member, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 2
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 60
    sign_in("alice@example.com", ip="198.51.100.1")
    sign_in("alice@example.com", ip="198.51.100.2")

    refused = sign_in("alice@example.com", PASSWORD, ip="198.51.100.3")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) <= 60


def test_the_sign_in_page_itself_still_opens_when_locked(member, limits):
    for _ in range(5):
        sign_in("nobody@example.com", ip="203.0.113.80")

    assert Client(REMOTE_ADDR="203.0.113.80").get(LOGIN).status_code == 200


def test_password_reset_requests_are_limited_per_ip(member, limits):
    client = Client(REMOTE_ADDR="203.0.113.90")
    reset = reverse("members:password_reset")
    for n in range(5):
        response = client.post(reset, {"email": f"someone{n}@example.com"})
        assert response.status_code == 302

    refused = client.post(reset, {"email": "alice@example.com"})

    assert refused.status_code == 429
    assert "Too many password-reset requests" in refused.text
    assert not OutboundEmail.objects.filter(to_email="alice@example.com").exists()


def test_password_reset_requests_are_limited_per_address(member, limits):
    reset = reverse("members:password_reset")
    for n in range(5):
        Client(REMOTE_ADDR=f"198.51.100.{n}").post(reset, {"email": "alice@example.com"})

    refused = Client(REMOTE_ADDR="198.51.100.9").post(reset, {"email": "ALICE@example.com"})

    assert refused.status_code == 429
    assert OutboundEmail.objects.filter(to_email="alice@example.com").count() == 5


def test_zero_attempts_turns_the_throttle_off(member, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 0
    for n in range(8):
        assert sign_in("alice@example.com", ip="198.51.100.1").status_code == 200, n
    assert sign_in("alice@example.com", PASSWORD, ip="198.51.100.1").status_code == 302
