"""Maintenance schedule and health-check pages: thin views over the services of schedules, figures, runs and flags.

Every write is a POST that goes through a service (which logs it); a form with errors re-renders its page with
the errors next to the fields (status 400). Each page runs a fixed number of queries; the portfolio's does not
grow with the number of engagements.
"""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST
from pydantic import ValidationError as RuleError

from accounts.access import org_view
from accounts.models import DomainError
from deliverables.charts import sparkline
from deliverables.models import ArtifactStatus
from engagements.models import Engagement, EngagementMember, TeamRole

from . import figures, flags, periods, portfolio, runs, schedules
from . import health_rules as rule_engine
from .forms import (
    BaselineForm,
    CsvUploadForm,
    EscalateForm,
    ExplainForm,
    MetricValueForm,
    ReviewForm,
    StartScheduleForm,
    TaskAdjustForm,
)
from .models import (
    Baseline,
    Cadence,
    DeliveryStatus,
    FlagExplanation,
    Granularity,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    MetricValue,
    RunStatus,
    ScheduledTask,
    ScheduleOwner,
)

RUNS_SHOWN = 24
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
RESULT_GROUPS = [
    ("red", "Red flags", "No red flags this month."),
    ("watch", "Trends to watch", ""),
    ("not_evaluable", "Not evaluable: needs a decision or data", ""),
    ("explained", "Explained flags", ""),
    ("ok", "OK and informational", ""),
]
GROUP_OF = {rule_engine.INFO: "ok"}
STATUS_LABELS = {
    rule_engine.RED: "Red flag",
    rule_engine.WATCH: "Watch",
    rule_engine.NOT_EVALUABLE: "Not evaluable",
    rule_engine.EXPLAINED: "Explained",
    rule_engine.INFO: "Info",
    rule_engine.OK: "OK",
}


def _engagement(request, engagement_uuid) -> Engagement:
    engagement = get_object_or_404(
        Engagement.objects.for_org(request.org).select_related("client", "playbook_version__playbook"),
        uuid=engagement_uuid,
    )
    engagement.organization = request.org
    return engagement


def _schedule(request, engagement) -> MaintenanceSchedule | None:
    schedule = (
        MaintenanceSchedule.objects.for_org(request.org).filter(engagement=engagement).select_related("started_by")
    ).first()
    if schedule is not None:
        schedule.engagement = engagement
    return schedule


def _health_url(request, engagement, anchor: str = "") -> str:
    url = reverse("reporting:health", args=[request.org.slug, engagement.uuid])
    return f"{url}#{anchor}" if anchor else url


def _run_url(request, engagement, run, anchor: str = "") -> str:
    url = reverse("reporting:run-detail", args=[request.org.slug, engagement.uuid, run.uuid])
    return f"{url}#{anchor}" if anchor else url


def _trend(values: list) -> str:
    return mark_safe(sparkline(values))  # noqa: S308 - our SVG of numbers


def _trend_label(axis, values) -> str:
    known = [f"{p:%b %Y}: {v:g}" for p, v in zip(axis, values, strict=True) if v is not None]
    return "; ".join(known) or "no figures yet"


def _owner_people(request, engagement, owner: str) -> str:
    """Who that is, by name: the client (single project), or the architects on the engagement's team."""
    if owner == ScheduleOwner.CLIENT:
        return f"{engagement.client.name} runs it themselves once the schedule is handed over."
    architects = [
        m.user.get_full_name() or m.user.email
        for m in EngagementMember.objects.for_org(request.org)
        .filter(engagement=engagement, role=TeamRole.ARCHITECT)
        .select_related("user")
    ]
    if architects:
        return f"{', '.join(architects)}, for {engagement.client.name}."
    return f"For {engagement.client.name}; no architect is on this engagement's team yet."


# --------------------------------------------------------------------------------------------------
# The engagement's health page


