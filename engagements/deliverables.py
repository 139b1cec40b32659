"""The engagement's deliverables rendered from a definitions version: the Definition Alignment Document and the
Stage Reference Card. Registered with the deliverables pipeline, which renders them in a worker."""

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from deliverables import registry
from deliverables import services as pipeline
from deliverables.models import Artifact, ArtifactKind

from . import definitions
from .models import StageDomain

TEMPLATES = {
    ArtifactKind.DEFINITION_ALIGNMENT: "reports/definition_alignment.html",
    ArtifactKind.STAGE_REFERENCE_CARD: "reports/stage_reference_card.html",
}


@transaction.atomic
def request_artifact(*, engagement, kind: str, actor, source_version=None, request=None) -> Artifact:
    if kind not in TEMPLATES:
        raise DomainError(f"Unknown deliverable {kind!r}.")
    source_version = source_version or definitions.latest_version(engagement)
    if source_version is None:
        raise DomainError("Publish a version of the definitions first: deliverables are rendered from a version.")
    if source_version.engagement_id != engagement.pk:
        raise DomainError("That version belongs to another engagement.")
    artifact = pipeline.request(engagement=engagement, kind=kind, actor=actor, source_version=source_version)
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=artifact,
        verb="artifact.requested",
        data={"kind": kind, "version": source_version.number},
    )
    return artifact


def version_context(artifact: Artifact) -> dict:
    version = artifact.source_version
    if version is None:
        raise DomainError(f"{artifact.get_kind_display()} #{artifact.number} names no definitions version to render.")
    content = version.content
    domains = list(StageDomain.values)
    labels = dict(StageDomain.choices)
    stages = sorted(
        ({**s, "domain_label": labels.get(s["domain"], s["domain"])} for s in content["stages"]),
        key=lambda s: (domains.index(s["domain"]) if s["domain"] in domains else len(domains), s["order"]),
    )
    return {
        "organization": artifact.organization,
        "engagement": artifact.engagement,
        "client": artifact.engagement.client,
        "version": version,
        "status": definitions.version_status(version),
        "terms": content["terms"],
        "stages": stages,
        "generated_at": timezone.now(),
    }


for _kind, _template in TEMPLATES.items():
    registry.register(_kind, template=_template, context=version_context)


def retry_artifact(*, artifact: Artifact, actor, request=None) -> Artifact:
    """Render a failed deliverable of the engagement again (any kind: the pipeline knows how)."""
    if not pipeline.retry(artifact):
        raise DomainError(f"{artifact} has not failed: there is nothing to retry.")
    activity.record(
        organization=artifact.organization,
        actor=actor,
        request=request,
        target=artifact,
        verb="artifact.retried",
        data={"kind": artifact.kind, "error": artifact.error[:200]},
    )
    artifact.refresh_from_db()
    return artifact
