"""Invitations and sign-up. Nobody becomes a member without a valid invitation."""

import csv
import datetime as dt
import hashlib
import io
import re
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from members.models import Invitation, Member
from notifications.services import queue_email

MAX_INVITES_AT_ONCE = 500


class InvitationError(Exception):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class InviteReport:
    invited: list[str] = field(default_factory=list)
    already_members: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def parse_pasted_emails(text: str) -> list[str]:
    """Addresses from a pasted list, separated by commas, semicolons, spaces or new lines.
    Anything that is not an address is kept, so the report can point at it."""
    # "Jane Doe <jane@example.com>" counts as the address alone.
    text = re.sub(r"[^,;\n<>]*<([^<>\s]+)>", r" \1 ", text)
    tokens = (token.strip("<>\"'") for token in re.split(r"[\s,;]+", text))
    return [token for token in tokens if token]


def parse_csv_emails(text: str) -> list[str]:
    """Addresses from a CSV export: every cell with an @ in it (names and headers are skipped)."""
    return [
        cell.strip().strip("<>")
        for row in csv.reader(io.StringIO(text, newline=""))
        for cell in row
        if "@" in cell
    ]


def invite_members(raw_emails: list[str], *, invited_by: Member) -> InviteReport:
    """Invite each address once: bad addresses and existing members are reported, not invited.
    Re-inviting someone revokes their earlier link."""
    if len(raw_emails) > MAX_INVITES_AT_ONCE:
        raise InvitationError(
            f"Please invite at most {MAX_INVITES_AT_ONCE} people at once.", reason="too_many"
        )
    report = InviteReport()
    seen: set[str] = set()
    valid: list[str] = []
    for raw in raw_emails:
        email = raw.strip().lower()
        if email in seen:
            report.duplicates.append(email)
            continue
        seen.add(email)
        try:
            if len(email) > 254:
                raise ValidationError("too long")
            validate_email(email)
        except ValidationError:
            report.invalid.append(raw.strip()[:100])
            continue
        valid.append(email)
    existing = set(Member.objects.filter(email__in=valid).values_list("email", flat=True))
    now = timezone.now()
    with transaction.atomic():
        for email in valid:
            if email in existing:
                report.already_members.append(email)
                continue
            Invitation.objects.filter(
                email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
            ).update(revoked_at=now)
            token = secrets.token_urlsafe(32)
            invitation = Invitation.objects.create(
                email=email,
                token_hash=hash_token(token),
                invited_by=invited_by,
                created_at=now,
                expires_at=now + dt.timedelta(days=settings.INVITATION_VALID_DAYS),
            )
            queue_email(
                to_email=email,
                template="invitation",
                context={
                    "invitation": invitation,
                    "invited_by": invited_by,
                    "accept_url": settings.SITE_URL + reverse("members:accept", args=[token]),
                },
            )
            report.invited.append(email)
    return report


def usable_invitation(token: object) -> Invitation:
    """The open invitation a token opens, or InvitationError saying why not."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise InvitationError("This invitation link is not valid.", reason="invalid")
    invitation = Invitation.objects.filter(token_hash=hash_token(token)).first()
    if invitation is None:
        raise InvitationError("This invitation link is not valid.", reason="invalid")
    return _check_usable(invitation)


def _check_usable(invitation: Invitation) -> Invitation:
    if invitation.accepted_at:
        raise InvitationError(
            "This invitation has already been used. If it was you, please sign in.", reason="used"
        )
    if invitation.revoked_at:
        raise InvitationError(
            "This invitation was replaced by a newer one. Please use the latest email.",
            reason="revoked",
        )
    if invitation.expires_at <= timezone.now():
        raise InvitationError(
            "This invitation has expired. Please ask the club for a new one.", reason="expired"
        )
    return invitation


def accept_invitation(token: str, *, full_name: str, password: str) -> Member:
    """Create the member the invitation is for. The invitation row is locked, so a link clicked
    twice at once still makes one account."""
    invitation = usable_invitation(token)
    full_name = " ".join(full_name.split())
    if not full_name:
        raise ValidationError({"full_name": "Please tell us your name."})
    candidate = Member(email=invitation.email, full_name=full_name)
    password_validation.validate_password(password, user=candidate)
    try:
        with transaction.atomic():
            invitation = _check_usable(Invitation.objects.select_for_update().get(pk=invitation.pk))
            if Member.objects.filter(email__iexact=invitation.email).exists():
                raise IntegrityError("A member with this email exists.")
            member = Member.objects.create_user(
                email=invitation.email, password=password, full_name=full_name
            )
            invitation.accepted_at = timezone.now()
            invitation.accepted_by = member
            invitation.save(update_fields=["accepted_at", "accepted_by"])
    except IntegrityError as error:
        raise InvitationError(
            "An account with this email already exists. Please sign in.", reason="exists"
        ) from error
    return member
