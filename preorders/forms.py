from django import forms


class PlacePreorderForm(forms.Form):
    setup_intent_id = forms.CharField(
        max_length=255,
        widget=forms.HiddenInput,
        error_messages={"required": "Please enter your card details first."},
    )


class EditPreorderForm(forms.Form):
    event = forms.TypedChoiceField(coerce=int, label="Event", widget=forms.RadioSelect)
    setup_intent_id = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, events=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = [(event.pk, event.title) for event in events]
