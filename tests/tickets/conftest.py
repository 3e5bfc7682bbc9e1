import itertools

import pytest

_numbers = itertools.count(1)


@pytest.fixture
def issue_ticket(make_member):
    """A ticket in a member's hands: its pre-order paid (ticket sent) and the ticket assigned,
    written directly (check-in only reads them; the paying is tested elsewhere)."""
    from django.utils import timezone

    from preorders.models import PreOrder
    from preorders.states import Status
    from tickets.models import Ticket

    def issue(event, member=None, *, code: str | None = None, status=Status.TICKET_SENT) -> Ticket:
        n = next(_numbers)
        member = member or make_member(full_name=f"Guest {n}")
        preorder = PreOrder.objects.create(
            member=member,
            event=event,
            cycle=event.cycle,
            status=status,
            amount_pence=event.member_price_pence,
            stripe_customer_id=f"cus_door_{n}",
            payment_method_id=f"pm_door_{n}",
            setup_intent_id=f"seti_door_{n}",
        )
        return Ticket.objects.create(
            event=event,
            code=code or f"HC-DOOR-{n:04d}",
            preorder=preorder,
            assigned_at=timezone.now(),
        )

    return issue
