from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
)

from members.models import Member
from notifications.services import queue_email

MAX_PASTE_CHARS = 50_000
MAX_CSV_BYTES = 512 * 1024


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password = forms.CharField(
        label="Choose a password",
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not too common and not all numbers.",
    )
    password_again = forms.CharField(
        label="Type it again",
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        data = super().clean()
        password = data.get("password")
        if password and password != data.get("password_again"):
            self.add_error("password_again", "The two passwords are not the same.")
        if password:
            # The password rules are reported with every other error, in the first round.
            candidate = Member(email=self.email, full_name=data.get("full_name", ""))
            try:
                password_validation.validate_password(password, user=candidate)
            except forms.ValidationError as error:
                self.add_error("password", error.messages)
        return data


class InviteForm(forms.Form):
    emails = forms.CharField(
        label="Email addresses",
        required=False,
        max_length=MAX_PASTE_CHARS,
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "jane@example.com, sam@example.com"}
        ),
        help_text="Separate addresses with commas, spaces or new lines.",
    )
    csv_file = forms.FileField(
        label="…or a CSV file", required=False, help_text="Every cell with an @ is read."
    )

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if not upload:
            return ""
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError("That file is too big (512 KB at most).")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("Please upload a CSV saved as UTF-8.") from None

    def clean(self):
        data = super().clean()
        if not data.get("emails", "").strip() and not data.get("csv_file"):
            raise forms.ValidationError("Paste some addresses or choose a CSV file.")
        return data


class QueuedPasswordResetForm(PasswordResetForm):
    """Password-reset mail goes through the same logged, retryable queue as every other email."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        queue_email(
            to_email=to_email,
            template="password_reset",
            context=context,
            member=context.get("user"),
        )


class _RulesInFirstRound:
    """Django checks a new password's rules only once both copies match, so a member who
    mistyped the second copy learns the rules in a second round. Here the rules are checked on
    the first copy, with every other error."""

    def clean(self):
        self.validate_passwords("new_password1", "new_password2")
        self.validate_password_for_user(self.user, "new_password1")
        return forms.Form.clean(self)


class FirstRoundSetPasswordForm(_RulesInFirstRound, SetPasswordForm):
    pass


class FirstRoundPasswordChangeForm(_RulesInFirstRound, PasswordChangeForm):
    pass


class SignInForm(AuthenticationForm):
    # Django's own message says both fields "may be case-sensitive"; the email is not.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That email and password do not match an account. Please check them and try "
            "again, or reset your password."
        ),
    }
