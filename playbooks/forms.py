from django import forms


class PlaybookEditForm(forms.Form):
    text = forms.CharField(
        label="Playbook YAML",
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 32, "spellcheck": "false", "autocapitalize": "off", "autocomplete": "off", "class": "code"}
        ),
        help_text="Saving validates the whole file and stores it as a new version; running engagements keep theirs.",
    )
