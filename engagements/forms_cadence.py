"""Forms of the weekly cadence, the refinement loop and enablement. They validate input; services decide."""

from django import forms

from .models import (
    AssumptionStatus,
    DecisionLogEntry,
    DecisionStatus,
    FeedbackItem,
    Gate,
    Meeting,
    MeetingType,
    Release,
    ReleaseStatus,
    RetentionOutcome,
    Risk,
    Stakeholder,
    WeeklyUpdate,
    WorkItem,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _rows(n: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": n})


class BoardItemForm(forms.ModelForm):
    """Binds the item to its engagement before validation, so the service gets a complete row."""

    def __init__(self, *args, engagement, **kwargs):
        super().__init__(*args, **kwargs)
        self.engagement = engagement
        self.instance.engagement = engagement
        self.instance.organization_id = engagement.organization_id
        if "title" in self.fields:
            self.fields["title"].widget.attrs.setdefault("autocomplete", "off")


# --- Work items -------------------------------------------------------------------------------------


class WorkItemQuickForm(BoardItemForm):
    """The inline add form of the in-progress and upcoming lanes; the lane sets the status."""

    class Meta:
        model = WorkItem
        fields = ["title", "owner", "due_date", "client_visible", "status"]
        widgets = {"due_date": DATE, "status": forms.HiddenInput}
        labels = {"client_visible": "Visible to the client"}


class WorkItemForm(BoardItemForm):
    class Meta:
        model = WorkItem
        fields = ["title", "status", "owner", "due_date", "detail", "tested", "client_visible"]
        widgets = {"due_date": DATE, "detail": _rows(3), "tested": _rows(2)}
        labels = {"client_visible": "Visible to the client", "tested": "What was tested"}


# --- Decisions --------------------------------------------------------------------------------------


class DecisionQuickForm(BoardItemForm):
    class Meta:
        model = DecisionLogEntry
        fields = ["title", "category", "context", "owner", "client_visible"]
        widgets = {"context": _rows(2)}
        labels = {"client_visible": "Visible to the client", "title": "Decision needed"}


class DecisionForm(BoardItemForm):
    class Meta:
        model = DecisionLogEntry
        fields = ["title", "category", "status", "context", "decision", "owner", "decided_on", "gate", "client_visible"]
        widgets = {"context": _rows(3), "decision": _rows(3), "decided_on": DATE}
        labels = {"client_visible": "Visible to the client", "gate": "Decision gate"}
        help_texts = {"decision": "What was decided. Required once the status is Decided."}

    def __init__(self, *args, engagement, **kwargs):
        super().__init__(*args, engagement=engagement, **kwargs)
        self.fields["gate"].queryset = Gate.objects.for_org(engagement.organization).filter(engagement=engagement)
        self.fields["gate"].empty_label = "No gate"

    def clean(self):
        data = super().clean()
        if data.get("status") == DecisionStatus.DECIDED and not (data.get("decision") or "").strip():
            self.add_error("decision", "Write down what was decided before marking it decided.")
        return data


# --- Risks, releases, feedback ----------------------------------------------------------------------


class RiskQuickForm(BoardItemForm):
    class Meta:
        model = Risk
        fields = ["title", "likelihood", "impact", "owner", "client_visible"]
        labels = {"client_visible": "Visible to the client", "title": "Risk"}


class RiskForm(BoardItemForm):
    class Meta:
        model = Risk
        fields = ["title", "status", "likelihood", "impact", "owner", "description", "mitigation", "client_visible"]
        widgets = {"description": _rows(3), "mitigation": _rows(3)}
        labels = {"client_visible": "Visible to the client"}


class ReleaseQuickForm(BoardItemForm):
    class Meta:
        model = Release
        fields = ["title", "status", "released_on", "client_visible"]
        widgets = {"released_on": DATE}
        labels = {"client_visible": "Visible to the client", "title": "Release"}
        help_texts = {"released_on": "Today when left empty and the release is released."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].initial = ReleaseStatus.RELEASED


class ReleaseForm(BoardItemForm):
    class Meta:
        model = Release
        fields = ["title", "status", "released_on", "description", "client_visible"]
        widgets = {"released_on": DATE, "description": _rows(3)}
        labels = {"client_visible": "Visible to the client"}


class FeedbackQuickForm(BoardItemForm):
    class Meta:
        model = FeedbackItem
        fields = ["title", "source", "detail", "client_visible"]
        widgets = {"detail": _rows(2)}
        labels = {"client_visible": "Visible to the client", "title": "Feedback"}


class FeedbackForm(BoardItemForm):
    class Meta:
        model = FeedbackItem
        fields = ["title", "source", "detail", "resolved", "client_visible"]
        widgets = {"detail": _rows(3)}
        labels = {"client_visible": "Visible to the client"}


class DecideForm(forms.Form):
    """The board's quick action on a needed decision: record what was decided."""

    decision = forms.CharField(label="What was decided", widget=_rows(2))


QUICK_FORMS = {
    "work": WorkItemQuickForm,
    "decision": DecisionQuickForm,
    "risk": RiskQuickForm,
    "release": ReleaseQuickForm,
    "feedback": FeedbackQuickForm,
}
EDIT_FORMS = {
    "work": WorkItemForm,
    "decision": DecisionForm,
    "risk": RiskForm,
    "release": ReleaseForm,
    "feedback": FeedbackForm,
}


# --- Weekly updates ---------------------------------------------------------------------------------


class WeeklyUpdateForm(forms.ModelForm):
    class Meta:
        model = WeeklyUpdate
        fields = ["what_changed", "what_was_tested", "needs_decision", "what_happens_next"]
        widgets = {f: _rows(6) for f in fields}
        labels = {
            "what_changed": "What changed",
            "what_was_tested": "What was tested",
            "needs_decision": "What needs a decision",
            "what_happens_next": "What happens next",
        }


# --- Refinement loop --------------------------------------------------------------------------------


class MeetingForm(forms.Form):
    type = forms.ChoiceField(label="Meeting", choices=MeetingType.choices)
    held_on = forms.DateField(label="Date", widget=DATE)
    attendees = forms.ModelMultipleChoiceField(
        label="Client attendees", queryset=Stakeholder.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    notes = forms.CharField(required=False, widget=_rows(4))

    def __init__(self, *args, engagement, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attendees"].queryset = Stakeholder.objects.for_org(engagement.organization).filter(
            client_id=engagement.client_id
        )


class VersionStartForm(forms.Form):
    meeting = forms.ModelChoiceField(
        label="From meeting", queryset=Meeting.objects.none(), required=False, empty_label="No meeting"
    )
    notes = forms.CharField(required=False, widget=_rows(2))

    def __init__(self, *args, engagement, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["meeting"].queryset = Meeting.objects.for_org(engagement.organization).filter(
            engagement=engagement
        ).order_by("-held_on", "-id")


class AssumptionForm(forms.Form):
    key = forms.SlugField(
        max_length=120, help_text="A short stable name, e.g. sal-definition: it links the item across versions."
    )
    document = forms.CharField(max_length=120, required=False, help_text="The working document it lives in.")
    text = forms.CharField(label="Assumption", widget=_rows(2))
    critical = forms.BooleanField(required=False, label="Critical: blocks the strategy sign-off gate while assumed")


class AssumptionStatusForm(forms.Form):
    status = forms.ChoiceField(choices=AssumptionStatus.choices)
    correction = forms.CharField(required=False, widget=_rows(2))

    def clean(self):
        data = super().clean()
        if data.get("status") == AssumptionStatus.CORRECTED and not (data.get("correction") or "").strip():
            self.add_error("correction", "Say what the correction is.")
        return data


# --- Enablement and handoff -------------------------------------------------------------------------


class TrainingForm(forms.Form):
    training_type = forms.ChoiceField(label="Training")
    held_on = forms.DateField(label="Date", widget=DATE)
    audience = forms.CharField(
        max_length=300, required=False, help_text="Leave empty for the playbook's audience of this training."
    )
    recorded = forms.BooleanField(required=False, label="Recorded (the recording is shared with the client)")
    notes = forms.CharField(required=False, widget=_rows(3))

    def __init__(self, *args, training_types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["training_type"].choices = [(t.key, t.name) for t in training_types]


class HypercareForm(forms.Form):
    start = forms.DateField(label="Starts", widget=DATE)
    end = forms.DateField(label="Ends", widget=DATE, required=False)


class RetentionStepForm(forms.Form):
    outcome = forms.ChoiceField(choices=RetentionOutcome.choices, widget=forms.RadioSelect, label="The client")
    offer = forms.CharField(label="Offer made", widget=_rows(2))
    note = forms.CharField(required=False, widget=_rows(2))
