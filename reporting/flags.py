"""What people do with a run's flags: explain a red one (the explanation also covers the same flag in the next
months' runs, until it expires or is withdrawn), put one on the engagement's board, and record the review of a task
that has no machine rule.

Services here change state only inside a transaction and write the activity log there.
"""

from datetime import date

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max
from django.urls import reverse
from django.utils import timezone

from accounts import activity
from accounts.models import ActivityEntry, DomainError
from deliverables import services as pipeline
from deliverables.models import ArtifactKind, ArtifactStatus

from . import health_rules as rule_engine
from .models import FlagExplanation, HealthCheckRun, HealthResult
from .periods import add_months, due_period

ESCALATED = "health.flag_escalated"
EXPLAINED = "health.flag_explained"
WITHDRAWN = "health.explanation_withdrawn"
EXPLANATION_MONTHS = 3  # how many later months an explanation covers unless the consultant chooses otherwise
MAX_EXPLANATION_MONTHS = 12
ENDED_SHOWN = 10
BOARD_KINDS = {"risk": "risk", "decision": "decision needed", "work": "work item"}
ESCALATABLE = {rule_engine.RED, rule_engine.WATCH, rule_engine.EXPLAINED}


# --------------------------------------------------------------------------------------------------
# Explanations: a red flag accepted, for this run and the next months


def explanations_in_force(engagement, period: date) -> dict[tuple[str, str, str], FlagExplanation]:
    """{(task_key, metric, key): explanation} of earlier months covering `period`: not withdrawn, not expired.

    When two cover the same flag, the one written for the later month wins."""
    found: dict[tuple[str, str, str], FlagExplanation] = {}
    for explanation in (
        FlagExplanation.objects.for_org(engagement.organization)
        .filter(
            engagement=engagement,
            from_period__lt=period,
            until_period__gte=period,
            withdrawn_at__isnull=True,
        )
        .order_by("-from_period", "-created_at")
    ):
        found.setdefault((explanation.task_key, explanation.metric, explanation.key), explanation)
    return found


def carry_explanations(run: HealthCheckRun, results: list[HealthResult]) -> None:
    """A flag red again while an earlier month's explanation of it is in force shows as explained, with it."""
    if not any(r.status == rule_engine.RED for r in results):
        return
    in_force = explanations_in_force(run.engagement, run.period)
    for result in results:
        explanation = in_force.get((result.task_key, result.metric, result.key))
        if result.status == rule_engine.RED and explanation is not None:
            result.status = rule_engine.EXPLAINED
            result.explanation = explanation.explanation
            result.explained_by_id = explanation.explained_by_id
            result.carried_from = explanation


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


# --------------------------------------------------------------------------------------------------
# The board: a flag turned into a risk, a decision-needed card or a work item


def run_url(run: HealthCheckRun, result: HealthResult | None = None) -> str:
    path = reverse(
        "reporting:run-detail",
        kwargs={"org_slug": run.organization.slug, "engagement_uuid": run.engagement.uuid, "run_uuid": run.uuid},
    )
    return f"{settings.SITE_URL}{path}{f'#result-{result.uuid}' if result else ''}"


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


# --------------------------------------------------------------------------------------------------
# Review items: a task without a machine rule, reviewed and recorded by a person


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
