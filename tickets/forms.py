from django import forms

from tickets.services import MAX_GENERATE, MAX_IMPORT_CODES

MAX_UPLOAD_BYTES = 1024 * 1024
# Enough for 10,000 codes of 64 characters; the request-size cap (1 MB) stops anything far bigger.
MAX_PASTE_CHARS = MAX_IMPORT_CODES * 66


class TicketImportForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
        help_text=(
            "One code per line, or a CSV whose first column is the code (a header row is fine). "
            "Saved as UTF-8, 1 MB at most."
        ),
    )
    codes = forms.CharField(
        label="…or paste codes",
        required=False,
        strip=False,
        max_length=MAX_PASTE_CHARS,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "autocomplete": "off"}),
        help_text=f"One per line, up to {MAX_IMPORT_CODES:,} at a time.",
    )

    def clean_csv_file(self) -> str:
        upload = self.cleaned_data.get("csv_file")
        if not upload:
            return ""
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                "That file is too big: 1 MB at most. Split it and import each part."
            )
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("Please upload a CSV saved as UTF-8.") from None

    def clean(self) -> dict:
        data = super().clean()
        has_file = bool(data.get("csv_file"))
        has_paste = bool(data.get("codes", "").strip())
        if self.errors:
            return data
        if has_file and has_paste:
            # Mixing them would make the reported line numbers ambiguous.
            raise forms.ValidationError("Choose a file or paste codes, not both.")
        if not has_file and not has_paste:
            raise forms.ValidationError("Choose a CSV file or paste some codes.")
        return data

    @property
    def text(self) -> str:
        return self.cleaned_data.get("csv_file") or self.cleaned_data.get("codes", "")


class GenerateTicketsForm(forms.Form):
    count = forms.IntegerField(
        label="How many codes",
        min_value=1,
        max_value=MAX_GENERATE,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=f"1 to {MAX_GENERATE:,} random codes like HC-7K3M-Q9TX-2B4R.",
        error_messages={
            "required": f"Enter how many codes to generate: 1 to {MAX_GENERATE:,}.",
            "invalid": f"Enter a whole number from 1 to {MAX_GENERATE:,}.",
            "min_value": "Generate at least 1 code.",
            "max_value": f"Generate at most {MAX_GENERATE:,} codes at a time.",
        },
    )
