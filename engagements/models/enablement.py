"""Enablement and handoff: training sessions, hypercare KPI readings and the retention path after handoff."""

from django.conf import settings
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


class KpiReading(TenantModel):
    """One figure of a hypercare KPI (playbook ``hypercare.kpis``), entered by hand as measured on a day."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="kpi_readings")
    kpi = models.CharField(max_length=80, help_text="Key of the playbook's hypercare KPI.")
    measured_on = models.DateField()
    value = models.DecimalField(max_digits=12, decimal_places=2)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["measured_on", "created_at"]
        indexes = [models.Index(fields=["engagement", "kpi", "measured_on"])]


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
