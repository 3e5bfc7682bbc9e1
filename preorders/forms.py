from django import forms

CARD_CHOICE_REQUIRED = "Please choose one of your saved cards or enter a new card."


class PlacePreorderForm(forms.Form):
    """Either a SetupIntent the browser confirmed (a new card) or a saved card's payment
    method id; the service checks either with Stripe."""

    setup_intent_id = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    payment_method_id = forms.CharField(max_length=255, required=False)

    def clean(self):
        data = super().clean()
        if bool(data.get("setup_intent_id")) == bool(data.get("payment_method_id")):
            raise forms.ValidationError(CARD_CHOICE_REQUIRED)
        return data


class EditPreorderForm(forms.Form):
    event = forms.TypedChoiceField(coerce=int, label="Event", widget=forms.RadioSelect)
    setup_intent_id = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    payment_method_id = forms.CharField(max_length=255, required=False)

    def __init__(self, *args, events=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = [(event.pk, event.title) for event in events]

    def clean(self):
        data = super().clean()
        if data.get("setup_intent_id") and data.get("payment_method_id"):
            raise forms.ValidationError(CARD_CHOICE_REQUIRED)
        return data
