from django import template

from members.roles import PERM_MANAGE
from tickets import checkin

register = template.Library()


@register.inclusion_tag("tickets/_attendance.html", takes_context=True)
def event_attendance(context: template.Context, event) -> dict:
    """Who came to an event, for the staff event page; managers may undo a check-in."""
    user = context["request"].user
    return {
        "event": event,
        "count": checkin.door_count(event.pk),
        "check_ins": checkin.attendance(event.pk),
        "can_undo": user.has_perm(PERM_MANAGE),
    }
