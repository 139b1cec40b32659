"""The Artifact: one rendered deliverable (PDF), versioned per engagement and kind, with its file and SHA-256.

The table is still `reporting_artifact`: the model moved here from reporting without moving its rows.
"""

import re
import unicodedata
from uuid import uuid4

from django.conf import settings
from django.db import models

from gtm_ops.runs import Leased, Lifecycle
from gtm_ops.tenancy import OrgQuerySet

from . import registry


class ArtifactKind(models.TextChoices):
    DEFINITION_ALIGNMENT = "definition_alignment", "Definition Alignment Document"
    STAGE_REFERENCE_CARD = "stage_reference_card", "Stage Reference Card"
    HEALTH_CHECK_REPORT = "health_check_report", "Health-Check Report"
    CURRENT_STATE_AUDIT = "current_state_audit", "Current State Audit"
    CRM_CONFIGURATION_SPEC = "crm_configuration_spec", "CRM Configuration Spec"
    CRM_FIELD_MAPPING_SHEET = "crm_field_mapping_sheet", "CRM Field Mapping Sheet"


class ArtifactStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


# The only moves a render may make. A failed render goes back to the queue when someone retries it; a done one
# never changes again (a new version is a new artifact).
TRANSITIONS: dict[str, frozenset[str]] = {
    ArtifactStatus.QUEUED: frozenset({ArtifactStatus.RENDERING, ArtifactStatus.FAILED}),
    ArtifactStatus.RENDERING: frozenset({ArtifactStatus.DONE, ArtifactStatus.FAILED}),
    ArtifactStatus.FAILED: frozenset({ArtifactStatus.QUEUED}),
    ArtifactStatus.DONE: frozenset(),
}

SLUG_LENGTH = 60


def safe_slug(text: str, fallback: str = "client") -> str:
    """ASCII letters, digits and dashes only, case kept: a client's name may hold `/`, `\\`, quotes, NUL or
    300 characters, and none of it may reach a path or a Content-Disposition header."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:SLUG_LENGTH].strip("-")
    return slug or fallback


class ArtifactQuerySet(OrgQuerySet):
    def ready(self) -> "ArtifactQuerySet":
        return self.filter(status=ArtifactStatus.DONE)


def artifact_path(artifact: "Artifact", filename: str) -> str:
    return f"artifacts/{artifact.organization.uuid}/{artifact.engagement.uuid}/{filename}"


class Artifact(Leased, models.Model):
    """A rendered deliverable (PDF): a versioned file with its hash, its source and who asked for it."""

    # The tenant fields of accounts.tenancy.TenantModel, spelled out: this layer imports no app of ours.
    uuid = models.UUIDField(default=uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=40, choices=ArtifactKind.choices)
    number = models.PositiveIntegerField(help_text="Artifact version: 1, 2, ... per engagement and kind.")
    source_version = models.ForeignKey(
        "engagements.DefinitionVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="artifacts"
    )
    status = models.CharField(max_length=10, choices=ArtifactStatus.choices, default=ArtifactStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # 255: the path's two UUIDs take 84 characters, and the stored file keeps its whole download name
    file = models.FileField(upload_to=artifact_path, blank=True, max_length=255)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    download_token = models.UUIDField(default=uuid4, editable=False)

    objects = ArtifactQuerySet.as_manager()

    class Meta:
        db_table = "reporting_artifact"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["engagement", "kind", "number"], name="unique_artifact_number")]

    def __str__(self) -> str:
        source = f" (definitions v{self.source_version.number})" if self.source_version is not None else ""
        return f"{self.get_kind_display()} #{self.number}{source}"

    @property
    def filename(self) -> str:
        """The name of the file, the download and the email attachment: built only from a safe slug of the
        client's name, the kind and the artifact's number, whatever the name holds."""
        client = safe_slug(self.engagement.client.name)
        name = registry.get(self.kind).name
        tail = safe_slug(name(self), fallback=self.kind) if name else f"{self.kind.replace('_', '-')}-{self.number}"
        return f"{client}-{tail}.pdf"

    def can_become(self, status: str) -> bool:
        return status in TRANSITIONS[self.status]


def _render_again(artifact_id: int) -> None:
    from .tasks import render_artifact  # the task module imports the services, which import this one

    render_artifact.delay(artifact_id)


# A render whose worker stopped is rendered again by a render worker, twice at most, then failed with the reason.
RENDERS = Lifecycle(
    name="render",
    model=Artifact,
    queued=ArtifactStatus.QUEUED,
    running=ArtifactStatus.RENDERING,
    failed=ArtifactStatus.FAILED,
    dispatch=_render_again,
)
