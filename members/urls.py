from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from members import account_views, staff_views, views
from members.forms import FirstRoundSetPasswordForm, QueuedPasswordResetForm

app_name = "members"
urlpatterns = [
    path("invite/<str:token>/", views.accept_invitation, name="accept"),
    path(
        "login/",
        views.ThrottledLoginView.as_view(
            template_name="members/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        views.ThrottledPasswordResetView.as_view(
            template_name="members/password_reset.html",
            form_class=QueuedPasswordResetForm,
            success_url=reverse_lazy("members:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="members/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="members/password_reset_confirm.html",
            form_class=FirstRoundSetPasswordForm,
            success_url=reverse_lazy("members:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="members/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("staff/invitations/", views.invitations, name="invitations"),
    path(
        "staff/invitations/<row_id:invitation_id>/revoke/",
        staff_views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "staff/invitations/<row_id:invitation_id>/resend/",
        staff_views.invitation_resend,
        name="invitation_resend",
    ),
    path("staff/members/", staff_views.members, name="staff_members"),
    path("staff/members/<row_id:member_id>/", staff_views.member_detail, name="staff_member"),
    path("staff/members/<row_id:member_id>/role/", staff_views.member_role, name="member_role"),
    path(
        "staff/members/<row_id:member_id>/deactivate/",
        staff_views.member_deactivate,
        name="member_deactivate",
    ),
    path(
        "staff/members/<row_id:member_id>/reactivate/",
        staff_views.member_reactivate,
        name="member_reactivate",
    ),
    path("account/", account_views.account_page, name="account"),
    path("account/details/", account_views.details, name="account_details"),
    path("account/email/<str:token>/", account_views.confirm_email, name="confirm_email"),
    path("account/password/", account_views.password, name="account_password"),
    path("account/sessions/", account_views.sign_out_others, name="sign_out_others"),
    path("account/cards/default/", account_views.default_card, name="default_card"),
    path("account/cards/remove/", account_views.remove_card, name="remove_card"),
    path("account/my-data.json", account_views.data_export, name="data_export"),
    path("account/leave/", account_views.leave, name="leave"),
]
