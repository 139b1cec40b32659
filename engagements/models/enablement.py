"""Enablement and handoff: training sessions and the retention path after handoff."""

from django.db import models

from accounts.tenancy import TenantModel


class TrainingSession(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="trainings")
    training_type = models.CharField(max_length=80, help_text="Key of the playbook's training type.")
    audience = models.CharField(max_length=300, blank=True)
    held_on = models.DateField()
    recorded = models.BooleanField(default=False)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["held_on"]


class RetentionAction(models.TextChoices):
    UPSELL = "upsell", "Upsell"
    DOWNSELL = "downsell", "Downsell"
    RETRY_RETAINER = "retry_retainer", "Retry the retainer"


class RetentionOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"


class RetentionStep(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="retention")
    action = models.CharField(max_length=20, choices=RetentionAction.choices)
    outcome = models.CharField(max_length=10, choices=RetentionOutcome.choices)
    offer = models.TextField(blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