def _tasks_by_cadence(tasks, forms: dict) -> list[dict]:
    groups = []
    for value, label in Cadence.choices:
        rows = [t for t in tasks if t.cadence == value]
        for task in rows:
            task.rule_texts = [rule_engine.rule_in_words(r) for r in task.rules]
            task.adjust_form = forms.get(task.pk) or TaskAdjustForm(task=task)
        if rows:
            groups.append({"cadence": value, "label": label, "tasks": rows})
    return groups


def _figure_rows(engagement, labels: dict) -> tuple[list, list]:
    today = timezone.localdate()
    latest = (
        MetricValue.objects.for_org(engagement.organization)
        .filter(engagement=engagement, period__lte=periods.month_start(today))
        .order_by("-period")
        .values_list("period", flat=True)
        .first()
    )
    last = max(latest, periods.due_period(today)) if latest else periods.due_period(today)
    axis, series = figures.metric_history(engagement, last=last)
    rows = []
    for (metric, key), by_period in series.items():
        values = [by_period[p].value if p in by_period else None for p in axis]
        newest = by_period[max(by_period)]
        rows.append(
            {
                "metric": metric,
                "label": labels.get(metric, rule_engine.humanize(metric)),
                "key": key,
                "cells": [by_period.get(p) for p in axis],
                "trend": _trend(values),
                "trend_label": _trend_label(axis, values),
                "source": newest.source,
            }
        )
    return axis, rows


def health_context(
    request,
    engagement,
    *,
    start_form=None,
    task_forms=None,
    baseline_form=None,
    figure_form=None,
    csv_form=None,
) -> dict:
    schedule = _schedule(request, engagement)
    maintenance = engagement.spec.maintenance
    context = {
        "engagement": engagement,
        "schedule": schedule,
        "maintenance": maintenance,
        "can_change": request.membership.can_write,
        "active_tab": "health",
    }
    if schedule is None:
        owner = schedules.schedule_owner(engagement) if maintenance else None
        context.update(
            {
                "planned_owner": ScheduleOwner(owner).label if owner else "",
                "owner_people": _owner_people(request, engagement, owner) if owner else "",
                "start_form": start_form or StartScheduleForm(initial={"live_since": schedules.go_live(engagement)}),
                "task_count": len(maintenance.tasks) if maintenance else 0,
                "trigger_count": len(maintenance.refinement_triggers) if maintenance else 0,
            }
        )
        return context

    tasks = list(ScheduledTask.objects.for_org(request.org).filter(schedule=schedule))
    metrics = schedules.schedule_metrics(tasks)
    labels = dict(metrics)
    baselines = list(Baseline.objects.for_org(request.org).filter(engagement=engagement).order_by("metric", "key"))
    for b in baselines:
        b.label = labels.get(b.metric, rule_engine.humanize(b.metric))  # type: ignore[attr-defined]
    axis, figure_rows = _figure_rows(engagement, labels)
    recent_runs = list(
        HealthCheckRun.objects.for_org(request.org)
        .filter(engagement=engagement)
        .annotate(
            sent=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.SENT)),
            failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
            waiting=Count(
                "deliveries", filter=Q(deliveries__status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
            ),
        )
        .order_by("-period")[:RUNS_SHOWN]
    )
    due = periods.due_period()
    due_run: HealthCheckRun | None = next((r for r in recent_runs if r.period == due), None)
    if due_run is None:
        due_run = HealthCheckRun.objects.for_org(request.org).filter(engagement=engagement, period=due).first()
    context.update(
        {
            "owner_people": _owner_people(request, engagement, schedule.owner),
            "task_groups": _tasks_by_cadence(tasks, task_forms or {}),
            "task_count": len(tasks),
            "metrics": metrics,
            "baselines": baselines,
            "axis": axis,
            "figures": figure_rows,
            "runs": recent_runs,
            "due_period": due,
            "due_run": due_run,
            "next_due": periods.next_due(schedule, has_due_run=due_run is not None),
            "baseline_form": baseline_form or BaselineForm(metrics=metrics),
            "figure_form": figure_form or MetricValueForm(metrics=metrics, initial={"period": f"{due:%Y-%m}"}),
            "csv_form": csv_form or CsvUploadForm(),
            "csv_imports": figures.imports_shown(engagement),
            "first_cycle": maintenance.first_business_cycle if maintenance else None,
        }
    )
    context["explanations"], context["ended_explanations"] = flags.explanations_for_page(engagement)
    return context


