"""Demo data for the embedded run: staff, members, an open invitation and this week's events."""

import datetime as dt
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from events.london import to_london
from events.models import Event
from events.selectors import current_cycle
from members.models import Invitation, Member
from members.roles import Role, set_role
from members.services import hash_token
from tickets.services import generate_tickets

STAFF_EMAIL = "staff@harrys.club"  # a manager (superuser)
# The other staff roles, with the staff password (members/roles.py).
STAFF_ROLES = [
    ("reviewer@harrys.club", "Rita Reviewer", Role.REVIEWER),
    ("door@harrys.club", "Dan Door", Role.DOOR),
]
STAFF_PASSWORD = "club-staff-demo"  # noqa: S105 - demo login, printed on purpose
MEMBER_PASSWORD = "club-member-demo"  # noqa: S105 - demo login, printed on purpose
MEMBERS = [("alice@example.com", "Alice Archer"), ("bob@example.com", "Bob Baker")]
INVITEE = "newcomer@example.com"
TICKETS_PER_EVENT = 2  # small, so a demo review shows demand beyond supply

EVENTS = [
    # title, venue, days after the cycle's Monday, hour, public price (pence), discount
    ("Jazz in the Cellar", "Harry's Club, Cellar Bar", 9, 20, 2500, {}),
    ("Comedy Late", "The Old Fire Station", 10, 21, 1800, {"discount_fixed_pence": 300}),
    ("Soul Supper Club", "Harry's Club, Dining Room", 12, 19, 4500, {"discount_percent": 20}),
]


DESCRIPTIONS = {
    "Jazz in the Cellar": "The house trio with a guest saxophonist, two sets, candle-lit.",
    "Comedy Late": "Four comics trying out new material, hosted by a club favourite.",
    "Soul Supper Club": "A three-course supper with a live soul band until late.",
}


@dataclass
class DemoLogins:
    staff: tuple[str, str]
    other_staff: list[tuple[str, str, str]]  # email, password, role
    members: list[tuple[str, str]]
    invitation_url: str


@transaction.atomic
def seed_demo() -> DemoLogins:
    staff = Member.objects.filter(email=STAFF_EMAIL).first() or Member.objects.create_superuser(
        email=STAFF_EMAIL, password=STAFF_PASSWORD, full_name="Harriet Staff"
    )
    for email, name in MEMBERS:
        if not Member.objects.filter(email=email).exists():
            Member.objects.create_user(email=email, password=MEMBER_PASSWORD, full_name=name)
    for email, name, role in STAFF_ROLES:
        if not Member.objects.filter(email=email).exists():
            colleague = Member.objects.create_user(
                email=email, password=STAFF_PASSWORD, full_name=name
            )
            set_role(colleague, role)

    cycle = current_cycle()
    monday = to_london(cycle.opens_at).replace(hour=0, minute=0, second=0, microsecond=0)
    for title, venue, days, hour, price, discount in EVENTS:
        event, created = Event.objects.get_or_create(
            cycle=cycle,
            title=title,
            defaults={
                "venue": venue,
                "starts_at": monday + dt.timedelta(days=days, hours=hour),
                "description": DESCRIPTIONS[title],
                "public_price_pence": price,
                # Members without a ticket are pointed here: the Wednesday after the run.
                "public_sale_url": f"https://tickets.harrys.club/{slugify(title)}",
                "public_sale_at": monday + dt.timedelta(days=9, hours=10),
                **discount,
            },
        )
        if created:
            generate_tickets(event.pk, TICKETS_PER_EVENT, actor=staff)

    # A fresh link every run: only the token's hash is stored, so an old link cannot be shown.
    now = timezone.now()
    Invitation.objects.filter(
        email=INVITEE, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    if not Member.objects.filter(email=INVITEE).exists():
        Invitation.objects.create(
            email=INVITEE,
            token_hash=hash_token(token),
            invited_by=staff,
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.INVITATION_VALID_DAYS),
        )
        invitation_url = settings.SITE_URL + reverse("members:accept", args=[token])
    else:
        invitation_url = "(the demo invitee has already joined)"
    return DemoLogins(
        staff=(STAFF_EMAIL, STAFF_PASSWORD),
        other_staff=[(email, STAFF_PASSWORD, role.value) for email, _, role in STAFF_ROLES],
        members=[(email, MEMBER_PASSWORD) for email, _ in MEMBERS],
        invitation_url=invitation_url,
    )
