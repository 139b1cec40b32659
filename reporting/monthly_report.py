"""The monthly Health-Check Report and its email, in one place: who receives it, the PDF, each recipient's
email and its attachment.

A run's steps (runs.py) render the report once (through the deliverables pipeline) and send one email per
recipient: `claim_delivery` claims its row, `send_delivery` sends it and marks it sent. When the render fails the
run fails with the reason and no email goes out; the report's retry takes the run on to its emails (`report_done`).
"""

import logging
import re

from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from accounts.emails import send_email
from deliverables import services as pipeline
from deliverables.charts import sparkline
from deliverables.models import Artifact, ArtifactKind, ArtifactStatus
from engagements.models import EngagementStakeholder, Stakeholder

from .health_rules import NOT_YET_DUE
from .models import (
    DELIVERIES,
    HEALTH_RUNS,
    DeliveryStatus,
    Granularity,
    HealthCheckRun,
    HealthResult,
    MetricValue,
    ReportDelivery,
    RunStatus,
    RunStep,
)

logger = logging.getLogger(__name__)
REPORT_MONTH = re.compile(r"health-check-(\d{4}-\d{2})")


def health_report_context(run: HealthCheckRun, *, trends: bool = True) -> dict:
    """The report's results, grouped; `trends` adds each figure's last months as a line (the PDF and the page show
    them, an email does not)."""
    order = {"red": 0, "not_evaluable": 1, "watch": 2, "explained": 3, "info": 4, "ok": 5}
    results = sorted(
        HealthResult.objects.filter(run=run).select_related("explained_by", "carried_from"),
        key=lambda r: (order.get(r.status, 9), r.task_name, r.key),
    )
    if trends:
        _add_trends(run, results)
    return {
        "run": run,
        "engagement": run.engagement,
        "client": run.engagement.client,
        "organization": run.organization,
        "results": results,
        "red": [r for r in results if r.status == "red"],
        "not_evaluable": [r for r in results if r.status == "not_evaluable"],
        # ... of which: figures or decisions missing, and tasks a person reviews and records (done ones are ok)
        "data_needed": [r for r in results if r.status == "not_evaluable" and not r.is_review_item],
        "review_items": [r for r in results if r.is_review_item],
        "not_yet_due": [r for r in results if r.status == "info" and r.message.startswith(NOT_YET_DUE)],
        "explained": [r for r in results if r.status == "explained"],
        "generated_at": timezone.now(),
    }


def _add_trends(run: HealthCheckRun, results: list[HealthResult]) -> None:
    history: dict[tuple[str, str], dict] = {}
    for row in (
        MetricValue.objects.for_org(run.organization)
        .filter(engagement=run.engagement, granularity=Granularity.MONTH, period__lte=run.period)
        .order_by("period")
    ):
        history.setdefault((row.metric, row.key), {})[row.period] = row.value
    periods = sorted({p for series in history.values() for p in series})[-6:]
    for result in results:
        series = history.get((result.metric, result.key), {})
        result.trend = mark_safe(sparkline([series.get(p) for p in periods]))  # type: ignore[attr-defined]  # noqa: S308 - our SVG of numbers


# ---------------------------------------------------------------- the report, through the deliverables pipeline


def run_of(artifact: Artifact) -> HealthCheckRun:
    return HealthCheckRun.objects.select_related("engagement__client", "organization").get(
        report=artifact, organization=artifact.organization
    )


def report_context(artifact: Artifact) -> dict:
    return health_report_context(run_of(artifact))


def report_name(artifact: Artifact) -> str:
    run = HealthCheckRun.objects.filter(report=artifact, organization=artifact.organization).only("period").first()
    if run is not None:
        return f"health-check-{run.period:%Y-%m}"
    # An earlier version (recording a review rendered the next one, which the run points at now): its month is in
    # the name it was rendered under (its download must not fail).
    rendered = REPORT_MONTH.search(artifact.file.name or "")
    return f"health-check-{rendered.group(1)}" if rendered else f"health-check-v{artifact.number}"


def report_done(artifact: Artifact) -> None:
    """A retried report is rendered: the run that waited for it goes on to its emails."""
    from .runs import report_rendered  # the run's steps call into this module

    report_rendered(run_of(artifact))


def render_health_report(run: HealthCheckRun) -> Artifact:
    """Render the Health-Check Report inside the run's worker and keep it as a versioned artifact of the run.
    A failed render is on the artifact (failed, with the reason), not raised."""
    with transaction.atomic():  # requested and linked together: a run that stops in between finds it again
        artifact = pipeline.request(
            engagement=run.engagement,
            kind=ArtifactKind.HEALTH_CHECK_REPORT,
            actor=run.engagement.maintenance_schedule.started_by,
            queue=False,
        )
        HealthCheckRun.objects.for_org(run.organization_id).filter(pk=run.pk).update(report=artifact)
    pipeline.render(artifact.pk)
    artifact.refresh_from_db()
    return artifact


