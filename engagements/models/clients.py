from django.db import models

from accounts.tenancy import TenantModel


class ClientAccount(TenantModel):
    """A client company of the consultancy."""

    name = models.CharField(max_length=200)
    website = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_client_name_per_org")]

    def __str__(self) -> str:
        return self.name


class Department(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    SALES = "sales", "Sales"
    CS = "cs", "Customer Success"
    REVOPS = "revops", "RevOps"
    PARTNERSHIPS = "partnerships", "Partnerships"
    EXECUTIVE = "executive", "Executive"
    OTHER = "other", "Other"


class Stakeholder(TenantModel):
    """A person at a client. Signs in to the portal with a magic link; has no password."""

    client = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="stakeholders")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    title = models.CharField(max_length=200, blank=True)
    department = models.CharField(max_length=20, choices=Department.choices, default=Department.OTHER)
    portal_enabled = models.BooleanField(default=True)
    health_reports = models.BooleanField(
        default=True, help_text="Receives the monthly health-check email (they can unsubscribe from it)."
    )
    last_portal_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["client", "email"], name="unique_stakeholder_email_per_client")]

    def __str__(self) -> str:
        return f"{self.name} ({self.client})"

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)
