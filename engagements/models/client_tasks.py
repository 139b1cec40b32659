from django.db import models

from accounts.tenancy import TenantModel


class TaskDigest(TenantModel):
    """The daily email to one stakeholder about their overdue tasks. The row is claimed before the email is sent
    and is unique per stakeholder and day, so duplicate beat ticks or retried tasks send at most one a day."""

    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    tasks = models.PositiveIntegerField(default=0, help_text="How many overdue tasks the email listed.")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stakeholder", "day"], name="one_task_digest_per_day")]

    def __str__(self) -> str:
        return f"Task digest for {self.stakeholder_id} on {self.day}"
