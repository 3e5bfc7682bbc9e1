from django.urls import path

from notifications import views

app_name = "notifications"
urlpatterns = [
    path("staff/emails/", views.email_log, name="email_log"),
    path("staff/outbox/", views.outbox, name="outbox"),
    path("staff/outbox/<row_id:message_id>/", views.outbox_message, name="outbox_message"),
]