def complete_run(run: HealthCheckRun, *, email: bool = True) -> list[ReportDelivery]:
    """Take an evaluated run (succeeded or partial) on to its report and, with `email`, its emails, through its
    lifecycle: on the workers when a broker is set, inline otherwise. Returns the run's deliveries."""
    goal = RunStep.SEND if email else RunStep.REPORT
    HEALTH_RUNS.reopen(run.pk, (RunStatus.SUCCEEDED, RunStatus.PARTIAL), goal=goal, step=RunStep.REPORT)
    return list(ReportDelivery.objects.for_org(run.organization_id).filter(run=run))


# ---------------------------------------------------------------- the emails


def health_report_recipients(run: HealthCheckRun) -> list[tuple[str, str]]:
    """The engagement's chosen stakeholders who still want the report, and the consultants."""
    engagement = run.engagement
    people = [
        (s.stakeholder.email, s.stakeholder.name)
        for s in EngagementStakeholder.objects.for_org(run.organization)
        .recipients_of(engagement, "health_report")
        .select_related("stakeholder")
    ]
    for membership in engagement.consultants_to_notify(owners="if_no_team"):
        people.append((membership.user.email, membership.user.get_full_name()))
    seen, unique = set(), []
    for email, name in people:
        if email.lower() not in seen:
            seen.add(email.lower())
            unique.append((email, name))
    return unique


def plan_deliveries(run: HealthCheckRun) -> list[ReportDelivery]:
    for email, name in health_report_recipients(run):
        ReportDelivery.objects.get_or_create(
            organization=run.organization, run=run, email=email, defaults={"name": name}
        )
    return list(run.deliveries.filter(status=DeliveryStatus.PENDING))


def health_email_context(delivery: ReportDelivery) -> dict:
    context = health_report_context(delivery.run, trends=False)
    stakeholder = (
        Stakeholder.objects.for_org(delivery.organization)
        .filter(client=delivery.run.engagement.client, email=delivery.email)
        .first()
    )
    unsubscribe = ""
    if stakeholder is not None:
        token = signing.dumps(str(stakeholder.uuid), salt="reporting.unsubscribe")
        unsubscribe = reverse("portal:unsubscribe", kwargs={"token": token})
    watch = [r for r in context["results"] if r.status == "watch"]
    return {
        **context,
        "delivery": delivery,
        "watch": watch,
        "unsubscribe_path": unsubscribe,
        "path": reverse("portal:home")
        if stakeholder
        else reverse("engagements:engagement-detail", args=[delivery.organization.slug, delivery.run.engagement.uuid]),
    }


def health_attachments(run: HealthCheckRun) -> list[tuple[str, bytes, str]]:
    report = run.report
    if report is None or report.status != ArtifactStatus.DONE or not report.file:
        return []
    with report.file.open("rb") as handle:
        return [(report.filename, handle.read(), "application/pdf")]


def claim_delivery(delivery_id: int) -> ReportDelivery | None:
    """pending -> sending under a lease, once: a second worker or a retried task finds nothing to claim."""
    if DELIVERIES.claim(delivery_id) is None:
        return None
    return (
        ReportDelivery.objects.for_task(delivery_id)
        .select_related("run__engagement__client", "run__report", "organization")
        .get()
    )


def send_delivery(delivery: ReportDelivery) -> None:
    """Send one claimed delivery's email and mark it sent; raises the mail error for the run to retry or give up.

    Between the mail server's "accepted" and the mark, a worker that dies leaves the delivery sending: the run
    that takes it back sends this one email once more (the at-least-once window, one message wide)."""
    send_email(
        "health-report",
        to=delivery.email,
        context=health_email_context(delivery),
        attachments=health_attachments(delivery.run),
    )
    DELIVERIES.finish(delivery.pk, delivery.worker, DeliveryStatus.SENT, sent_at=timezone.now())


def delivery_failed(delivery: ReportDelivery, error: str, *, final: bool) -> None:
    """The mail server refused: back to pending for the next try, or failed for a person to resend."""
    if final:
        DELIVERIES.finish(delivery.pk, delivery.worker, DeliveryStatus.FAILED, error[:1000])
    else:
        DELIVERIES.release(delivery.pk, delivery.worker, retry_in=0, last_error=error[:1000])
