"""A staff log page's list: filtered by a status from the query string, 50 rows a page."""

from django.core.paginator import Paginator
from django.db.models import QuerySet, TextChoices
from django.http import HttpRequest

PER_PAGE = 50


def status_filtered_page(request: HttpRequest, rows: QuerySet, statuses: type[TextChoices]) -> dict:
    """The template context of a status-filtered list: page, status, statuses."""
    status = request.GET.get("status", "")
    if status in statuses.values:
        rows = rows.filter(status=status)
    return {
        "page": Paginator(rows, PER_PAGE).get_page(request.GET.get("page")),
        "status": status,
        "statuses": statuses.choices,
    }
