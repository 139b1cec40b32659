"""Enablement and handoff: training, hypercare, handover checklist, retention path and the check-in."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from accounts.access import org_view
from accounts.models import DomainError

from .. import enablement as services
from .. import imports, progression
from ..forms_cadence import DATE, HypercareForm, RetentionStepForm, TrainingForm
from ..models import (
    ChecklistItem,
    ChecklistKind,
    EngagementType,
    ImportKind,
    KpiReading,
    RetentionAction,
    SubPhaseState,
    TrainingSession,
)
from ..tasks_imports import import_kpi_readings
from .cadence import _engagement

HANDOFF_KINDS = (ChecklistKind.HANDOVER, ChecklistKind.DOC_PACKAGE)
REMINDER_DAYS = 14  # engagements.enablement.check_ins_due reminds two weeks ahead


class KpiReadingForm(forms.Form):
    """One hypercare KPI figure as measured on a day (the playbook's ``hypercare.kpis``)."""

    kpi = forms.ChoiceField(label="KPI")
    measured_on = forms.DateField(label="Measured on", widget=DATE)
    value = forms.DecimalField(label="Figure", max_digits=12, decimal_places=2)
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, kpis, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kpi"].choices = [(k.key, k.metric) for k in kpis]


class KpiCsvForm(forms.Form):
    MAX_BYTES = 1_000_000

    file = forms.FileField(
        label="CSV file",
        help_text="Columns kpi, measured_on (YYYY-MM-DD), value, note (optional); one reading per line.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "kpi-csv")
        super().__init__(*args, **kwargs)

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {self.MAX_BYTES // 1_000_000} MB.")
        try:
            return imports.decode(upload.read())
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from None


def _training_types(engagement) -> list:
    return list(engagement.spec.enablement.training_types) if engagement.spec.enablement else []


def _hypercare(request, engagement) -> dict:
    spec = engagement.spec.hypercare
    if spec is None:
        return {"spec": None}
    sub = SubPhaseState.objects.for_org(request.org).filter(engagement=engagement, key=spec.sub_phase).first()
    return {"spec": spec, "sub_phase": sub, "skipped": bool(sub and sub.skipped)}


def _retention(engagement) -> dict:
    """The single-project path: the seed's steps, what was recorded, and the step that comes next."""
    spec = engagement.spec.retention
    taken = list(engagement.retention.order_by("created_at", "id"))
    next_spec = services.next_retention_step(engagement)
    finished = next_spec is None
    next_action = None if finished else next_spec.action
    steps = sorted(spec.single_project.steps, key=lambda s: s.order) if spec else []
    by_action = {s.action: s for s in taken}
    path = [{"spec": s, "taken": by_action.get(s.action), "next": s.action == next_action} for s in steps]
    return {
        "spec": spec,
        "path": path,
        "taken": taken,
        "finished": finished,
        "next_action": next_action,
        "next_label": RetentionAction(next_action).label if next_action else "",
        "next_spec": next_spec,
    }


def handoff_items(request, engagement) -> list:
    return list(
        ChecklistItem.objects.for_org(request.org)
        .filter(engagement=engagement, kind__in=HANDOFF_KINDS)
        .select_related("done_by", "phase", "sub_phase")
        .order_by("kind", "order")
    )


def enablement_context(
    request,
    engagement,
    *,
    training_form=None,
    hypercare_form=None,
    retention_form=None,
    handoff_error="",
    kpi_form=None,
    kpi_csv_form=None,
) -> dict:
    types = _training_types(engagement)
    names = {t.key: t.name for t in types}
    trainings = list(TrainingSession.objects.for_org(request.org).filter(engagement=engagement).order_by("-held_on"))
    for t in trainings:
        t.type_name = names.get(t.training_type, t.training_type)  # type: ignore[attr-defined]
    retention = _retention(engagement)
    if retention_form is None and retention["next_spec"] is not None:
        retention_form = RetentionStepForm(initial={"offer": retention["next_spec"].offer})
    hypercare = _hypercare(request, engagement)
    if hypercare_form is None:
        hypercare_form = HypercareForm(initial={"start": engagement.hypercare_start, "end": engagement.hypercare_end})
    items = handoff_items(request, engagement)
    kpis = services.hypercare_kpis(engagement)
    if kpi_form is None and kpis:
        kpi_form = KpiReadingForm(kpis=[k.kpi for k in kpis])
    return {
        "engagement": engagement,
        "training_types": types,
        "trainings": trainings,
        "training_form": training_form or (TrainingForm(training_types=types) if types else None),
        "hypercare": hypercare,
        "hypercare_form": hypercare_form,
        "kpis": kpis,
        "kpi_form": kpi_form,
        "kpi_csv_form": kpi_csv_form or KpiCsvForm(),
        "kpi_imports": imports.shown(engagement, ImportKind.KPI_READINGS),
        "kpi_readings": KpiReading.objects.for_org(request.org).filter(engagement=engagement).exists(),
        "handover": [i for i in items if i.kind == ChecklistKind.HANDOVER],
        "doc_package": [i for i in items if i.kind == ChecklistKind.DOC_PACKAGE],
        "handoff_done": sum(1 for i in items if i.done),
        "handoff_total": len(items),
        "handoff_error": handoff_error,
        "single_project": engagement.engagement_type == EngagementType.SINGLE_PROJECT,
        "retention": retention,
        "retention_form": retention_form,
        "reminder_on": engagement.check_in_date - timedelta(days=REMINDER_DAYS) if engagement.check_in_date else None,
        "can_change": request.membership.can_write,
    }


def _page(request, engagement, status=200, **forms):
    return render(
        request, "engagements/enablement.html", enablement_context(request, engagement, **forms), status=status
    )


def _back(request, engagement):
    return redirect("engagements:enablement", org_slug=request.org.slug, engagement_uuid=engagement.uuid)


@org_view
def enablement(request, engagement_uuid):
    """The page; a POST records a hypercare KPI figure (the 3d checkpoint that names it follows it)."""
    engagement = _engagement(request, engagement_uuid)
    if request.method != "POST":
        return _page(request, engagement)
    form = KpiReadingForm(request.POST, kpis=services.kpi_specs(engagement))
    if form.is_valid():
        try:
            services.record_kpi_reading(engagement=engagement, actor=request.user, request=request, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            state = next(k for k in services.hypercare_kpis(engagement) if k.kpi.key == form.cleaned_data["kpi"])
            messages.success(request, f"{state.kpi.metric}: {form.cleaned_data['value']:g} recorded. {state.verdict}")
            return _back(request, engagement)
    return _page(request, engagement, status=400, kpi_form=form)


@org_view
@require_POST
def kpi_upload(request, engagement_uuid):
    """Hypercare KPI readings from a CSV: every line or, on the first bad one, none (the form says which)."""
    engagement = _engagement(request, engagement_uuid)
    form = KpiCsvForm(request.POST, request.FILES)
    if form.is_valid():
        text = form.cleaned_data["file"]
        try:
            result = imports.start(
                engagement=engagement,
                kind=ImportKind.KPI_READINGS,
                text=text,
                file_name=request.FILES["kpi-csv-file"].name,
                actor=request.user,
                task=import_kpi_readings,
                run_now=lambda: services.import_kpi_readings(
                    engagement=engagement, text=text, actor=request.user, request=request
                ),
            )
        except DomainError as exc:
            form.add_error("file", f"Nothing was imported. {exc}")
        else:
            if isinstance(result, int):
                messages.success(request, f"{result} KPI reading{'s' if result != 1 else ''} imported from the CSV.")
            else:
                messages.info(request, f"The CSV's {result.lines} lines are being imported: the progress shows below.")
            return _back(request, engagement)
    return _page(request, engagement, status=400, kpi_csv_form=form)


@org_view
@require_GET
def kpi_download(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    response = HttpResponse(services.kpi_readings_csv(engagement), content_type="text/csv; charset=utf-8")
    name = slugify(engagement.name) or "engagement"
    response["Content-Disposition"] = f'attachment; filename="hypercare-kpis-{name}.csv"'
    return response


@org_view
@require_POST
def training_add(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = TrainingForm(request.POST, training_types=_training_types(engagement))
    if form.is_valid():
        try:
            services.record_training(engagement=engagement, actor=request.user, request=request, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Training session recorded.")
            return _back(request, engagement)
    return _page(request, engagement, status=400, training_form=form)


@org_view
def training_detail(request, engagement_uuid, training_uuid):
    engagement = _engagement(request, engagement_uuid)
    training = get_object_or_404(
        TrainingSession.objects.for_org(request.org), engagement=engagement, uuid=training_uuid
    )
    spec = next((t for t in _training_types(engagement) if t.key == training.training_type), None)
    return render(
        request,
        "engagements/enablement_training.html",
        {"engagement": engagement, "training": training, "type_spec": spec},
    )


@org_view
@require_POST
def hypercare_set(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = HypercareForm(request.POST)
    if form.is_valid():
        try:
            services.set_hypercare(
                engagement=engagement,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                actor=request.user,
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Hypercare runs from {engagement.hypercare_start:%-d %b %Y} to {engagement.hypercare_end:%-d %b %Y}.",
            )
            return _back(request, engagement)
    return _page(request, engagement, status=400, hypercare_form=form)


@org_view
@require_POST
def handoff_item_toggle(request, engagement_uuid, item_uuid):
    """Tick or untick a handover component or documentation-package item; htmx swaps the list back."""
    engagement = _engagement(request, engagement_uuid)
    item = get_object_or_404(
        ChecklistItem.objects.for_org(request.org).select_related("phase", "sub_phase"),
        engagement=engagement,
        kind__in=HANDOFF_KINDS,
        uuid=item_uuid,
    )
    item.engagement = engagement
    error = ""
    try:
        progression.set_checklist_item(
            item=item, done=request.POST.get("done") == "1", actor=request.user, request=request
        )
    except DomainError as exc:
        error = str(exc)
    if request.htmx:
        context = enablement_context(request, engagement, handoff_error=error)
        return render(request, "engagements/enablement.html#handoff", context)
    if error:
        messages.error(request, error)
    return _back(request, engagement)


@org_view
@require_POST
def retention_add(request, engagement_uuid):
    """Record the next step of the single-project retention path (the service enforces the order)."""
    engagement = _engagement(request, engagement_uuid)
    form = RetentionStepForm(request.POST)
    action = request.POST.get("action", "")
    if form.is_valid():
        try:
            step = services.record_retention_step(
                engagement=engagement, action=action, actor=request.user, request=request, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{step.get_action_display()}: {step.get_outcome_display().lower()}.")
            return _back(request, engagement)
    return _page(request, engagement, status=400, retention_form=form)
