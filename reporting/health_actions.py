"""What the health pages do beyond reporting.health: run a month now, explain a red flag, turn it into a board
card, import figures with line-numbered errors, and the plain-words / history helpers the pages show.

Services here change state only inside a transaction and write the activity log there, like reporting.health.
"""

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max
from django.urls import reverse
from django.utils import timezone

from accounts import activity
from accounts.models import ActivityEntry, DomainError
from deliverables import services as pipeline
from deliverables.models import ArtifactKind, ArtifactStatus
from playbooks.schema import NEEDS_THRESHOLD

from . import health
from . import health_rules as rule_engine
from .models import (
    FlagExplanation,
    Granularity,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    MetricValue,
    ScheduledTask,
    ScheduleOwner,
)

TREND_MONTHS = 6
ESCALATED = "health.flag_escalated"
EXPLAINED = "health.flag_explained"
WITHDRAWN = "health.explanation_withdrawn"
EXPLANATION_MONTHS = 3  # how many later months an explanation covers unless the consultant chooses otherwise
MAX_EXPLANATION_MONTHS = 12
ENDED_SHOWN = 10
BOARD_KINDS = {"risk": "risk", "decision": "decision needed", "work": "work item"}
ESCALATABLE = {rule_engine.RED, rule_engine.WATCH, rule_engine.EXPLAINED}
CSV_MAX_LINES = 5000


# --------------------------------------------------------------------------------------------------
# Owner, periods


def planned_owner(engagement) -> str:
    """Who runs the schedule once started: the same decision as health.start_schedule makes."""
    types = {t.key: t for t in engagement.spec.engagement_types}
    engagement_type = types.get(engagement.engagement_type)
    client_owned = engagement_type is None or engagement_type.maintenance_owner == "customer"
    return ScheduleOwner.CLIENT if client_owned else ScheduleOwner.CONSULTANCY


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_axis(last: date, months: int = TREND_MONTHS) -> list[date]:
    """The first days of the `months` months ending with `last`'s month, oldest first."""
    end = health.month_start(last)
    return [add_months(end, -n) for n in range(months - 1, -1, -1)]


def due_period(today: date | None = None) -> date:
    """The month a run created today checks: the month just ended (as beat does)."""
    return health.previous_month(today or timezone.localdate())


@dataclass
class NextDue:
    period: date  # the month the next run checks
    on: date  # when beat creates it
    overdue: bool  # the month has ended and its run does not exist yet


def next_due(schedule: MaintenanceSchedule, *, has_due_run: bool, today: date | None = None) -> NextDue | None:
    """When the next monthly run comes, given whether the month just ended already has its run."""
    if not schedule.active:
        return None
    today = today or timezone.localdate()
    ended = due_period(today)
    if not has_due_run and schedule.live_since < ended + timedelta(days=31):
        return NextDue(period=ended, on=today, overdue=True)
    current = health.month_start(today)
    return NextDue(period=current, on=add_months(current, 1), overdue=False)


# --------------------------------------------------------------------------------------------------
# Rules in plain words

UNITS = {
    "pct": "%",
    "pp": " pp",
    "points": " points",
    "hours": " h",
    "days": " days",
    "per_week": "/week",
    "multiple": "x",
}
OPS = {"gt": "above", "gte": "at least", "lt": "below", "lte": "at most"}
SOURCES = {
    "crm": "from the CRM",
    "crm_metadata": "from the CRM's setup",
    "ri_platform": "from the revenue intelligence platform",
    "prm_platform": "from the partner platform",
    "manual": "entered by hand",
    "app": "from this app",
}


def humanize(name: str | None) -> str:
    text = (name or "").removeprefix("event:").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _n(value) -> str:
    if value is None:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _window(window) -> str:
    n, period = window["n"], window["period"]
    return f"{n} {period}{'s' if n != 1 else ''}"


