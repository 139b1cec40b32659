"""The client's side of an engagement: its intake form and answers, the files it uploads, documents shared to it."""

from pathlib import Path
from uuid import uuid4

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.deconstruct import deconstructible

from accounts.tenancy import TenantModel
from playbooks.schema import IntakeField
from playbooks.schema import IntakeForm as IntakeSpec


@deconstructible
class PrivateStorage(FileSystemStorage):
    """Files under PRIVATE_MEDIA_ROOT, outside the web root and MEDIA_URL: only views that check access serve them."""

    @property
    def base_location(self):  # read at use, so a test's settings override applies
        return settings.PRIVATE_MEDIA_ROOT

    @property
    def location(self):
        return str(Path(self.base_location).resolve())

    def url(self, name):
        raise ValueError("A private file has no public URL: serve it through a view that checks access.")


def private_path(instance: "IntakeFile", filename: str) -> str:
    # Per organization and engagement; the stored name is random, the client's file name is kept on the row.
    return f"{instance.organization.uuid}/{instance.engagement.uuid}/{uuid4().hex}{Path(filename).suffix.lower()}"


class IntakeStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUBMITTED = "submitted", "Submitted"


class IntakeForm(TenantModel):
    """The playbook's intake form, copied at engagement creation so later playbook edits leave it alone."""

    engagement = models.OneToOneField("engagements.Engagement", on_delete=models.CASCADE, related_name="intake")
    spec = models.JSONField(help_text="The playbook's intake block as it was when the engagement started.")
    status = models.CharField(max_length=10, choices=IntakeStatus.choices, default=IntakeStatus.OPEN)
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        "engagements.Stakeholder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} · {self.engagement}"

    @property
    def definition(self) -> IntakeSpec:
        return IntakeSpec.model_validate(self.spec)

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def fields(self) -> list[IntakeField]:
        return self.definition.fields

    @property
    def is_submitted(self) -> bool:
        return self.status == IntakeStatus.SUBMITTED


class IntakeAnswer(TenantModel):
    form = models.ForeignKey(IntakeForm, on_delete=models.CASCADE, related_name="answers")
    field_key = models.CharField(max_length=80)
    value = models.JSONField()
    answered_by = models.ForeignKey(
        "engagements.Stakeholder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["form", "field_key"], name="one_answer_per_intake_field")]


class IntakeFile(TenantModel):
    """A file the client uploaded for an intake field (a stage export, a screenshot)."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="intake_files")
    form = models.ForeignKey(IntakeForm, on_delete=models.CASCADE, related_name="files")
    field_key = models.CharField(max_length=80)
    file = models.FileField(storage=PrivateStorage(), upload_to=private_path, max_length=255)
    name = models.CharField(max_length=255, help_text="The file's name on the client's machine.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        "engagements.Stakeholder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name


class SharedDocument(TenantModel):
    """A rendered deliverable or a link (the playbook's intro video) a consultant shared to the client's portal."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="shared_documents")
    title = models.CharField(max_length=200)
    artifact = models.ForeignKey(
        "deliverables.Artifact", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    url = models.URLField(blank=True)
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(artifact__isnull=False) & models.Q(url=""))
                | (models.Q(artifact__isnull=True) & ~models.Q(url="")),
                name="shared_document_is_an_artifact_or_a_link",
            )
        ]

    def __str__(self) -> str:
        return self.title
