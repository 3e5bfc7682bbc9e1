from django import template
from django.utils.safestring import SafeString, mark_safe

from tickets.delivery import qr_svg

register = template.Library()


@register.simple_tag
def ticket_qr(code: str) -> SafeString:
    # segno writes the SVG itself; the code only appears escaped inside its <title>.
    return mark_safe(qr_svg(code))  # noqa: S308
