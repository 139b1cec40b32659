"""An organization's data version: a counter on its row, incremented in the transaction of every change.

Pages cache fragments built from an organization's data under a key holding its version
(engagements/views/fragments.py). `activity.record`, which every service calls in the transaction that changes
state, bumps it; the few writes that record no activity and change what those pages show call `bump` themselves.

Being a column, the version commits with the change it counts: a request that read the old version can only have
read the old data too (or newer), and the membership query of every organization page already loads it. The
increment locks the organization's row until the transaction ends, which serializes an organization's writes at
that point; they are short.
"""

from django.db.models import F

from .models import Organization


def bump(organization: Organization | None) -> None:
    """Mark the organization's data as changed; None: every organization's (library playbooks they all show)."""
    rows = Organization.objects.all() if organization is None else Organization.objects.filter(pk=organization.pk)
    rows.update(data_version=F("data_version") + 1)
