"""Forms of the delivery pages: the portfolio filter, a new engagement, checkpoint actions and gate decisions.

Choices that depend on the chosen playbook (shapes, methodology options, engagement types) or on the
chosen client (its stakeholders) are built from the objects the view resolved, so the same form renders
the htmx refresh, the validation errors and the successful post.
"""

from django import forms
from django.utils import timezone
from django.utils.choices import BaseChoiceIterator
from django.utils.html import format_html, format_html_join

from accounts.models import Membership

from .models import (
    ClientAccount,
    EngagementMember,
    EngagementStatus,
    EngagementType,
    Release,
    ReleaseStatus,
    Stakeholder,
    TeamRole,
)


class DescribedErrorsMixin:
    """Point each invalid field's aria-describedby at its error list (and its help text, if any)."""

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                auto_id = self[name].auto_id
                ids = [f"{auto_id}_errors"] + ([f"{auto_id}_helptext"] if self.fields[name].help_text else [])
                self.fields[name].widget.attrs["aria-describedby"] = " ".join(ids)


class MembershipChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        user = obj.user
        name = user.get_full_name()
        return f"{name} ({user.email})" if name else user.email


class PlaybookChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        owner = "library" if obj.is_library else "your copy"
        return f"{obj.name} ({owner}, v{obj.latest_number})"


