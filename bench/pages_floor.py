"""The floor for the staff event page in bench/pages.py: a tuned bare page that shows the same
rows (the same page of pre-orders, in the same order, with member name and email, date, status,
payment, card and price), the same per-status counts, pool figures, match count and page
number, fetched with the fewest and leanest queries and rendered with a minimal template.

It goes through the same Django stack as the real page (every middleware, the session, the same
staff permission check) and is mounted only by the benchmark, through this module's URLconf
(the project's own URLs, plus this page at the end). No production URL serves it.
"""

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path, reverse

from config.urls import urlpatterns as project_urlpatterns
from events.london import short_datetime
from events.pricing import format_pence
from members.permissions import reviewer_required
from preorders.models import PreOrder
from preorders.selectors import STAFF_SORTS, staff_event_preorders
from preorders.staff_forms import PreorderFilterForm
from preorders.staff_views import PAGE_SIZE
from preorders.states import HOLDING_STATUSES, Status
from tickets.models import Ticket

ROW_FIELDS = (
    "pk",
    "member__full_name",
    "member__email",
    "created_at",
    "status",
    "failure_reason",
    "card_brand",
    "card_last4",
    "amount_pence",
)

TEMPLATE = engines["django"].from_string(
    """<!doctype html><html lang="en-GB"><head><meta charset="utf-8"><title>Pre-orders</title></head>
<body><main><p>{% for label, n in stats %}<b>{{ n }}</b> {{ label }} · {% endfor %}</p>
<p>{{ total }} pre-order{{ total|pluralize }} match this filter.</p>
<table><tbody>{% for r in rows %}<tr><td><input type="checkbox" name="ids" value="{{ r.0 }}"></td>\
<td><a href="{{ link }}{{ r.0 }}/">{{ r.1 }}</a><br>{{ r.2 }}</td><td>{{ r.3 }}</td><td>{{ r.4 }}</td>\
<td>{{ r.5 }}</td><td>{{ r.6 }}</td><td>{{ r.7 }}</td></tr>{% empty %}<tr><td>No pre-orders match.</td></tr>\
{% endfor %}</tbody></table><p>Page {{ number }} of {{ pages }}</p></main></body></html>"""
)


def _row(values: tuple) -> tuple:
    pk, name, email, created_at, status, failure_reason, brand, last4, amount = values
    payment = PreOrder(status=status, failure_reason=failure_reason).payment_label
    label = Status(status).label
    return (pk, name, email, short_datetime(created_at), label, payment,
            f"{brand.title()} •••• {last4}", format_pence(amount))  # fmt: skip


@reviewer_required
def staff_event_floor(request: HttpRequest, event_id: int) -> HttpResponse:
    filters = PreorderFilterForm(request.GET or None).filters()
    status, query = filters["status"], filters["query"]
    order = STAFF_SORTS[filters["sort"]]
    counts = dict(
        PreOrder.objects.filter(event_id=event_id)
        .order_by()
        .values_list("status")
        .annotate(n=Count("*"))
    )
    supply = Ticket.objects.filter(event_id=event_id, voided_at__isnull=True).count()
    # The real page's own filter (status, name or email) and order.
    matching = staff_event_preorders(event_id, **filters).values("pk")
    unsearched = counts.get(status, 0) if status else sum(counts.values())
    total = matching.count() if query else unsearched
    pages = max(1, -(-total // PAGE_SIZE))
    try:
        number = int(request.GET.get("page", 1))
    except ValueError:
        number = 1
    number = number if 1 <= number <= pages else pages  # as Paginator.get_page does
    start = (number - 1) * PAGE_SIZE
    # One query: the page's ids from the index in its order, then only their rows and members.
    page_ids = matching[start : start + PAGE_SIZE]
    rows = PreOrder.objects.filter(pk__in=page_ids).order_by(*order).values_list(*ROW_FIELDS)
    holding = sum(n for s, n in counts.items() if s in HOLDING_STATUSES)
    stats = [
        ("tickets in pool", supply),
        ("approved or paid", holding),
        ("places left", supply - holding),
        ("pending", counts.get(Status.PENDING, 0)),
        ("denied by staff", counts.get(Status.DENIED, 0)),
        ("not allocated at the run", counts.get(Status.NOT_ALLOCATED, 0)),
    ]
    context = {
        "stats": stats,
        "total": total,
        "rows": [_row(values) for values in rows],
        "link": reverse("staff:preorder", args=[1])[: -len("1/")],
        "number": number,
        "pages": pages,
    }
    return HttpResponse(TEMPLATE.render(context))


urlpatterns = [
    *project_urlpatterns,
    path("staff/bench-floor/events/<row_id:event_id>/", staff_event_floor),
]
