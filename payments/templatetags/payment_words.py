"""Stripe's failure codes in plain words, for staff pages."""

from django import template

from payments.run_summary import in_words

register = template.Library()


@register.filter
def failure_words(code: str) -> str:
    return in_words(code or "")
