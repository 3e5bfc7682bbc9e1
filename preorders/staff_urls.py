from django.urls import path
from django.views.generic import RedirectView

from events import staff_views as event_views
from preorders import staff_preorder_views as preorder_views
from preorders import staff_views as views

app_name = "staff"
urlpatterns = [
    path("staff/", RedirectView.as_view(pattern_name="staff:events"), name="home"),
    path("staff/events/", views.events, name="events"),
    path("staff/events/new/", event_views.event_new, name="event_new"),
    path("staff/events/<row_id:event_id>/", views.event_detail, name="event"),
    path("staff/events/<row_id:event_id>/edit/", event_views.event_edit, name="event_edit"),
    path("staff/events/<row_id:event_id>/delete/", event_views.event_delete, name="event_delete"),
    path("staff/cycles/<row_id:cycle_id>/copy/", event_views.copy_week, name="copy_week"),
    path("staff/ballots/<row_id:entry_id>/", event_views.verify_ballot, name="verify_ballot"),
    path("staff/events/<row_id:event_id>/decide/", views.decide, name="decide"),
    path("staff/events/<row_id:event_id>/auto-fulfil/", views.auto_fulfil, name="auto_fulfil"),
    path("staff/events/<row_id:event_id>/pre-orders.csv", views.export_csv, name="export_csv"),
    path("staff/pre-orders/<row_id:preorder_id>/", preorder_views.preorder_detail, name="preorder"),
    path(
        "staff/pre-orders/<row_id:preorder_id>/decide/",
        preorder_views.decide_one,
        name="decide_one",
    ),
    path("staff/cycles/<row_id:cycle_id>/close-early/", views.close_early, name="close_early"),
    path(
        "staff/pre-orders/<row_id:preorder_id>/resend-ticket/",
        preorder_views.resend_ticket,
        name="resend_ticket",
    ),
    path(
        "staff/events/<row_id:event_id>/resend-failed-tickets/",
        views.resend_failed_tickets,
        name="resend_failed_tickets",
    ),
]
