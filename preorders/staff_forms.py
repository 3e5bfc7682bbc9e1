from django import forms

from events.models import Event
from preorders.selectors import STAFF_SORTS
from preorders.states import Status

# Explicit selections come from one page of checkboxes; "all matching" is resolved server-side.
MAX_SELECTED = 1_000


class PreorderFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "All statuses"), *Status.choices], label="Status"
    )
    q = forms.CharField(required=False, max_length=100, label="Name or email")
    sort = forms.ChoiceField(
        required=False,
        choices=[("oldest", "Oldest first"), ("newest", "Newest first")],
        label="Order",
    )

    def filters(self) -> dict:
        if not self.is_valid():
            return {"status": "", "query": "", "sort": "oldest"}
        data = self.cleaned_data
        return {
            "status": data.get("status") or "",
            "query": data.get("q") or "",
            "sort": data.get("sort") if data.get("sort") in STAFF_SORTS else "oldest",
        }


class DecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    all_matching = forms.BooleanField(required=False)
    confirmed = forms.BooleanField(required=False)
    note = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any whole number is a candidate; the service only touches this event's pre-orders.
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(value, value) for value in raw[:MAX_SELECTED]]

    def clean_ids(self):
        ids = self.cleaned_data["ids"]
        if any(not 0 < pk < 2**63 for pk in ids):
            raise forms.ValidationError("Those pre-orders do not exist.")
        if len(ids) > MAX_SELECTED:
            raise forms.ValidationError(f"Select at most {MAX_SELECTED} pre-orders at once.")
        return ids

    def clean(self):
        data = super().clean()
        if not data.get("all_matching") and not data.get("ids"):
            raise forms.ValidationError("Select at least one pre-order.")
        return data


class AutoFulfilForm(forms.Form):
    mode = forms.ChoiceField(choices=Event.FulfilmentMode.choices, label="How")
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**63 - 1,
        label="Ballot seed (optional)",
        help_text="Leave empty for a fresh random seed; enter a recorded seed to re-run a draw.",
    )
    confirmed = forms.BooleanField(required=False)
