"""Deliverables: queue a render, render it in a worker, keep the file with its hash."""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError

from .charts import sparkline
from .models import Artifact, ArtifactKind, ArtifactStatus
from .pdf import render_pdf

logger = logging.getLogger(__name__)

TEMPLATES = {
    ArtifactKind.DEFINITION_ALIGNMENT: "reports/definition_alignment.html",
    ArtifactKind.STAGE_REFERENCE_CARD: "reports/stage_reference_card.html",
}


@transaction.atomic
def request_artifact(*, engagement, kind: str, actor, source_version=None, request=None) -> Artifact:
    from engagements import definitions

    from .tasks import render_artifact

    if kind not in TEMPLATES:
        raise DomainError(f"Unknown deliverable {kind!r}.")
    source_version = source_version or definitions.latest_version(engagement)
    if source_version is None:
        raise DomainError("Publish a version of the definitions first: deliverables are rendered from a version.")
    if source_version.engagement_id != engagement.pk:
        raise DomainError("That version belongs to another engagement.")
    number = (Artifact.objects.filter(engagement=engagement, kind=kind).aggregate(n=Max("number"))["n"] or 0) + 1
    artifact = Artifact.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        kind=kind,
        number=number,
        source_version=source_version,
        created_by=actor,
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=artifact,
        verb="artifact.requested",
        data={"kind": kind, "version": source_version.number},
    )
    transaction.on_commit(lambda: render_artifact.delay(artifact.pk))
    return artifact


def _progress(artifact: Artifact, percent: int) -> None:
    Artifact.objects.filter(pk=artifact.pk).update(progress=percent)


def report_context(artifact: Artifact) -> dict:
    from engagements import definitions

    version = artifact.source_version
    status = definitions.version_status(version)
    content = version.content
    from engagements.models import StageDomain

    domains = list(StageDomain.values)
    labels = dict(StageDomain.choices)
    stages = sorted(
        ({**s, "domain_label": labels.get(s["domain"], s["domain"])} for s in content["stages"]),
        key=lambda s: (domains.index(s["domain"]) if s["domain"] in domains else len(domains), s["order"]),
    )
    return {
        "artifact": artifact,
        "organization": artifact.organization,
        "engagement": artifact.engagement,
        "client": artifact.engagement.client,
        "version": version,
        "status": status,
        "terms": content["terms"],
        "stages": stages,
        "generated_at": timezone.now(),
    }


def render(artifact_id: int) -> Artifact | None:
    """Claim a queued artifact and render it; a second worker or a retry finds nothing to claim."""
    claimed = Artifact.objects.filter(pk=artifact_id, status=ArtifactStatus.QUEUED).update(
        status=ArtifactStatus.RENDERING, started_at=timezone.now(), progress=10
    )
    if not claimed:
        return None
    artifact = Artifact.objects.select_related("engagement__client", "organization", "source_version").get(
        pk=artifact_id
    )
    try:
        context = report_context(artifact)
        _progress(artifact, 40)
        pdf, pages = render_pdf(TEMPLATES[artifact.kind], context)
        _progress(artifact, 90)
        artifact.file.save(artifact.filename, ContentFile(pdf), save=False)
        artifact.sha256 = hashlib.sha256(pdf).hexdigest()
        artifact.size, artifact.pages = len(pdf), pages
        artifact.status, artifact.progress, artifact.finished_at = ArtifactStatus.DONE, 100, timezone.now()
        artifact.save(update_fields=["file", "sha256", "size", "pages", "status", "progress", "finished_at"])
    except Exception as exc:  # the row must say why; a render never stays "rendering" forever
        logger.exception("Rendering artifact %s failed", artifact_id)
        Artifact.objects.filter(pk=artifact_id).update(
            status=ArtifactStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        return None
    return artifact


def health_report_context(run) -> dict:
    from django.utils.safestring import mark_safe

    from .models import Granularity, HealthResult, MetricValue
    from .rules import NOT_YET_DUE

    order = {"red": 0, "not_evaluable": 1, "watch": 2, "explained": 3, "info": 4, "ok": 5}
    results = sorted(
        HealthResult.objects.filter(run=run).select_related("explained_by", "carried_from"),
        key=lambda r: (order.get(r.status, 9), r.task_name, r.key),
    )
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
        result.trend = mark_safe(sparkline([series.get(p) for p in periods]))  # noqa: S308 - our SVG of numbers
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


def render_health_report(run) -> Artifact:
    """Render the Health-Check Report inside the run's worker and keep it as a versioned artifact."""
    kind = ArtifactKind.HEALTH_CHECK_REPORT
    engagement = run.engagement
    number = (Artifact.objects.filter(engagement=engagement, kind=kind).aggregate(n=Max("number"))["n"] or 0) + 1
    artifact = Artifact.objects.create(
        organization=run.organization,
        engagement=engagement,
        kind=kind,
        number=number,
        created_by=engagement.maintenance_schedule.started_by,
        status=ArtifactStatus.RENDERING,
        started_at=timezone.now(),
    )
    pdf, pages = render_pdf("reports/health_check_report.html", {**health_report_context(run), "artifact": artifact})
    artifact.file.save(
        f"{engagement.client.name.replace(' ', '-')}-health-check-{run.period:%Y-%m}.pdf", ContentFile(pdf), save=False
    )
    artifact.sha256, artifact.size, artifact.pages = hashlib.sha256(pdf).hexdigest(), len(pdf), pages
    artifact.status, artifact.progress, artifact.finished_at = ArtifactStatus.DONE, 100, timezone.now()
    artifact.save()
    type(run).objects.for_org(run.organization_id).filter(pk=run.pk).update(report=artifact)
    return artifact


def health_email_context(delivery) -> dict:
    from django.core import signing
    from django.urls import reverse

    from engagements.models import Stakeholder

    context = health_report_context(delivery.run)
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
        "path": "/portal/"
        if stakeholder
        else f"/o/{delivery.organization.slug}/engagements/{delivery.run.engagement.uuid}/",
    }


def health_attachments(run) -> list[tuple[str, bytes, str]]:
    if run.report_id is None:
        return []
    with run.report.file.open("rb") as handle:
        return [(run.report.file.name.rsplit("/", 1)[-1], handle.read(), "application/pdf")]
