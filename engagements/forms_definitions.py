"""Forms of definition alignment: the draft's terms and stages, publishing, deliverables and the portal sign-off.

They validate input; engagements.definitions and engagements.deliverables decide.
"""

import re
from typing import cast

from django import forms
from django.utils.text import slugify

from deliverables.models import ArtifactKind

from .models import DefinitionTerm, DefinitionVersion, StageDefinition, Stakeholder

YES, NO = "yes", "no"


def _rows(n: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": n})


def split_values(text: str) -> list[str]:
    """CRM values typed one per line (or separated by commas), in order, without blanks or repeats."""
    values = []
    for value in re.split(r"[\n,]", text or ""):
        value = value.strip()
        if value and value not in values:
            values.append(value)
    return values


class DraftItemForm(forms.ModelForm):
    """A term or a stage of the draft. Binds the row to its engagement so the key can be checked for uniqueness."""

    label_field = ""
    refs_field = ""

    def __init__(self, *args, engagement, ref_choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.engagement = engagement
        self.instance.engagement = engagement
        self.instance.organization_id = engagement.organization_id
        self.fields["key"].required = False
        # A new item goes last unless told otherwise; an existing one keeps a position.
        self.fields["order"].required = self.instance.pk is not None
        refs = cast(forms.MultipleChoiceField, self.fields[self.refs_field])
        # Keep references the list no longer offers (a deleted stage, say) visible so they can be unticked.
        current = [(k, f"{k} (missing)") for k in (self.instance.pk and getattr(self.instance, self.refs_field)) or []]
        known = dict(ref_choices)
        refs.choices = list(ref_choices) + [(k, label) for k, label in current if k not in known]
        for name in (self.label_field, "key"):
            self.fields[name].widget.attrs.setdefault("autocomplete", "off")

    def save(self, commit=True):
        item = super().save(commit=False)
        if self.cleaned_data.get("order") is None:
            item.order = None  # the service puts it last
        if commit:
            item.save()
        return item

    def clean_key(self):
        key = self.cleaned_data.get("key") or slugify(self.data.get(self.add_prefix(self.label_field), ""))[:80]
        if not key:
            return key  # the label's own "required" error says what is missing
        model = type(self.instance)
        taken = model.objects.filter(engagement=self.engagement, key=key).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"Another {model._meta.verbose_name.split()[-1]} already uses the key “{key}”.")
        return key


class TermForm(DraftItemForm):
    label_field = "term"
    refs_field = "stage_keys"
    stage_keys = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Stages this term refers to"
    )

    class Meta:
        model = DefinitionTerm
        fields = ["term", "key", "definition", "notes", "order", "stage_keys"]
        widgets = {"definition": _rows(3), "notes": _rows(2)}
        labels = {"definition": "Our definition", "order": "Position"}
        help_texts = {"key": "Short identifier used in CRM audits; made from the term when left blank."}


class StageForm(DraftItemForm):
    label_field = "name"
    refs_field = "term_keys"
    crm_values = forms.CharField(
        required=False,
        widget=_rows(2),
        label="CRM values",
        help_text="Picklist values or stage ids, one per line.",
    )
    term_keys = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Terms this stage refers to"
    )

    class Meta:
        model = StageDefinition
        fields = [
            "name",
            "key",
            "domain",
            "order",
            "golden",
            "entry_criteria",
            "exit_criteria",
            "transition_owner",
            "crm_object",
            "crm_field",
            "crm_values",
            "term_keys",
        ]
        widgets = {"entry_criteria": _rows(2), "exit_criteria": _rows(2)}
        labels = {"golden": "Golden stage (every record passes through it)", "order": "Position in its domain"}
        help_texts = {
            "key": "Short identifier used in CRM audits; made from the name when left blank.",
            "golden": "",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["crm_values"] = "\n".join(str(v) for v in self.instance.crm_values or [])

    def clean_crm_values(self):
        return split_values(self.cleaned_data.get("crm_values", ""))


class PublishForm(forms.Form):
    signers = forms.ModelMultipleChoiceField(
        queryset=Stakeholder.objects.none(),
        to_field_name="uuid",
        widget=forms.CheckboxSelectMultiple,
        label="Who must sign this version",
        error_messages={"required": "Choose at least one stakeholder who must sign this version."},
    )

    def __init__(self, *args, engagement, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["signers"].queryset = Stakeholder.objects.for_org(engagement.organization).filter(
            client_id=engagement.client_id, portal_enabled=True
        )


class ArtifactRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=ArtifactKind.choices, label="Deliverable")
    version = forms.ModelChoiceField(
        queryset=DefinitionVersion.objects.none(),
        to_field_name="uuid",
        label="From version",
        error_messages={"invalid_choice": "Choose a published version of this engagement's definitions."},
    )

    def __init__(self, *args, engagement, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = (
            DefinitionVersion.objects.for_org(engagement.organization).filter(engagement=engagement).defer("content")
        )


class SignoffForm(forms.Form):
    """One Yes/No answer per term and stage of a version; a No needs a comment.

    Field names are the version's item keys ("term:mql", "stage:lead-sal") and "comment:<item key>", so the
    posted answers are exactly the decisions definitions.sign() takes.
    """

    def __init__(self, *args, version: DefinitionVersion, **kwargs):
        super().__init__(*args, **kwargs)
        self.item_keys = [key for key, _ in version.items]
        for key, label in version.items:
            self.fields[key] = forms.ChoiceField(
                choices=[(YES, "Yes"), (NO, "No")],
                widget=forms.RadioSelect,
                label=label,
                error_messages={"required": "Answer Yes or No."},
            )
            self.fields[f"comment:{key}"] = forms.CharField(
                required=False, max_length=2000, widget=_rows(3), label="What should change?"
            )

    def clean(self):
        cleaned = super().clean()
        for key in self.item_keys:
            if cleaned.get(key) == NO and not (cleaned.get(f"comment:{key}") or "").strip():
                self.add_error(f"comment:{key}", "Say what should change, so your consultant can fix it.")
        return cleaned

    @property
    def decisions(self) -> dict[str, str]:
        return {key: self.cleaned_data[key] for key in self.item_keys}

    @property
    def comments(self) -> dict[str, str]:
        # Only a No carries a comment: the box is hidden (and ignored) once the answer is Yes.
        return {
            key: self.cleaned_data[f"comment:{key}"].strip() for key in self.item_keys if self.cleaned_data[key] == NO
        }

    @property
    def unanswered(self) -> int:
        return sum(1 for key in self.item_keys if self[key].errors)
