import uuid

from django.db import models
from django.utils import timezone

from accounts.tenancy import OrgQuerySet, TenantModel


class PortalLinkQuerySet(OrgQuerySet):
    def usable(self) -> "PortalLinkQuerySet":
        return self.filter(used_at__isnull=True, superseded_at__isnull=True, expires_at__gt=timezone.now())


class PortalLink(TenantModel):
    """One emailed sign-in link. The link carries a signed `nonce`; this row makes it single-use."""

    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.CASCADE, related_name="portal_links")
    nonce = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = PortalLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Portal link for {self.stakeholder.email}"
