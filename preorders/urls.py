from django.urls import path

from preorders import views

app_name = "preorders"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("events/<row_id:event_id>/pre-order/", views.place, name="place"),
    path("pre-orders/<row_id:preorder_id>/", views.detail, name="detail"),
    path("pre-orders/<row_id:preorder_id>/edit/", views.edit, name="edit"),
    path("pre-orders/<row_id:preorder_id>/cancel/", views.cancel, name="cancel"),
    path("pre-orders/<row_id:preorder_id>/calendar.ics", views.calendar, name="calendar"),
]
