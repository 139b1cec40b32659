import uuid

from django.conf import settings
from django.db import models

from accounts.tenancy import OrgQuerySet, TenantModel


class ArtifactKind(models.TextChoices):
    DEFINITION_ALIGNMENT = "definition_alignment", "Definition Alignment Document"
    STAGE_REFERENCE_CARD = "stage_reference_card", "Stage Reference Card"


class ArtifactStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class ArtifactQuerySet(OrgQuerySet):
    def ready(self) -> "ArtifactQuerySet":
        return self.filter(status=ArtifactStatus.DONE)


def artifact_path(artifact: "Artifact", filename: str) -> str:
    return f"artifacts/{artifact.organization.uuid}/{artifact.engagement.uuid}/{filename}"


class Artifact(TenantModel):
    """A rendered deliverable (PDF): a versioned file with its hash, its source and who asked for it."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=40, choices=ArtifactKind.choices)
    number = models.PositiveIntegerField(help_text="Artifact version: 1, 2, ... per engagement and kind.")
    source_version = models.ForeignKey(
        "engagements.DefinitionVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="artifacts"
    )
    status = models.CharField(max_length=10, choices=ArtifactStatus.choices, default=ArtifactStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to=artifact_path, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    download_token = models.UUIDField(default=uuid.uuid4, editable=False)

    objects = ArtifactQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["engagement", "kind", "number"], name="unique_artifact_number")]

    def __str__(self) -> str:
        source = f" (definitions v{self.source_version.number})" if self.source_version_id else ""
        return f"{self.get_kind_display()} #{self.number}{source}"

    @property
    def filename(self) -> str:
        client = self.engagement.client.name.replace(" ", "-")
        return f"{client}-{self.kind.replace('_', '-')}-{self.number}.pdf"
