from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from events.selectors import current_cycle


def presale_cycle(request: HttpRequest) -> dict:
    # Lazy: pages that never show the cycle pay no query for it.
    return {
        "presale_cycle": SimpleLazyObject(current_cycle),
        "email_provider": settings.EMAIL_PROVIDER,
        "contact_email": settings.CLUB_CONTACT_EMAIL,
    }
