"""Forms of the maintenance schedule and health-check pages. They validate input; services decide."""

from datetime import date

from django import forms

from accounts.models import DomainError
from engagements import imports
from engagements.models import DecisionCategory

from .figures import figure_period
from .flags import BOARD_KINDS, EXPLANATION_MONTHS
from .health_rules import UNITS, humanize
from .models import Cadence
from .periods import add_months
from .schedules import adjustable_rules

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
CSV_MAX_BYTES = 1_000_000


class StartScheduleForm(forms.Form):
    live_since = forms.DateField(
        label="Go-live date",
        widget=DATE,
        help_text="First-business-cycle checks and quarterly tasks count from this date.",
    )
    catch_up = forms.BooleanField(
        label="Also check the months since go-live",
        required=False,
        initial=True,
        help_text="Sets the baselines from the first business cycle and gives every trend its history; "
        "those reports are kept but not emailed.",
    )


class TaskAdjustForm(forms.Form):
    """Threshold (of one of the task's rules) and cadence of one scheduled task. Prefixed by the task's key."""

    cadence = forms.ChoiceField(choices=Cadence.choices)
    rule = forms.TypedChoiceField(coerce=int, required=False, label="Rule")
    threshold = forms.FloatField(required=False, label="Threshold", min_value=0)

    def __init__(self, *args, task, **kwargs):
        kwargs.setdefault("prefix", f"task-{task.key}")
        kwargs.setdefault("initial", {})
        self.task = task
        self.rules = adjustable_rules(task)
        if self.rules:
            index, first = self.rules[0]
            kwargs["initial"] = {"rule": index, "threshold": first.get("threshold"), **kwargs["initial"]}
        kwargs["initial"] = {"cadence": task.cadence, **kwargs["initial"]}
        super().__init__(*args, **kwargs)
        if not self.rules:
            del self.fields["rule"], self.fields["threshold"]
            return
        self.fields["rule"].choices = [
            (i, f"{humanize(r.get('metric'))} (now {r.get('threshold'):g}{UNITS.get(r.get('unit') or '', '')})")
            for i, r in self.rules
        ]
        if len(self.rules) == 1:
            self.fields["rule"].widget = forms.HiddenInput()
            unit = self.rules[0][1].get("unit") or ""
            self.fields["threshold"].label = f"Threshold ({UNITS.get(unit, unit).strip() or unit})"
        else:
            self.fields["threshold"].help_text = "For the rule chosen above."

    def clean(self):
        data = super().clean()
        changes = {}
        if data.get("cadence") and data["cadence"] != self.task.cadence:
            changes["cadence"] = data["cadence"]
        if self.rules and data.get("threshold") is not None:
            index = data.get("rule")
            if index is None or index not in dict(self.rules):
                self.add_error("rule", "Choose one of this task's rules.")
                return data
            if self.task.rules[index].get("threshold") != data["threshold"]:
                changes["threshold"] = data["threshold"]
                changes["rule_index"] = index
        if not changes and not self.errors:
            raise forms.ValidationError("Nothing changed: set a different threshold or cadence.")
        data["changes"] = changes
        return data


class _MetricFieldMixin:
    def _metric_choices(self, metrics):
        choices = [
            (m, f"{label} (enter 1 if it happened)" if m.startswith("event:") else label) for m, label in metrics
        ]
        self.fields["metric"].choices = [("", "Choose a figure…"), *choices]


class BaselineForm(_MetricFieldMixin, forms.Form):
    metric = forms.ChoiceField(label="Metric")
    key = forms.CharField(
        label="For (stage, transition, manager…)",
        required=False,
        max_length=120,
        help_text="Leave empty for a single figure.",
    )
    value = forms.FloatField(label="Baseline value")

    def __init__(self, *args, metrics, **kwargs):
        kwargs.setdefault("prefix", "baseline")
        super().__init__(*args, **kwargs)
        self._metric_choices([(m, label) for m, label in metrics if not m.startswith("event:")])