def rule_in_words(rule: dict) -> str:
    """One rule (a playbooks.schema.Rule dump) as a sentence a client could read."""
    if rule.get("event"):
        text = f"Red when “{humanize(rule['event']).lower()}” is recorded in the month"
    else:
        what = humanize(rule.get("metric")).lower()
        c, t, unit = rule.get("comparison"), rule.get("threshold"), UNITS.get(rule.get("unit") or "", "")
        if c == "below":
            text = f"Red when {what} is below {_n(t)}{unit}"
        elif c in ("above", "count_above", "duration_above"):
            text = f"Red when {what} is above {_n(t)}{unit}"
        elif c == "share_above":
            text = f"Red when the largest share of {what} is above {_n(t)}{unit}"
        elif c == "drop_pp":
            text = f"Red when {what} is more than {_n(t)} pp below its baseline"
        elif c == "drop_pct":
            text = f"Red when {what} is more than {_n(t)}% below its baseline"
        elif c == "drop_from_peak":
            text = f"Red when {what} falls more than {_n(t)}{unit} from its peak"
        elif c == "no_increase":
            text = f"Red when {what} has not risen above its baseline"
            if rule.get("evaluate_after"):
                text += f" after {_window(rule['evaluate_after'])} live"
        elif c == "new_value_vs_signed":
            text = f"Red when the CRM holds values not in the signed architecture ({what})"
        elif c == "target":
            target = rule.get("target") or {}
            goal = f"{OPS.get(target.get('op'), target.get('op'))} {_n(target.get('value'))}"
            goal += UNITS.get(target.get("unit") or "", "")
            of = target.get("of", "value")
            if of == "increase_from_baseline":
                goal = f"up {goal} from its baseline"
            elif of == "reduction_from_baseline":
                goal = f"down {goal} from its baseline"
            elif of == "multiple_of_baseline":
                goal = f"{goal} times its baseline"
            text = f"Target: {what} {goal}"
            if target.get("within"):
                text += f" within {_window(target['within'])} of go-live"
        elif c == "track":
            text = f"Tracked: {what} (no threshold)"
        else:
            text = f"{humanize(what)}: {c}"
        if c not in ("target", "track") and rule.get("target"):
            target = rule["target"]
            text += f" (target {OPS.get(target.get('op'), '')} {_n(target.get('value'))}"
            text += f"{UNITS.get(target.get('unit') or '', '')})"
        if rule.get("per"):
            text += f", per {humanize(rule['per']).lower()}"
        if rule.get("period") in ("quarter", "year"):
            how = "the sum" if rule.get("aggregate") == "sum" else "the mean"
            text += f", over a {rule['period']} ({how} of its months, judged at its end)"
        elif rule.get("period") == "week" and not rule.get("sustained"):
            text += ", in any week"
        if rule.get("sustained"):
            text += f", for {_window(rule['sustained'])} in a row"
        if rule.get("min_count"):
            text += f" (judged from {rule['min_count']} records)"
    if rule.get("exempt_if"):
        text += ", unless explained"
    sources = [SOURCES.get(s, s) for s in rule.get("data_source") or []]
    if sources:
        text += f". Figures {' or '.join(sources)}."
    else:
        text += "."
    return text


def adjustable_rules(task: ScheduledTask) -> list[tuple[int, dict]]:
    """The rules of a task that have a threshold a consultant may change."""
    return [(i, r) for i, r in enumerate(task.rules) if r.get("comparison") in NEEDS_THRESHOLD]


def schedule_metrics(tasks) -> list[tuple[str, str]]:
    """(metric, label) of every figure the schedule's rules read, events as `event:<name>`, in task order."""
    seen: dict[str, str] = {}
    for task in tasks:
        for rule in task.rules:
            if rule.get("metric"):
                seen.setdefault(rule["metric"], humanize(rule["metric"]))
            elif rule.get("event"):
                seen.setdefault(f"event:{rule['event']}", f"Event: {humanize(rule['event']).lower()}")
    return list(seen.items())


# --------------------------------------------------------------------------------------------------
# Figures


def import_figures(*, engagement, text: str, actor, metrics) -> int:
    """Check an uploaded CSV line by line (each error names its line), then write every figure in one transaction.

    Columns: metric, key (optional), period (YYYY-MM, or YYYY-Www), value. Metric names must be ones the schedule
    reads. Large files go through reporting.imports, which runs the same two steps in a worker.
    """
    return save_figures(engagement=engagement, rows=check_figures(text, metrics), actor=actor)


def check_figures(text: str, metrics, progress=None) -> list[dict]:
    """Every line of the CSV checked, nothing written: the rows to save, or DomainError naming the first bad line.
    progress(n), when given, hears how many lines are checked so far."""
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    try:
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise DomainError(f"Line 1: not readable as CSV ({exc}).") from None
    missing = {"metric", "period", "value"} - set(fields)
    if not fields:
        raise DomainError("The file is empty: line 1 must name the columns metric, key, period, value.")
    if missing:
        raise DomainError(
            f"Line 1: the CSV needs the column(s) {', '.join(sorted(missing))} (found {', '.join(fields)})."
        )
    reader.fieldnames = fields
    checked: list[dict] = []
    try:
        for row in reader:
            checked.append(_check_figure(row, reader.line_num, fields, metrics, len(checked)))
            if progress:
                progress(len(checked))
    except csv.Error as exc:
        raise DomainError(f"Line {reader.line_num}: not readable as CSV ({exc}).") from None
    if not checked:
        raise DomainError("Line 2: the file has a header but no figures.")
    return checked


