"""Deliverables: queue a render, render it in a worker, keep the file with its hash."""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError

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
