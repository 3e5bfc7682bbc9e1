from django.urls import path

from tickets import door_views, views

app_name = "tickets"
urlpatterns = [
    path("staff/events/<row_id:event_id>/pool/", views.pool, name="pool"),
    path("staff/events/<row_id:event_id>/pool/import/", views.pool_import, name="pool_import"),
    path(
        "staff/events/<row_id:event_id>/pool/generate/", views.pool_generate, name="pool_generate"
    ),
    path("staff/tickets/<row_id:ticket_id>/void/", views.ticket_void, name="ticket_void"),
    path("staff/door/", door_views.door_events, name="door_events"),
    path("staff/door/<row_id:event_id>/", door_views.door, name="door"),
    path("staff/door/<row_id:event_id>/scan/", door_views.door_scan, name="door_scan"),
    path("staff/door/<row_id:event_id>/count/", door_views.door_count, name="door_count"),
    path(
        "staff/check-ins/<row_id:check_in_id>/undo/",
        door_views.check_in_undo,
        name="check_in_undo",
    ),
]