def _check_figure(row: dict, line: int, fields: list[str], metrics, checked: int) -> dict:
    # `line` is the physical line, blank lines included.
    if checked >= CSV_MAX_LINES:
        raise DomainError(f"Line {line}: at most {CSV_MAX_LINES} figures per upload.")
    if None in row or any(row.get(name) is None for name in ("metric", "period", "value")):
        raise DomainError(f"Line {line}: expected the columns {', '.join(fields)}; the line has a different count.")
    metric = row["metric"].strip()
    if metric not in metrics:
        raise DomainError(f"Line {line}: unknown metric {metric!r}; use one the schedule reads (see the list).")
    period = row["period"].strip()
    try:
        granularity, start = health.figure_period(period)
    except ValueError:
        raise DomainError(
            f"Line {line}, column period: write the month as YYYY-MM, or the week as YYYY-Www (got {period!r})."
        ) from None
    if start > timezone.localdate():
        raise DomainError(
            f"Line {line}, column period: {period} has not begun yet; figures are entered for months (or weeks) "
            "up to the current one."
        )
    try:
        value = float(row["value"])
        if not math.isfinite(value):
            raise ValueError(value)
    except ValueError:
        raise DomainError(f"Line {line}, column value: a finite number is needed (got {row['value']!r}).") from None
    return {
        "metric": metric,
        "key": (row.get("key") or "").strip(),
        "granularity": granularity,
        "period": start,
        "value": value,
    }


@transaction.atomic
def save_figures(*, engagement, rows: list[dict], actor) -> int:
    """Write checked figures in one statement: a figure already stored for the same metric, key and period is
    replaced, and of two lines for the same figure the later one wins (as when they were entered one by one)."""
    figures = {(r["metric"], r["key"], r["granularity"], r["period"]): r["value"] for r in rows}
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                organization=engagement.organization,
                engagement=engagement,
                metric=metric,
                key=key,
                granularity=granularity,
                period=period,
                value=value,
                breakdown=None,
                source="csv",
                entered_by=actor,
            )
            for (metric, key, granularity, period), value in figures.items()
        ],
        update_conflicts=True,
        unique_fields=["engagement", "metric", "key", "granularity", "period"],
        update_fields=["value", "breakdown", "source", "entered_by"],
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        target=engagement,
        verb="metrics.imported",
        data={"rows": len(rows)},
    )
    return len(rows)


def metric_history(engagement, *, last: date, months: int = TREND_MONTHS) -> tuple[list[date], dict]:
    """Every figure of the `months` months ending with `last`: (axis, {(metric, key): {period: MetricValue}})."""
    axis = month_axis(last, months)
    series: dict[tuple[str, str], dict[date, MetricValue]] = {}
    for row in (
        MetricValue.objects.for_org(engagement.organization)
        .filter(engagement=engagement, granularity=Granularity.MONTH, period__gte=axis[0], period__lte=axis[-1])
        .order_by("metric", "key", "period")
    ):
        series.setdefault((row.metric, row.key), {})[row.period] = row
    return axis, series


# --------------------------------------------------------------------------------------------------
# Runs and flags


@transaction.atomic
def run_month_now(*, engagement, actor, request=None, today: date | None = None) -> tuple[HealthCheckRun, bool]:
    """Create the run of the month just ended now rather than at beat's next tick, and queue it on commit."""
    from .tasks import run_health_check

    schedule = MaintenanceSchedule.objects.filter(engagement=engagement).first()
    if schedule is None:
        raise DomainError("Start the maintenance schedule first.")
    if not schedule.active:
        raise DomainError("This maintenance schedule is paused.")
    period = due_period(today)
    run, created = health.create_run(engagement, period)
    if created:
        activity.record(
            organization=engagement.organization,
            actor=actor,
            request=request,
            target=engagement,
            verb="health.run_requested",
            data={"period": f"{period:%Y-%m}", "run": str(run.uuid)},
        )
        transaction.on_commit(lambda: run_health_check.delay(run.pk))
    return run, created


