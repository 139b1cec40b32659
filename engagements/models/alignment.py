"""The refinement loop: meetings, and versions v0, v1, ... of the architecture whose items move from
ASSUMED to CONFIRMED or CORRECTED. Critical items still assumed block the strategy sign-off gate."""

from django.db import models

from accounts.tenancy import TenantModel


class MeetingType(models.TextChoices):
    KICKOFF = "kickoff", "Kickoff"
    REFINEMENT = "refinement", "Refinement"
    ALIGNMENT = "alignment", "Alignment"
    SIGN_OFF = "sign_off", "Sign-off"


class Meeting(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="meetings")
    type = models.CharField(max_length=20, choices=MeetingType.choices)
    sequence = models.PositiveIntegerField(default=1)
    held_on = models.DateField()
    attendees = models.ManyToManyField("engagements.Stakeholder", blank=True, related_name="+")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["held_on", "id"]

    def __str__(self) -> str:
        n = f" {self.sequence}" if self.type in (MeetingType.REFINEMENT, MeetingType.ALIGNMENT) else ""
        return f"{self.get_type_display()}{n} ({self.held_on:%d %b %Y})"


class ArchitectureVersion(TenantModel):
    engagement = models.ForeignKey(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="architecture_versions"
    )
    number = models.PositiveIntegerField()
    meeting = models.ForeignKey(Meeting, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["engagement", "number"]
        constraints = [models.UniqueConstraint(fields=["engagement", "number"], name="unique_architecture_version")]

    def __str__(self) -> str:
        return f"v{self.number}"


class AssumptionStatus(models.TextChoices):
    ASSUMED = "assumed", "Assumed"
    CONFIRMED = "confirmed", "Confirmed"
    CORRECTED = "corrected", "Corrected"


class AssumptionItem(TenantModel):
    version = models.ForeignKey(ArchitectureVersion, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=120, help_text="Stable across versions, so versions can be compared.")
    document = models.CharField(max_length=120, blank=True, help_text="The working document the item lives in.")
    text = models.TextField()
    status = models.CharField(max_length=10, choices=AssumptionStatus.choices, default=AssumptionStatus.ASSUMED)
    critical = models.BooleanField(default=False)
    correction = models.TextField(blank=True)

    class Meta:
        ordering = ["version", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="unique_assumption_key")]

    def __str__(self) -> str:
        return self.text
