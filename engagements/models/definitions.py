"""Definition alignment: the draft terms and stage architecture, published versions sealed with a hash,
and the client's signatures.

The draft (DefinitionTerm, StageDefinition rows) is what consultants edit. Publishing copies it into a
DefinitionVersion whose `content` is the canonical serialisation and whose `content_hash` is its SHA-256;
a version never changes after that. Signatures are append-only rows that quote the hash they signed.
"""

from django.conf import settings
from django.db import models

from accounts.models import DomainError
from accounts.tenancy import OrgQuerySet, TenantModel


class StageDomain(models.TextChoices):
    LEAD = "lead", "Lead"
    SALES = "sales", "Sales"
    CUSTOMER = "customer", "Customer"
    COMPANY = "company", "Company"
    POC = "poc", "POC/POV"
    RENEWAL = "renewal", "Renewal"
    PARTNER = "partner", "Partner"


class DefinitionTerm(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="terms")
    key = models.SlugField(max_length=80)
    term = models.CharField(max_length=200)
    definition = models.TextField()
    notes = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)
    stage_keys = models.JSONField(default=list, blank=True, help_text="Stages this term refers to.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["engagement", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["engagement", "key"], name="unique_term_key")]

    def __str__(self) -> str:
        return self.term


class StageDefinition(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="stages")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=20, choices=StageDomain.choices)
    order = models.PositiveIntegerField(default=0)
    entry_criteria = models.TextField(blank=True)
    exit_criteria = models.TextField(blank=True)
    transition_owner = models.CharField(max_length=200, blank=True)
    golden = models.BooleanField(default=False, help_text="A golden stage every record must pass through.")
    crm_object = models.CharField(max_length=80, blank=True, help_text="e.g. Lead, Contact, Opportunity, deals")
    crm_field = models.CharField(max_length=120, blank=True, help_text="Field or pipeline that holds the stage.")
    crm_values = models.JSONField(default=list, blank=True, help_text="Picklist values or stage ids.")
    term_keys = models.JSONField(default=list, blank=True, help_text="Terms this stage refers to.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["engagement", "domain", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["engagement", "key"], name="unique_stage_key")]

    def __str__(self) -> str:
        return self.name


class VersionQuerySet(OrgQuerySet):
    def for_stakeholder(self, stakeholder) -> "VersionQuerySet":
        """Versions of the engagements the stakeholder takes part in (see Engagement.objects.visible_to)."""
        return self.filter(
            organization_id=stakeholder.organization_id,
            engagement__client_id=stakeholder.client_id,
            engagement__stakeholder_roles__stakeholder=stakeholder,
        )


class DefinitionVersion(TenantModel):
    engagement = models.ForeignKey(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="definition_versions"
    )
    number = models.PositiveIntegerField()
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True, help_text="When the last required approval arrived.")

    objects = VersionQuerySet.as_manager()

    class Meta:
        ordering = ["engagement", "-number"]
        constraints = [models.UniqueConstraint(fields=["engagement", "number"], name="unique_definition_version")]

    def __str__(self) -> str:
        return f"v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None and set(kwargs.get("update_fields") or ()) != {"signed_at"}:
            raise DomainError("A published definition version never changes; edit the draft and publish anew.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise DomainError("A published definition version is kept for good.")

    @property
    def items(self) -> list[tuple[str, str]]:
        """(item key, label) for every term and stage, in document order: what signers approve."""
        return [(f"term:{t['key']}", t["term"]) for t in self.content["terms"]] + [
            (f"stage:{s['key']}", s["name"]) for s in self.content["stages"]
        ]


class SignoffRequest(TenantModel):
    """A stakeholder the consultant requires to sign a version."""

    version = models.ForeignKey(DefinitionVersion, on_delete=models.CASCADE, related_name="requests")
    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "stakeholder"], name="unique_signoff_request")]


class AppendOnlyQuerySet(OrgQuerySet):
    def update(self, **kwargs):
        raise DomainError("Signatures are append-only.")

    def delete(self):
        raise DomainError("Signatures are append-only.")


SignatureQuerySet = AppendOnlyQuerySet


class Signature(TenantModel):
    """One signer's answer on one version: "yes" or "no" per item, with comments. Never edited."""

    version = models.ForeignKey(DefinitionVersion, on_delete=models.PROTECT, related_name="signatures")
    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.PROTECT, related_name="+")
    version_hash = models.CharField(max_length=64)
    decisions = models.JSONField(help_text='{"term:mql": "yes", "stage:sal": "no", ...}')
    comments = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    objects = SignatureQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["version", "stakeholder"], name="one_signature_per_signer")]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise DomainError("Signatures are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise DomainError("Signatures are append-only.")

    @property
    def approved_all(self) -> bool:
        return all(value == "yes" for value in self.decisions.values())


class VersionApprover(TenantModel):
    """An approver role the playbook names ("VP Sales"), as mapped when the version was published: the
    stakeholder who holds it, or the reason it was waived. Neither means the role is still unassigned, and the
    sign-off checkpoint cannot check itself."""

    version = models.ForeignKey(DefinitionVersion, on_delete=models.CASCADE, related_name="approvers")
    role = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0)
    stakeholder = models.ForeignKey(
        "engagements.Stakeholder", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    waiver_reason = models.TextField(blank=True)
    waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["version", "order"]
        constraints = [
            models.UniqueConstraint(fields=["version", "role"], name="unique_version_approver_role"),
            models.CheckConstraint(
                condition=models.Q(stakeholder__isnull=True) | models.Q(waiver_reason=""),
                name="approver_assigned_or_waived_not_both",
            ),
        ]

    def __str__(self) -> str:
        return self.role


class SignoffAnswer(TenantModel):
    """One answer a signer gave in the portal before submitting, saved as they gave it so nothing is lost on a
    reload. Append-only: a changed mind is a new row, the latest per item counts. Submitting seals the latest
    answers into the Signature, which quotes the version hash."""

    version = models.ForeignKey(DefinitionVersion, on_delete=models.CASCADE, related_name="answers")
    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.PROTECT, related_name="+")
    item_key = models.CharField(max_length=170)
    value = models.CharField(max_length=3, blank=True, help_text='"yes", "no", or "" (a comment typed first)')
    comment = models.TextField(blank=True)
    unchanged_since = models.ForeignKey(
        DefinitionVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Given by “approve all unchanged”: the earlier version in which this signer approved this text.",
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["version", "stakeholder", "item_key"], name="signoff_answer_lookup")]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise DomainError("Answers are append-only.")
        super().save(*args, **kwargs)


class Contest(TenantModel):
    """An item a signer answered No on, with the board card it opened. Resolved by the first later version that
    is fully signed: the card is then decided, naming that version."""

    version = models.ForeignKey(DefinitionVersion, on_delete=models.CASCADE, related_name="contests")
    item_key = models.CharField(max_length=170)
    label = models.CharField(max_length=200)
    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.PROTECT, related_name="+")
    comment = models.TextField()
    card = models.ForeignKey(
        "engagements.DecisionLogEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by = models.ForeignKey(
        DefinitionVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="resolved_contests"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Contested in v{self.version.number}: {self.label}"
