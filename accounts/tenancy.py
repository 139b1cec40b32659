"""The tenant wall's building blocks: every tenant-owned model and queryset derives from these."""

import uuid
from typing import Self

from django.db import models


class OrgQuerySet(models.QuerySet):
    def for_org(self, org) -> Self:
        return self.filter(organization=org)


class TenantModel(models.Model):
    """A row owned by one organization, addressed in URLs by its UUID, never by its pk."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        abstract = True
