"""The weekly operating cadence: the shared delivery board's items, the decision log and weekly updates.

The board's five lanes (delivery model, seed 000) are queries over these rows, not a stored lane field:
work in progress and upcoming work are WorkItems, decisions needed are open DecisionLogEntries, risks
are open Risks, completed releases are released Releases.
"""

from django.conf import settings
from django.db import models

from accounts.tenancy import OrgQuerySet, TenantModel


class BoardQuerySet(OrgQuerySet):
    def client_visible(self):
        return self.filter(client_visible=True)


class BoardItem(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=300)
    client_visible = models.BooleanField(default=False, help_text="Shown to the client's stakeholders in their portal.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = BoardQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title


class WorkStatus(models.TextChoices):
    UPCOMING = "upcoming", "Upcoming"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class WorkItem(BoardItem):
    detail = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=WorkStatus.choices, default=WorkStatus.UPCOMING)
    owner = models.CharField(max_length=120, blank=True)
    due_date = models.DateField(null=True, blank=True)
    tested = models.TextField(blank=True, help_text="What was tested, for the weekly update.")


class DecisionCategory(models.TextChoices):
    """The fourteen decision categories of the delivery model's decision log (seed 000)."""

    LIFECYCLE_DEFINITIONS = "lifecycle_definitions", "Lifecycle definitions"
    PIPELINE_STAGES = "pipeline_stages", "Pipeline stages"
    QUALIFICATION_RULES = "qualification_rules", "Qualification rules"
    OWNERSHIP = "ownership", "Ownership"
    HANDOFFS = "handoffs", "Handoffs"
    REQUIRED_FIELDS = "required_fields", "Required fields"
    DATA_STANDARDS = "data_standards", "Data standards"
    PERMISSIONS = "permissions", "Permissions"
    WORKFLOW_TRIGGERS = "workflow_triggers", "Workflow triggers"
    APPROVAL_STEPS = "approval_steps", "Approval steps"
    INTEGRATION_OWNERSHIP = "integration_ownership", "Integration ownership"
    ERROR_HANDLING = "error_handling", "Error handling"
    REPORTING_DEFINITIONS = "reporting_definitions", "Reporting definitions"
    ADMINISTRATIVE_PROCEDURES = "administrative_procedures", "Administrative procedures"


class DecisionStatus(models.TextChoices):
    NEEDED = "needed", "Decision needed"
    DECIDED = "decided", "Decided"
    SUPERSEDED = "superseded", "Superseded"


class DecisionLogEntry(BoardItem):
    category = models.CharField(max_length=40, choices=DecisionCategory.choices)
    context = models.TextField(blank=True)
    decision = models.TextField(blank=True)
    owner = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=20, choices=DecisionStatus.choices, default=DecisionStatus.NEEDED)
    decided_on = models.DateField(null=True, blank=True)
    gate = models.ForeignKey("engagements.Gate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta(BoardItem.Meta):
        verbose_name_plural = "decision log entries"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class RiskStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATED = "mitigated", "Mitigated"
    CLOSED = "closed", "Closed"


class Risk(BoardItem):
    description = models.TextField(blank=True)
    likelihood = models.CharField(max_length=10, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    impact = models.CharField(max_length=10, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    mitigation = models.TextField(blank=True)
    owner = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=RiskStatus.choices, default=RiskStatus.OPEN)


class ReleaseStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    RELEASED = "released", "Released"


class Release(BoardItem):
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.PLANNED)
    released_on = models.DateField(null=True, blank=True)
    gate_decision = models.ForeignKey(
        "engagements.GateDecision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class FeedbackItem(BoardItem):
    detail = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Who gave the feedback.")
    resolved = models.BooleanField(default=False)


class UpdateStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class WeeklyUpdate(TenantModel):
    """The weekly written update, in the delivery model's four sections."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="updates")
    week_start = models.DateField(help_text="The Monday of the week the update covers.")
    what_changed = models.TextField(blank=True)
    what_was_tested = models.TextField(blank=True)
    needs_decision = models.TextField(blank=True)
    what_happens_next = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=UpdateStatus.choices, default=UpdateStatus.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-week_start"]
        constraints = [
            models.UniqueConstraint(fields=["engagement", "week_start"], name="one_update_per_engagement_week")
        ]

    def __str__(self) -> str:
        return f"Week of {self.week_start:%d %b %Y}"
