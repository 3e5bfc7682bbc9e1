"""Everything the club holds about a member, as one JSON document (UK GDPR right of access):
profile, account history, saved cards (from Stripe), pre-orders with their history, payments,
refunds and tickets (with their check-in at the door), and the emails sent to them."""

import datetime as dt

from django.utils import timezone

from members.models import Invitation, Member, MemberLogEntry
from notifications.models import OutboundEmail
from payments import gateway
from payments.cards import member_cards
from preorders.models import PreOrder, PreOrderLogEntry

FORMAT_VERSION = 1


def _when(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def export_member_data(member: Member) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": _when(timezone.now()),
        "profile": _profile(member),
        "account_history": [
            {
                "at": _when(entry.created_at),
                "what": entry.get_action_display(),
                "detail": entry.detail,
            }
            for entry in MemberLogEntry.objects.filter(member=member).order_by("created_at", "id")
        ],
        "saved_cards": _cards(member),
        "preorders": [_preorder(p) for p in _preorders(member)],
        "emails": [_email(e) for e in OutboundEmail.objects.filter(member=member).order_by("id")],
    }


def _profile(member: Member) -> dict:
    invitation = Invitation.objects.filter(accepted_by=member).first()
    return {
        "name": member.full_name,
        "email": member.email,
        "joined_at": _when(member.date_joined),
        "last_sign_in_at": _when(member.last_login),
        "invited_at": _when(invitation.created_at) if invitation else None,
        "invited_as": invitation.email if invitation else None,
        "has_payment_account": bool(member.stripe_customer_id),
    }


def _cards(member: Member) -> list[dict] | str:
    try:
        cards = member_cards(member)
    except gateway.GatewayError:
        return "Our payment provider could not be reached; please download again later."
    return [
        {
            "brand": card.brand,
            "last4": card.last4,
            "expires": card.expires,
            "default": card.is_default,
        }
        for card in cards
    ]


def _preorders(member: Member):
    return (
        PreOrder.objects.filter(member=member)
        .select_related("event", "cycle", "ticket")
        .prefetch_related("log_entries", "charge_attempts", "refunds", "ticket__check_ins")
        .order_by("created_at", "id")
    )


def _preorder(preorder: PreOrder) -> dict:
    ticket = getattr(preorder, "ticket", None)
    return {
        "id": preorder.pk,
        "week_of": preorder.cycle.week_start.isoformat(),
        "event": {
            "title": preorder.event.title,
            "starts_at": _when(preorder.event.starts_at),
            "venue": preorder.event.venue,
        },
        "status": preorder.member_label,
        "amount_pence": preorder.amount_pence,
        "currency": preorder.currency,
        "card": f"{preorder.card_brand} •••• {preorder.card_last4}",
        "placed_at": _when(preorder.created_at),
        "payment_failure": preorder.failure_sentence if preorder.failure_code else None,
        "history": [_log_entry(entry) for entry in preorder.log_entries.all()],
        "payments": [
            {
                "amount_pence": attempt.amount_pence,
                "status": attempt.status,
                "started_at": _when(attempt.created_at),
                "finished_at": _when(attempt.finished_at),
            }
            for attempt in preorder.charge_attempts.all()
        ],
        "refunds": [
            {
                "amount_pence": refund.amount_pence,
                "status": refund.get_status_display(),
                "reason": refund.reason,
                "requested_at": _when(refund.created_at),
                "finished_at": _when(refund.finished_at),
            }
            for refund in preorder.refunds.all()
        ],
        "ticket": _ticket(ticket) if ticket else None,
    }


def _ticket(ticket) -> dict:
    live = [check_in for check_in in ticket.check_ins.all() if check_in.undone_at is None]
    return {
        "code": ticket.code,
        "issued_at": _when(ticket.assigned_at),
        "checked_in_at": _when(live[0].checked_in_at) if live else None,
    }


def _log_entry(entry: PreOrderLogEntry) -> dict:
    return {
        "at": _when(entry.created_at),
        "by": entry.get_source_display(),
        "action": entry.action,
        "from": entry.from_status or None,
        "to": entry.to_status or None,
        # Staff and payment-provider notes are internal working notes (and may quote the
        # provider's technical codes); the member's own changes are theirs to read.
        "note": entry.note if entry.source == PreOrderLogEntry.Source.MEMBER else None,
    }


def _email(email: OutboundEmail) -> dict:
    return {
        "to": email.to_email,
        "subject": email.subject,
        "kind": email.template,
        "status": email.get_status_display(),
        "created_at": _when(email.created_at),
        "sent_at": _when(email.sent_at),
        "body": email.body_text,
    }
