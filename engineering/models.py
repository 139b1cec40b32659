"""A CRM Configuration Spec (or, on a Partnership engagement, a CRM Field Mapping Sheet): a versioned JSON document
generated from a signed definitions version and the CRM's metadata, annotated and adjusted while a draft, then
approved; and the change plans that compare it with the live CRM."""

from django.conf import settings
from django.db import models

from accounts.tenancy import TenantModel


class SpecKind(models.TextChoices):
    CONFIGURATION_SPEC = "crm_configuration_spec", "CRM Configuration Spec"
    FIELD_MAPPING_SHEET = "crm_field_mapping_sheet", "CRM Field Mapping Sheet"


class SpecStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


# A draft is annotated and adjusted until it is approved; an approved spec never changes (a change is a new version).
TRANSITIONS: dict[str, frozenset[str]] = {
    SpecStatus.DRAFT: frozenset({SpecStatus.APPROVED}),
    SpecStatus.APPROVED: frozenset(),
}


class ConfigurationSpec(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="crm_specs")
    kind = models.CharField(max_length=40, choices=SpecKind.choices)
    number = models.PositiveIntegerField(help_text="Spec version: 1, 2, ... per engagement and kind.")
    platform = models.CharField(max_length=20)
    source_version = models.ForeignKey(
        "engagements.DefinitionVersion", on_delete=models.PROTECT, related_name="crm_specs"
    )
    source_hash = models.CharField(max_length=64, help_text="The signed definitions version's content hash.")
    metadata_hash = models.CharField(max_length=64, help_text="SHA-256 of the CRM metadata the spec was built on.")
    document = models.JSONField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=SpecStatus.choices, default=SpecStatus.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    decision = models.ForeignKey(
        "engagements.DecisionLogEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pdf = models.ForeignKey("deliverables.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["engagement", "kind", "number"], name="unique_crm_spec_number")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.status == SpecStatus.DRAFT

    def can_become(self, status: str) -> bool:
        return status in TRANSITIONS[self.status]


class SpecNote(TenantModel):
    """A consultant's note on one item of a draft spec, and the adjustment it made, if any (before -> after)."""

    spec = models.ForeignKey(ConfigurationSpec, on_delete=models.CASCADE, related_name="notes")
    item = models.CharField(max_length=300, help_text="The item's id in the spec document.")
    text = models.TextField(blank=True)
    attribute = models.CharField(max_length=40, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]


class ChangePlan(TenantModel):
    """The spec compared with the live CRM: one operation per difference, each with its effect in records. Bound to
    the spec's hash and to the metadata it read, so apply (next) can refuse a CRM that changed since."""

    spec = models.ForeignKey(ConfigurationSpec, on_delete=models.CASCADE, related_name="plans")
    spec_sha256 = models.CharField(max_length=64)
    metadata_hash = models.CharField(max_length=64)
    operations = models.JSONField(default=list)
    held = models.JSONField(default=list, help_text="Destructive operations held back: no mapping target yet.")
    unreadable = models.JSONField(default=list, help_text="What the read could not see, in words.")
    calls = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    purpose = models.CharField(max_length=10, default="plan", help_text="plan, or verify (a read after the build).")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Change plan for {self.spec}"

    @property
    def drift(self) -> int:
        return len(self.operations) + len(self.held)