class MetricValueForm(_MetricFieldMixin, forms.Form):
    metric = forms.ChoiceField(label="Metric")
    key = forms.CharField(
        label="For (stage, transition, manager…)",
        required=False,
        max_length=120,
        help_text="Leave empty for a single figure.",
    )
    period = forms.CharField(
        label="Month or week",
        max_length=8,
        widget=forms.TextInput(attrs={"placeholder": "YYYY-MM or YYYY-Www", "pattern": r"\d{4}-(\d{2}|[Ww]\d{2})"}),
        help_text="YYYY-MM for a monthly figure (2026-10), YYYY-Www for a weekly one (2026-W41).",
    )
    value = forms.FloatField(label="Value")

    def __init__(self, *args, metrics, **kwargs):
        kwargs.setdefault("prefix", "figure")
        super().__init__(*args, **kwargs)
        self._metric_choices(metrics)

    def clean_period(self) -> date:
        """The first day of the month or ISO week; `granularity` says which."""
        try:
            granularity, start = figure_period(self.cleaned_data["period"])
        except ValueError:
            raise forms.ValidationError(
                "Enter the month as YYYY-MM (e.g. 2026-10) or the week as YYYY-Www (e.g. 2026-W41)."
            ) from None
        self.cleaned_data["granularity"] = granularity
        return start


class ReviewForm(forms.Form):
    note = forms.CharField(
        label="What the review found",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One line is enough: who looked, what they found, what follows.",
    )

    def __init__(self, *args, result, **kwargs):
        kwargs.setdefault("prefix", f"review-{result.uuid.hex[:12]}")
        super().__init__(*args, **kwargs)


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns metric, key (optional), period (YYYY-MM), value; one figure per line.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "csv")
        super().__init__(*args, **kwargs)

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > CSV_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {CSV_MAX_BYTES // 1_000_000} MB.")
        try:
            return imports.decode(upload.read())
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from None


class ExplainForm(forms.Form):
    explanation = forms.CharField(
        label="Why this flag is acceptable this month",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    months = forms.TypedChoiceField(
        label="Also covers this flag in later health checks",
        coerce=int,
        required=False,
        empty_value=EXPLANATION_MONTHS,
        initial=EXPLANATION_MONTHS,
        help_text="While it holds, a later month that finds the same flag red shows it as explained, naming you. "
        "You can withdraw it on the health page.",
    )

    def __init__(self, *args, result, **kwargs):
        kwargs.setdefault("prefix", f"explain-{result.uuid.hex[:12]}")
        super().__init__(*args, **kwargs)
        period = result.run.period
        self.fields["months"].choices = [(0, "No, this month only")] + [
            (n, f"For {n} more month{'s' if n > 1 else ''} (until the {add_months(period, n):%B %Y} check)")
            for n in (1, 3, 6, 12)
        ]


class EscalateForm(forms.Form):
    kind = forms.ChoiceField(
        label="Put on the board as",
        choices=[("risk", "A risk"), ("decision", "A decision needed"), ("work", "A work item")],
        widget=forms.RadioSelect,
        initial="risk",
    )
    title = forms.CharField(label="Card title", max_length=300)
    category = forms.ChoiceField(
        label="Decision category",
        choices=DecisionCategory.choices,
        initial=DecisionCategory.REPORTING_DEFINITIONS,
        required=False,
        help_text="For a decision needed.",
    )
    client_visible = forms.BooleanField(label="Visible to the client", required=False)

    def __init__(self, *args, result, title="", **kwargs):
        kwargs.setdefault("prefix", f"board-{result.uuid.hex[:12]}")
        kwargs.setdefault("initial", {"title": title})
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("kind") == "decision" and not data.get("category"):
            self.add_error("category", "Choose the decision's category.")
        if data.get("kind") and data["kind"] not in BOARD_KINDS:
            self.add_error("kind", "Choose a risk, a decision or a work item.")
        return data