def _health_page(request, engagement, *, status=200, **forms):
    return render(request, "reporting/health.html", health_context(request, engagement, **forms), status=status)


@org_view
@require_GET
def health_page(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    return _health_page(request, engagement)


@org_view
@require_POST
def schedule_start(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    if _schedule(request, engagement) is not None:  # a double submit, or a colleague was quicker
        messages.info(request, "The maintenance schedule has already been started.")
        return redirect(_health_url(request, engagement))
    form = StartScheduleForm(request.POST)
    if form.is_valid():
        try:
            schedule = schedules.start_schedule(
                engagement=engagement,
                actor=request.user,
                live_since=form.cleaned_data["live_since"],
                catch_up=form.cleaned_data["catch_up"],
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            started = (
                f"Maintenance schedule started: {schedule.tasks.count()} tasks and triggers, "
                f"{schedule.get_owner_display().lower()}."
            )
            months = periods.catch_up_periods(schedule) if form.cleaned_data["catch_up"] else []
            if months:
                started += (
                    f" Checking the {len(months)} month{'s' if len(months) > 1 else ''} since go-live "
                    f"({months[0]:%B %Y} to {months[-1]:%B %Y}) in the background; their reports are not emailed."
                )
            messages.success(request, started)
            return redirect(_health_url(request, engagement))
    return _health_page(request, engagement, status=400, start_form=form)


def _require_schedule(request, engagement) -> MaintenanceSchedule:
    schedule = _schedule(request, engagement)
    if schedule is None:
        raise Http404("This engagement has no maintenance schedule yet.")
    return schedule


@org_view
@require_POST
def task_adjust(request, engagement_uuid, task_uuid):
    engagement = _engagement(request, engagement_uuid)
    task = get_object_or_404(
        ScheduledTask.objects.for_org(request.org).select_related("schedule"),
        uuid=task_uuid,
        schedule__engagement=engagement,
    )
    task.schedule.engagement = engagement
    form = TaskAdjustForm(request.POST, task=task)
    if form.is_valid():
        try:
            schedules.adjust_task(task=task, actor=request.user, request=request, **form.cleaned_data["changes"])
        except (DomainError, RuleError) as exc:
            form.add_error(None, str(exc) if isinstance(exc, DomainError) else "That threshold does not fit the rule.")
        else:
            messages.success(request, f"“{task.name}” adjusted for this engagement; the change is in the activity log.")
            return redirect(_health_url(request, engagement, f"task-{task.key}"))
    return _health_page(request, engagement, status=400, task_forms={task.pk: form})


@org_view
@require_POST
def baseline_set(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    schedule = _require_schedule(request, engagement)
    metrics = schedules.schedule_metrics(schedule.tasks.all())
    form = BaselineForm(request.POST, metrics=metrics)
    if form.is_valid():
        data = form.cleaned_data
        figures.set_baseline(
            engagement=engagement,
            metric=data["metric"],
            key=data["key"].strip(),
            value=data["value"],
            actor=request.user,
            request=request,
        )
        messages.success(request, f"Baseline of {dict(metrics)[data['metric']].lower()} set to {data['value']:g}.")
        return redirect(_health_url(request, engagement, "baselines"))
    return _health_page(request, engagement, status=400, baseline_form=form)


@org_view
@require_POST
def metric_add(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    schedule = _require_schedule(request, engagement)
    metrics = schedules.schedule_metrics(schedule.tasks.all())
    form = MetricValueForm(request.POST, metrics=metrics)
    if form.is_valid():
        data = form.cleaned_data
        try:
            figures.record_metric(
                engagement=engagement,
                metric=data["metric"],
                key=data["key"].strip(),
                period=data["period"],
                value=data["value"],
                actor=request.user,
                granularity=data["granularity"],
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            week = data["granularity"] == Granularity.WEEK
            when = f"the week of {data['period']:%-d %B %Y}" if week else f"{data['period']:%B %Y}"
            messages.success(request, f"{dict(metrics)[data['metric']]} for {when} recorded: {data['value']:g}.")
            return redirect(_health_url(request, engagement, "figures"))
    return _health_page(request, engagement, status=400, figure_form=form)


@org_view
@require_POST
def metrics_upload(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    schedule = _require_schedule(request, engagement)
    metrics = schedules.schedule_metrics(schedule.tasks.all())
    form = CsvUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            result = figures.start_figures_import(
                engagement=engagement,
                text=form.cleaned_data["file"],
                file_name=request.FILES["csv-file"].name,
                actor=request.user,
                metrics=dict(metrics).keys(),
            )
        except DomainError as exc:
            form.add_error("file", f"Nothing was imported. {exc}")
        else:
            if isinstance(result, int):
                messages.success(request, f"{result} figure{'s' if result != 1 else ''} imported from the CSV.")
            else:
                messages.info(request, f"The CSV's {result.lines} lines are being imported: the progress shows below.")
            return redirect(_health_url(request, engagement, "figures"))
    return _health_page(request, engagement, status=400, csv_form=form)


@org_view
@require_POST
def run_now(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    try:
        run, created = runs.run_month_now(engagement=engagement, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect(_health_url(request, engagement))
    if created:
        messages.success(request, f"The {run.period:%B %Y} health check is queued; this page follows it.")
    else:
        messages.info(request, f"The {run.period:%B %Y} health check already exists: here it is.")
    return redirect(_run_url(request, engagement, run))


# --------------------------------------------------------------------------------------------------
# One run


def _run(request, engagement, run_uuid) -> HealthCheckRun:
    run = get_object_or_404(
        HealthCheckRun.objects.for_org(request.org).select_related("report"), uuid=run_uuid, engagement=engagement
    )
    run.engagement, run.organization = engagement, request.org
    _progress(run)
    return run


ACTIVE_RENDERS = (ArtifactStatus.QUEUED, ArtifactStatus.RENDERING)


def _progress(run) -> None:
    run.in_progress = run.status in ACTIVE
    recently = run.finished_at is not None and run.finished_at > timezone.now() - timedelta(minutes=10)
    report = run.report
    checked = run.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
    run.rendering = checked and (
        (report is None and recently) or (report is not None and report.status in ACTIVE_RENDERS)
    )
    run.polling = run.in_progress or run.rendering
    run.report_ready = report is not None and report.status == ArtifactStatus.DONE and bool(report.file)
    run.report_failed = report is not None and report.status == ArtifactStatus.FAILED


def run_context(request, engagement, run, *, bound=None) -> dict:
    results = sorted(
        HealthResult.objects.for_org(request.org)
        .filter(run=run)
        .select_related("explained_by", "carried_from")
        .prefetch_related("explanations_given"),
        key=lambda r: (r.task_name, r.key, r.id),
    )
    axis, series = figures.metric_history(engagement, last=run.period)
    links = flags.escalations(results)
    can_change = request.membership.can_write
    groups: dict[str, list] = {key: [] for key, _, _ in RESULT_GROUPS}
    review_items = []
    for result in results:
        result.run = run
        by_period = series.get((result.metric, result.key), {})
        values = [by_period[p].value if p in by_period else None for p in axis]
        result.trend = _trend(values)  # type: ignore[attr-defined]
        result.trend_label = _trend_label(axis, values)  # type: ignore[attr-defined]
        result.status_label = STATUS_LABELS.get(result.status, result.status)  # type: ignore[attr-defined]
        result.board_links = links.get(result.uuid, [])  # type: ignore[attr-defined]
        if can_change and result.status == rule_engine.RED:
            result.explain_form = ExplainForm(result=result)  # type: ignore[attr-defined]
        if can_change and result.status in flags.ESCALATABLE and engagement.is_open:
            result.escalate_form = EscalateForm(result=result, title=flags.escalation_title(result))  # type: ignore[attr-defined]
        if bound is not None and bound[0] == result.pk:
            setattr(result, bound[1], bound[2])
        if result.is_review_item:  # a task a person reviews: its own section, not a flag or a missing figure
            _review_form(result, can_change=can_change)
            review_items.append(result)
            continue
        groups[GROUP_OF.get(result.status, result.status)].append(result)
    deliveries = list(run.deliveries.order_by("email"))
    return {
        "engagement": engagement,
        "run": run,
        "active_tab": "health",
        "result_count": len(results),
        "groups": [
            {"key": key, "label": label, "empty": empty, "results": groups.get(key, [])}
            for key, label, empty in RESULT_GROUPS
        ],
        "review_items": review_items,
        "open_reviews": sum(r.reviewed_at is None for r in review_items),
        "not_yet_due": [r for r in groups["ok"] if r.message.startswith(rule_engine.NOT_YET_DUE)],
        "deliveries": deliveries,
        "delivery_counts": {s: sum(d.status == s for d in deliveries) for s in DeliveryStatus.values},
        "axis": axis,
        "can_change": can_change,
    }


@org_view
@require_GET
def run_detail(request, engagement_uuid, run_uuid):
    """The run; an htmx poll gets only the status card, and a page reload once the run (and its report) is done."""
    engagement = _engagement(request, engagement_uuid)
    run = _run(request, engagement, run_uuid)
    if request.htmx:
        response = render(request, "reporting/run_detail.html#run-status", {"engagement": engagement, "run": run})
        if not run.polling:
            response["HX-Refresh"] = "true"
        return response
    return render(request, "reporting/run_detail.html", run_context(request, engagement, run))


@org_view
@require_POST
def run_resend(request, engagement_uuid, run_uuid):
    """Send the run's failed emails again (owner or consultant): each recipient at most once more."""
    engagement = _engagement(request, engagement_uuid)
    run = _run(request, engagement, run_uuid)
    if not request.membership.can_write:
        raise PermissionDenied
    queued = runs.resend(run)
    if queued:
        messages.success(request, f"{queued} email{'s' if queued != 1 else ''} queued again; this page follows them.")
    else:
        messages.info(request, "No failed email to send again.")
    return redirect(_run_url(request, engagement, run, "deliveries"))


@org_view
@require_POST
def result_action(request, engagement_uuid, result_uuid):
    """Explain a red flag, or turn a flag into a risk, a decision-needed card or a work item on the board."""
    engagement = _engagement(request, engagement_uuid)
    result = get_object_or_404(
        HealthResult.objects.for_org(request.org).select_related("run__report"),
        uuid=result_uuid,
        run__engagement=engagement,
    )
    run = result.run
    run.engagement, run.organization = engagement, request.org
    _progress(run)
    action = request.POST.get("action")
    anchor = f"result-{result.uuid}"
    if action == "explain":
        form = ExplainForm(request.POST, result=result)
        if form.is_valid():
            try:
                flags.explain_result(
                    result=result,
                    explanation=form.cleaned_data["explanation"],
                    months=form.cleaned_data["months"],
                    actor=request.user,
                    request=request,
                )
            except DomainError as exc:  # the flag changed meanwhile (explained by a colleague): say so
                messages.error(request, str(exc))
            else:
                later = form.cleaned_data["months"]
                until = periods.add_months(run.period, later)
                carried = f" Later checks show it explained until {until:%B %Y} unless withdrawn." if later else ""
                messages.success(
                    request, f"“{result.task_name}” explained; it no longer counts as a red flag.{carried}"
                )
            return redirect(_run_url(request, engagement, run, anchor))
        bound = (result.pk, "explain_form", form)
    elif action == "board":
        form = EscalateForm(request.POST, result=result)
        if form.is_valid():
            data = form.cleaned_data
            try:
                item = flags.escalate_result(
                    result=result,
                    kind=data["kind"],
                    title=data["title"],
                    category=data.get("category") or "",
                    client_visible=data["client_visible"],
                    actor=request.user,
                    request=request,
                )
            except DomainError as exc:  # e.g. the engagement is closed, so its board is read-only
                messages.error(request, str(exc))
            else:
                label = flags.BOARD_KINDS[data["kind"]]
                visibility = "client-visible" if item.client_visible else "internal"
                messages.success(request, f"“{item.title}” is on the board as a {label} ({visibility}).")
            return redirect(_run_url(request, engagement, run, anchor))
        bound = (result.pk, "escalate_form", form)
    else:
        messages.error(request, "Choose what to do with this flag.")
        return redirect(_run_url(request, engagement, run, anchor))
    context = run_context(request, engagement, run, bound=bound)
    return render(request, "reporting/run_detail.html", context, status=400)


def _review_form(result, *, can_change: bool, form=None) -> None:
    if can_change and result.reviewed_at is None and not hasattr(result, "review_form"):
        result.review_form = form or ReviewForm(result=result)


@org_view
@require_POST
def review_record(request, engagement_uuid, result_uuid):
    """Record a review item of a run as done (who, when, a note). htmx swaps the item and the run's counts."""
    engagement = _engagement(request, engagement_uuid)
    result = get_object_or_404(
        HealthResult.objects.for_org(request.org).select_related("run__report", "reviewed_by"),
        uuid=result_uuid,
        run__engagement=engagement,
    )
    run = result.run
    run.engagement, run.organization = engagement, request.org
    form = ReviewForm(request.POST, result=result)
    status = 200
    if form.is_valid():
        try:
            result = flags.record_review(
                result=result, actor=request.user, note=form.cleaned_data["note"], request=request
            )
        except DomainError as exc:  # recorded by a colleague meanwhile, or not a review item: show it as it is now
            messages.error(request, str(exc))
            result.refresh_from_db()
        else:
            run.refresh_from_db()
            if not request.htmx:
                messages.success(request, f"Review of “{result.task_name}” recorded.")
    else:
        status = 400
    _progress(run)
    if status == 400:
        _review_form(result, can_change=True, form=form)
    if request.htmx:
        open_reviews = HealthResult.objects.for_org(request.org).filter(
            run=run, kind=result.kind, metric="", reviewed_at__isnull=True
        )
        context = {"engagement": engagement, "run": run, "r": result, "oob": True, "open_reviews": open_reviews.count()}
        return render(request, "reporting/_review_item_swap.html", context, status=status)
    if status == 400:
        bound = (result.pk, "review_form", form)
        context = run_context(request, engagement, run, bound=bound)
        return render(request, "reporting/run_detail.html", context, status=400)
    return redirect(_run_url(request, engagement, run, f"result-{result.uuid}"))


@org_view
@require_POST
def explanation_withdraw(request, engagement_uuid, explanation_uuid):
    """Stop an explanation from covering later months' health checks."""
    engagement = _engagement(request, engagement_uuid)
    explanation = get_object_or_404(
        FlagExplanation.objects.for_org(request.org), uuid=explanation_uuid, engagement=engagement
    )
    try:
        flags.withdraw_explanation(explanation=explanation, actor=request.user, request=request)
    except DomainError as exc:  # a colleague withdrew it first
        messages.error(request, str(exc))
    else:
        key = f" ({explanation.key})" if explanation.key else ""
        messages.success(
            request,
            f"Explanation of “{explanation.task_name}”{key} withdrawn: from the next check on, it counts again.",
        )
    return redirect(_health_url(request, engagement, "explanations"))


@org_view
@require_GET
def report_download(request, engagement_uuid, run_uuid):
    engagement = _engagement(request, engagement_uuid)
    run = _run(request, engagement, run_uuid)
    if not run.report_ready:
        messages.info(request, "The report of this run is not ready yet.")
        return redirect(_run_url(request, engagement, run))
    try:
        handle = run.report.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("This report's file is missing.") from exc
    filename = run.report.file.name.rsplit("/", 1)[-1]
    return FileResponse(handle, as_attachment=True, filename=filename, content_type="application/pdf")


# --------------------------------------------------------------------------------------------------
# Portfolio health


@org_view
@require_GET
def portfolio_health(request):
    """Every engagement with a maintenance schedule: three queries whatever their number."""
    context = portfolio.schedule_rows(request.org, timezone.localdate())
    return render(request, "reporting/portfolio_health.html", context)