class PlainSelect(forms.Select):
    """A <select> of plain choices (no groups) built in Python: the HTML of Django's select template without
    rendering one template per option, for filters with a long list of options."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen, found = self.format_value(value), False
        options = []
        for option_value, label in self.choices:
            option_value = "" if option_value is None else str(option_value)
            selected = not found and option_value in chosen
            found = found or selected
            options.append((option_value, " selected" if selected else "", label))
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            name,
            _attrs_html(self.build_attrs(self.attrs, attrs)),
            format_html_join("", '\n  <option value="{}"{}>{}</option>', options),
        )


def _attrs_html(attrs: dict) -> str:
    """Attributes as django/forms/widgets/attrs.html writes them: in order, True as a bare name, False left out."""
    parts = []
    for key, value in attrs.items():
        if value is True:
            parts.append((format_html(" {}", key),))
        elif value is not False:
            parts.append((format_html(' {}="{}"', key, value),))
    return format_html_join("", "{}", parts)


class ClientOptions(BaseChoiceIterator):
    """The client filter's options: (uuid, name) rows straight from the database, with no model instances.
    Read when the <select> renders (a BaseChoiceIterator stays lazy), in one plain query."""

    def __init__(self, queryset, empty_label):
        self.queryset, self.empty_label = queryset, empty_label

    def __iter__(self):
        yield "", self.empty_label
        yield from self.queryset.values_list("uuid", "name")


class PortfolioFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *EngagementStatus.choices], widget=PlainSelect
    )
    client = forms.ModelChoiceField(
        label="Client",
        required=False,
        queryset=ClientAccount.objects.none(),
        to_field_name="uuid",
        empty_label="All clients",
        widget=PlainSelect,
    )

    member = forms.ChoiceField(label="Team member", required=False)
    sort = forms.CharField(required=False, widget=forms.HiddenInput)  # checked by engagements.portfolio.ordering

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["client"]
        field.queryset = ClientAccount.objects.for_org(organization).order_by("name")
        field.widget.choices = ClientOptions(field.queryset, field.empty_label)  # labels: ClientAccount.__str__
        members = Membership.objects.for_org(organization).values_list(
            "uuid", "user_id", "user__first_name", "user__last_name", "user__email"
        )
        self.member_users = {str(uuid): user_id for uuid, user_id, *_ in members}
        self.fields["member"].choices = [
            ("", "Anyone"),
            *sorted(((str(u), f"{f} {la}".strip() or e) for u, _, f, la, e in members), key=lambda c: c[1].lower()),
        ]

    def filter(self, engagements):
        if not self.is_valid():
            return engagements
        if self.cleaned_data["status"]:
            engagements = engagements.filter(status=self.cleaned_data["status"])
        if self.cleaned_data["client"]:
            engagements = engagements.filter(client=self.cleaned_data["client"])
        if self.cleaned_data["member"]:
            user_id = self.member_users[self.cleaned_data["member"]]
            # a subquery rather than a join: a person with two roles on an engagement lists it once
            on_team = EngagementMember.objects.filter(user_id=user_id).values("engagement_id")
            engagements = engagements.filter(pk__in=on_team)
        return engagements


TEAM_FIELDS = [
    ("architect", TeamRole.ARCHITECT),
    ("engineer", TeamRole.ENGINEER),
    ("sme", TeamRole.SME),
    ("specialist", TeamRole.SPECIALIST),
]


class EngagementForm(DescribedErrorsMixin, forms.Form):
    """A new engagement. `playbook` and `client` are what the view resolved from the submitted data."""

    client = forms.ModelChoiceField(
        label="Client", queryset=ClientAccount.objects.none(), to_field_name="uuid", empty_label="Choose a client…"
    )
    playbook = PlaybookChoiceField(
        label="Playbook",
        queryset=None,
        to_field_name="uuid",
        empty_label="Choose a playbook…",
        help_text="The engagement follows the playbook's latest version; later edits never change it.",
    )
    name = forms.CharField(label="Engagement name", max_length=200)
    shape = forms.ChoiceField(label="Shape", required=False, choices=[])
    engagement_type = forms.ChoiceField(label="Engagement type", choices=EngagementType.choices)
    methodology_option = forms.ChoiceField(label="Methodology option", required=False, choices=[])
    start_date = forms.DateField(label="Start date", widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    target_date = forms.DateField(
        label="Target date", required=False, widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    )

    def __init__(self, *args, organization, playbooks, spec=None, client=None, refresh_url="", **kwargs):
        kwargs.setdefault("initial", {}).setdefault("start_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["client"].queryset = ClientAccount.objects.for_org(organization).order_by("name")
        self.fields["playbook"].queryset = playbooks
        members = Membership.objects.for_org(organization).select_related("user").order_by("user__email")
        for name, role in TEAM_FIELDS:
            self.fields[name] = MembershipChoiceField(
                label=role.label, required=False, queryset=members, to_field_name="uuid", empty_label="Nobody"
            )
        self._playbook_choices(spec)
        if refresh_url:
            # Changing the playbook (or the client) re-renders the fields that depend on it.
            for name, target in (("playbook", "#playbook-fields"), ("client", "#stakeholder-fields")):
                self.fields[name].widget.attrs.update(
                    {
                        "hx-get": refresh_url,
                        "hx-trigger": "change",
                        "hx-target": target,
                        "hx-swap": "outerHTML",
                        "hx-include": "closest form",
                        "hx-params": "not csrfmiddlewaretoken",
                        "aria-controls": target[1:],
                    }
                )
        self.stakeholders = []
        if client is not None:
            self.stakeholders = list(Stakeholder.objects.for_org(organization).filter(client=client).order_by("name"))
        for s in self.stakeholders:
            self.fields[f"sh_{s.uuid.hex}"] = forms.BooleanField(label=s.name, required=False)
            self.fields[f"sh_{s.uuid.hex}_role"] = forms.CharField(
                label=f"Role of {s.name}",
                required=False,
                max_length=120,
                widget=forms.TextInput(attrs={"placeholder": "e.g. Approver, Champion"}),
            )

    def _playbook_choices(self, spec) -> None:
        shapes = [(s.key, s.name) for s in spec.engagement_shapes] if spec else []
        methods = [(m.key, m.option) for m in spec.methodology_options] if spec else []
        types = [(t.key, t.name) for t in spec.engagement_types] if spec and spec.engagement_types else None
        self.fields["shape"].choices = [("", "Choose a shape…"), *shapes]
        self.fields["shape"].required = bool(shapes)
        self.fields["methodology_option"].choices = [("", "Not chosen yet"), *methods]
        if types:
            self.fields["engagement_type"].choices = types
        self.has_shapes, self.has_methods = bool(shapes), bool(methods)

    @property
    def team_fields(self):
        return [self[name] for name, _ in TEAM_FIELDS]

    @property
    def stakeholder_rows(self):
        return [(s, self[f"sh_{s.uuid.hex}"], self[f"sh_{s.uuid.hex}_role"]) for s in self.stakeholders]

    def clean(self):
        data = super().clean()
        start, target = data.get("start_date"), data.get("target_date")
        if start and target and target < start:
            self.add_error("target_date", "The target date is before the start date.")
        return data

    def team(self) -> list[tuple]:
        return [(self.cleaned_data[name].user, role) for name, role in TEAM_FIELDS if self.cleaned_data.get(name)]

    def chosen_stakeholders(self) -> list[tuple]:
        return [
            (s, self.cleaned_data.get(f"sh_{s.uuid.hex}_role", "").strip())
            for s in self.stakeholders
            if self.cleaned_data.get(f"sh_{s.uuid.hex}")
        ]


class CheckpointForm(forms.Form):
    action = forms.ChoiceField(choices=[("check", "Check"), ("waive", "Waive"), ("reopen", "Reopen")])
    reason = forms.CharField(label="Reason for the waiver", required=False, max_length=2000)


class GateDecisionForm(DescribedErrorsMixin, forms.Form):
    option = forms.ChoiceField(label="Decision", widget=forms.RadioSelect, choices=[])
    note = forms.CharField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why this decision, for the decision history.",
    )
    release = forms.ModelChoiceField(
        label="Release approved by this decision",
        required=False,
        queryset=Release.objects.none(),
        to_field_name="uuid",
        empty_label="No release",
    )

    def __init__(self, *args, options, gate, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = [(o.key, o.label) for o in options]
        if gate.per_release or gate.recurring:
            self.fields["release"].queryset = (
                Release.objects.for_org(gate.organization)
                .filter(engagement_id=gate.engagement_id, status=ReleaseStatus.PLANNED)
                .order_by("created_at")
            )
        else:
            del self.fields["release"]