@transaction.atomic
def record_review(*, result: HealthResult, actor, note: str, request=None) -> HealthResult:
    """Record that a person reviewed a maintenance task without a machine rule (who, when, what they found): the
    review item leaves the run's not-evaluable count and reads as done, on the page, in the PDF and in the CLI."""
    note = note.strip()
    if not note:
        raise DomainError("Say what the review found (one line is enough).")
    if not result.is_review_item:
        raise DomainError("Only a task reviewed by a person is recorded this way; this one has a rule.")
    when = timezone.now()
    who = actor.get_full_name() or actor.email
    results = HealthResult.objects.for_org(result.organization_id)
    claimed = results.filter(pk=result.pk, reviewed_at__isnull=True).update(
        status=rule_engine.OK,
        reviewed_by=actor,
        reviewed_at=when,
        review_note=note,
        message=f"Reviewed by {who} on {timezone.localtime(when):%-d %B %Y}: {note}",
    )
    if not claimed:
        raise DomainError("This review has already been recorded.")
    HealthCheckRun.objects.for_org(result.organization_id).filter(pk=result.run_id, not_evaluable_count__gt=0).update(
        not_evaluable_count=F("not_evaluable_count") - 1
    )
    result.refresh_from_db()
    run = HealthCheckRun.objects.select_related("report", "engagement").get(
        pk=result.run_id, organization=result.organization
    )
    if run.report is not None and run.report.status == ArtifactStatus.DONE:
        # The PDF people download says what the run page says: a recorded review makes the report's next version
        # (the emails already sent keep theirs). A report not rendered yet will read the review when it renders.
        report = pipeline.request(engagement=run.engagement, kind=ArtifactKind.HEALTH_CHECK_REPORT, actor=actor)
        HealthCheckRun.objects.for_org(run.organization_id).filter(pk=run.pk).update(report=report)
    activity.record(
        organization=result.organization,
        actor=actor,
        request=request,
        target=result,
        verb="health.review_recorded",
        data={"run": str(result.run.uuid), "task": result.task_key, "note": note},
    )
    return result


def run_url(run: HealthCheckRun, result: HealthResult | None = None) -> str:
    path = reverse(
        "reporting:run-detail",
        kwargs={"org_slug": run.organization.slug, "engagement_uuid": run.engagement.uuid, "run_uuid": run.uuid},
    )
    return f"{settings.SITE_URL}{path}{f'#result-{result.uuid}' if result else ''}"


@transaction.atomic
def explain_result(
    *, result: HealthResult, explanation: str, actor, months: int = EXPLANATION_MONTHS, request=None
) -> HealthResult:
    """Record why a red flag is acceptable: it becomes `explained` and leaves the run's red count.

    With `months` > 0 the explanation also covers the same flag (task, metric, key) in the runs of the next
    `months` months: a later run that finds it red again shows it as explained, noting the month and the
    person. It stops covering later runs once it expires or is withdrawn (withdraw_explanation).
    """
    explanation = explanation.strip()
    if not explanation:
        raise DomainError("Say why this flag is acceptable.")
    if not 0 <= months <= MAX_EXPLANATION_MONTHS:
        raise DomainError(f"An explanation can cover at most {MAX_EXPLANATION_MONTHS} later months.")
    claimed = (
        HealthResult.objects.for_org(result.organization_id)
        .filter(pk=result.pk, status=rule_engine.RED)
        .update(status=rule_engine.EXPLAINED, explanation=explanation, explained_by=actor)
    )
    if not claimed:
        raise DomainError("Only a red flag can be explained, and this one is not red (any more).")
    runs = HealthCheckRun.objects.for_org(result.organization_id)
    runs.filter(pk=result.run_id, red_count__gt=0).update(red_count=F("red_count") - 1)
    result.refresh_from_db()
    run = result.run
    carried = None
    if months:
        carried = FlagExplanation.objects.create(
            organization=result.organization,
            engagement_id=run.engagement_id,
            source=result,
            task_key=result.task_key,
            task_name=result.task_name,
            metric=result.metric,
            key=result.key,
            explanation=explanation,
            explained_by=actor,
            from_period=run.period,
            until_period=add_months(run.period, months),
        )
    activity.record(
        organization=result.organization,
        actor=actor,
        request=request,
        target=result,
        verb=EXPLAINED,
        data={
            "run": str(run.uuid),
            "task": result.task_key,
            "key": result.key,
            "explanation": explanation,
            "until": f"{carried.until_period:%Y-%m}" if carried else None,
        },
    )
    return result


