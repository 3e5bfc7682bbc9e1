"""The staff form for an event: money typed in pounds and kept in pence, times typed in London
time. The rules themselves are in events.planning; this only turns input into EventDetails."""

import datetime as dt
from decimal import Decimal

from django import forms
from django.conf import settings

from events import london
from events.models import Event, PresaleCycle
from events.planning import EventDetails

DISCOUNT_CHOICES = [
    ("default", "Club default"),
    ("percent", "A percentage for this event"),
    ("fixed", "A fixed amount off"),
]


def _pence(pounds: Decimal | None) -> int | None:
    return None if pounds is None else int((pounds * 100).to_integral_value())


def _pounds(pence: int | None) -> Decimal | None:
    return None if pence is None else (Decimal(pence) / 100).quantize(Decimal("0.01"))


class LondonDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value):
        if isinstance(value, dt.datetime):
            return london.to_london(value).strftime("%Y-%m-%dT%H:%M")
        return value


def cycle_label(cycle: PresaleCycle) -> str:
    return f"Week of {cycle.week_start:%-d %B %Y} · charge run {london.when(cycle.charge_at)}"


class CycleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PresaleCycle) -> str:
        return cycle_label(obj)


class EventForm(forms.Form):
    cycle = CycleChoiceField(queryset=PresaleCycle.objects.none(), label="Presale week")
    title = forms.CharField(max_length=200)
    starts_at = forms.DateTimeField(label="Starts (UK time)", widget=LondonDateTimeInput())
    venue = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    public_price = forms.DecimalField(
        label="Public price (£)",
        min_value=Decimal("0"),
        max_value=Decimal("100000"),
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    discount_kind = forms.ChoiceField(
        label="Member discount", choices=DISCOUNT_CHOICES, widget=forms.RadioSelect
    )
    discount_percent = forms.IntegerField(
        label="Discount (%)", required=False, min_value=0, max_value=100
    )
    discount_fixed = forms.DecimalField(
        label="Discount (£ off)",
        required=False,
        min_value=Decimal("0"),
        max_value=Decimal("100000"),
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    fulfilment_mode = forms.ChoiceField(
        label="How places are given when auto-fulfilling", choices=Event.FulfilmentMode.choices
    )
    public_sale_url = forms.URLField(
        label="Public sale link",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Members who get no ticket are pointed here.",
    )
    public_sale_at = forms.DateTimeField(
        label="Public sale opens (UK time)", required=False, widget=LondonDateTimeInput()
    )
    confirm_price_change = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, cycles, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cycle"].queryset = cycles
        self.fields["discount_kind"].choices = [
            ("default", f"Club default ({settings.PRESALE_DEFAULT_DISCOUNT_PERCENT}%)"),
            *DISCOUNT_CHOICES[1:],
        ]

    @staticmethod
    def initial_from(event: Event) -> dict:
        if event.discount_percent is not None:
            kind = "percent"
        elif event.discount_fixed_pence is not None:
            kind = "fixed"
        else:
            kind = "default"
        return {
            "cycle": event.cycle_id,
            "title": event.title,
            "starts_at": event.starts_at,
            "venue": event.venue,
            "description": event.description,
            "public_price": _pounds(event.public_price_pence),
            "discount_kind": kind,
            "discount_percent": event.discount_percent,
            "discount_fixed": _pounds(event.discount_fixed_pence),
            "fulfilment_mode": event.fulfilment_mode,
            "public_sale_url": event.public_sale_url,
            "public_sale_at": event.public_sale_at,
        }

    def clean(self) -> dict:
        data = super().clean()
        kind = data.get("discount_kind")
        if kind == "percent" and data.get("discount_percent") is None:
            self.add_error("discount_percent", "Enter the percentage, or choose the club default.")
        if kind == "fixed" and data.get("discount_fixed") is None:
            self.add_error("discount_fixed", "Enter the amount off, or choose the club default.")
        return data

    def details(self) -> EventDetails:
        data = self.cleaned_data
        kind = data["discount_kind"]
        return EventDetails(
            cycle=data["cycle"],
            title=data["title"].strip(),
            starts_at=data["starts_at"],
            venue=data["venue"].strip(),
            description=data["description"].strip(),
            public_price_pence=_pence(data["public_price"]),
            discount_percent=data["discount_percent"] if kind == "percent" else None,
            discount_fixed_pence=_pence(data["discount_fixed"]) if kind == "fixed" else None,
            fulfilment_mode=data["fulfilment_mode"],
            public_sale_url=data["public_sale_url"],
            public_sale_at=data["public_sale_at"],
        )

    def add_rule_errors(self, errors: dict[str, list[str]]) -> None:
        to_form = {
            "public_price_pence": "public_price",
            "discount_fixed_pence": "discount_fixed",
        }
        for name, messages in errors.items():
            for message in messages:
                self.add_error(to_form.get(name, name) or None, message)
