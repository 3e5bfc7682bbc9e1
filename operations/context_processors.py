"""The missed-run banner on every staff page (templates/operations/_banner.html)."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from members.roles import PERM_REVIEW


def staff_alerts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm(PERM_REVIEW):
        return {}
    from operations import alerts

    def overdue():
        alerts.check_from_a_page()
        return alerts.overdue_cycles()

    return {
        "overdue_runs": SimpleLazyObject(overdue),
        "beat_status": SimpleLazyObject(alerts.beat_status),
    }
