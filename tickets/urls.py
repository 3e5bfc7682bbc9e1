from django.urls import path

from tickets import views

app_name = "tickets"
urlpatterns = [
    path("staff/events/<row_id:event_id>/pool/", views.pool, name="pool"),
    path("staff/events/<row_id:event_id>/pool/import/", views.pool_import, name="pool_import"),
    path(
        "staff/events/<row_id:event_id>/pool/generate/", views.pool_generate, name="pool_generate"
    ),
    path("staff/tickets/<row_id:ticket_id>/void/", views.ticket_void, name="ticket_void"),
]
