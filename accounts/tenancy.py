# mypy: disable-error-code="attr-defined, misc"
# (the wall hooks QuerySet/Model internals, _chain, _clone, _hints, alters_data, that django-stubs does not declare)
"""The tenant wall's building blocks: every tenant-owned model and queryset derives from these.

The querysets live in gtm_ops.tenancy (the deliverables app, which imports none of ours, guards its model too).
"""

import uuid

from django.db import models

from gtm_ops.tenancy import OrgQuerySet, ScopedQuerySet, UnscopedQuery, crossing_tenants

__all__ = ["OrgQuerySet", "ScopedQuerySet", "TenantModel", "UnscopedQuery", "crossing_tenants"]


class TenantModel(models.Model):
    """A row owned by one organization, addressed in URLs by its UUID, never by its pk."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        abstract = True

    # A UUID is unique across every tenant, so the checks behind forms and full_clean() must see every row.
    def _perform_unique_checks(self, unique_checks):
        with crossing_tenants("uniqueness is checked across every tenant"):
            return super()._perform_unique_checks(unique_checks)

    def validate_constraints(self, exclude=None):
        with crossing_tenants("constraints are checked across every tenant"):
            return super().validate_constraints(exclude)