@transaction.atomic
def withdraw_explanation(*, explanation: FlagExplanation, actor, request=None) -> FlagExplanation:
    """Stop an explanation from covering later runs: the flag is red again from the next run on.

    Runs already evaluated keep what they showed (their report has been sent)."""
    explanations = FlagExplanation.objects.for_org(explanation.organization_id)
    claimed = explanations.filter(pk=explanation.pk, withdrawn_at__isnull=True).update(
        withdrawn_at=timezone.now(), withdrawn_by=actor
    )
    if not claimed:
        raise DomainError("This explanation has already been withdrawn.")
    explanation.refresh_from_db()
    activity.record(
        organization=explanation.organization,
        actor=actor,
        request=request,
        target=explanation,
        verb=WITHDRAWN,
        data={
            "task": explanation.task_key,
            "key": explanation.key,
            "from": f"{explanation.from_period:%Y-%m}",
            "until": f"{explanation.until_period:%Y-%m}",
        },
    )
    return explanation


def explanations_for_page(engagement, *, today: date | None = None) -> tuple[list, list]:
    """(in force, ended) explanations of an engagement for its health page. In force: not withdrawn and still
    covering the next run to come (the month after the latest run, or the month just ended if it has no run yet).
    Ended: the most recent expired or withdrawn ones."""
    latest = (
        HealthCheckRun.objects.for_org(engagement.organization)
        .filter(engagement=engagement)
        .aggregate(latest=Max("period"))["latest"]
    )
    upcoming = due_period(today)
    if latest is not None and latest >= upcoming:
        upcoming = add_months(latest, 1)
    current, ended = [], []
    rows = (
        FlagExplanation.objects.for_org(engagement.organization)
        .filter(engagement=engagement)
        .select_related("explained_by", "withdrawn_by")
        .annotate(carried=Count("carried_into"))
        .order_by("-from_period", "-created_at")
    )
    for row in rows:
        if row.withdrawn_at is None and row.until_period >= upcoming:
            current.append(row)
        elif len(ended) < ENDED_SHOWN:
            ended.append(row)
    return current, ended


def _escalation_text(result: HealthResult) -> str:
    run = result.run
    figures = [
        f"{label} {value:g}"
        for label, value in (("value", result.value), ("baseline", result.baseline), ("threshold", result.threshold))
        if value is not None
    ]
    lines = [
        f"Red flag from the {run.period:%B %Y} health check: {result.task_name}"
        f"{f' ({result.key})' if result.key else ''}.",
        result.message,
    ]
    if figures:
        lines.append(", ".join(figures).capitalize() + ".")
    if result.explanation:
        lines.append(f"Explained: {result.explanation}")
    lines.append(f"Health check: {run_url(run, result)}")
    return "\n".join(lines)


def escalation_title(result: HealthResult) -> str:
    key = f" — {result.key}" if result.key else ""
    return f"{result.task_name}{key}: flagged in the {result.run.period:%B %Y} health check"[:300]


@transaction.atomic
def escalate_result(
    *,
    result: HealthResult,
    kind: str,
    actor,
    title: str = "",
    client_visible: bool = False,
    category: str = "",
    request=None,
):
    """Turn a flag into a risk, a decision-needed card or a work item on the engagement's board (internal by
    default); its text links back to the run. Returns the board item."""
    from engagements import cadence
    from engagements.models import DecisionCategory, DecisionLogEntry, Risk, WorkItem

    if kind not in BOARD_KINDS:
        raise DomainError(f"Unknown card kind {kind!r}.")
    if result.status not in ESCALATABLE:
        raise DomainError("Only a red flag, an explained flag or a trend to watch can go on the board.")
    engagement = result.run.engagement
    text = _escalation_text(result)
    common = {
        "organization": engagement.organization,
        "engagement": engagement,
        "title": (title.strip() or escalation_title(result))[:300],
        "client_visible": client_visible,
    }
    if kind == "risk":
        item = Risk(**common, description=text)
    elif kind == "decision":
        if category not in DecisionCategory.values:
            raise DomainError("Choose the decision's category.")
        item = DecisionLogEntry(**common, context=text, category=category)
    else:
        item = WorkItem(**common, detail=text)
    item = cadence.save_board_item(item=item, actor=actor, request=request)
    activity.record(
        organization=result.organization,
        actor=actor,
        request=request,
        target=result,
        verb=ESCALATED,
        data={"run": str(result.run.uuid), "kind": kind, "item": str(item.uuid), "title": item.title},
    )
    return item


def escalations(results) -> dict:
    """{result uuid: [ActivityEntry]} of the board cards made from these results (one query)."""
    found: dict = {}
    uuids = [r.uuid for r in results]
    if not uuids:
        return found
    org = results[0].organization_id
    for entry in ActivityEntry.objects.filter(organization_id=org, verb=ESCALATED, target_uuid__in=uuids).order_by(
        "created_at", "id"
    ):
        entry.kind_label = BOARD_KINDS.get(entry.data.get("kind"), entry.data.get("kind"))
        found.setdefault(entry.target_uuid, []).append(entry)
    return found
