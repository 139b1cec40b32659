"""The refinement loop: meetings, and architecture versions whose items move ASSUMED → CONFIRMED/CORRECTED.

Only the latest version is editable; starting a new version copies the latest one's items, so every
earlier version stays as it was and "what changed since the previous version" is a comparison of rows.
"""

from dataclasses import dataclass

from django.db import transaction

from accounts import activity
from accounts.models import DomainError

from .models import ArchitectureVersion, AssumptionItem, AssumptionStatus, Engagement, Meeting


@transaction.atomic
def record_meeting(
    *, engagement: Engagement, type: str, held_on, actor, notes: str = "", attendees=(), request=None
) -> Meeting:
    previous = Meeting.objects.for_org(engagement.organization).filter(engagement=engagement, type=type).count()
    meeting = Meeting.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        type=type,
        sequence=previous + 1,
        held_on=held_on,
        notes=notes,
    )
    foreign = [s for s in attendees if s.client_id != engagement.client_id]
    if foreign:
        raise DomainError(f"{foreign[0].name} is not a stakeholder of {engagement.client}.")
    meeting.attendees.set(attendees)
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=meeting,
        verb="meeting.recorded",
        data={"engagement": str(engagement.uuid)},
    )
    return meeting


def latest_version(engagement: Engagement) -> ArchitectureVersion | None:
    return (
        ArchitectureVersion.objects.for_org(engagement.organization)
        .filter(engagement=engagement)
        .order_by("-number")
        .first()
    )


@transaction.atomic
def start_version(
    *, engagement: Engagement, actor, meeting: Meeting | None = None, notes: str = "", request=None
) -> ArchitectureVersion:
    Engagement.objects.for_org(engagement.organization_id).select_for_update().get(pk=engagement.pk)
    previous = latest_version(engagement)
    version = ArchitectureVersion.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        number=previous.number + 1 if previous else 0,
        meeting=meeting,
        notes=notes,
    )
    if previous is not None:
        AssumptionItem.objects.bulk_create(
            AssumptionItem(
                organization=engagement.organization,
                version=version,
                key=i.key,
                document=i.document,
                text=i.text,
                status=i.status,
                critical=i.critical,
                correction=i.correction,
            )
            for i in previous.items.all()
        )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="architecture.version_started",
        data={"version": version.number},
    )
    return version


def _require_latest(version: ArchitectureVersion) -> None:
    latest = latest_version(version.engagement)
    if latest is None or latest.pk != version.pk:
        raise DomainError(f"v{version.number} is not the latest version; earlier versions never change.")


@transaction.atomic
def add_item(
    *,
    version: ArchitectureVersion,
    key: str,
    text: str,
    actor,
    critical: bool = False,
    document: str = "",
    request=None,
) -> AssumptionItem:
    _require_latest(version)
    if version.items.filter(key=key).exists():
        raise DomainError(f"v{version.number} already has an item with key {key!r}.")
    item = AssumptionItem.objects.create(
        organization=version.organization, version=version, key=key, text=text, critical=critical, document=document
    )
    activity.record(
        organization=version.organization,
        actor=actor,
        request=request,
        target=version.engagement,
        verb="assumption.added",
        data={"version": version.number, "key": key},
    )
    return item


@transaction.atomic
def set_item_status(*, item: AssumptionItem, status: str, actor, correction: str = "", request=None) -> AssumptionItem:
    _require_latest(item.version)
    if status not in AssumptionStatus.values:
        raise DomainError(f"Unknown status {status!r}.")
    if status == AssumptionStatus.CORRECTED and not correction.strip():
        raise DomainError("Say what the correction is.")
    item.status, item.correction = status, correction.strip()
    item.save(update_fields=["status", "correction"])
    activity.record(
        organization=item.organization,
        actor=actor,
        request=request,
        target=item.version.engagement,
        verb="assumption.status_changed",
        data={"key": item.key, "status": status},
    )
    return item


@dataclass
class Change:
    key: str
    kind: str  # added / removed / changed
    before: AssumptionItem | None
    after: AssumptionItem | None


def diff(older: ArchitectureVersion, newer: ArchitectureVersion) -> list[Change]:
    before = {i.key: i for i in older.items.all()}
    after = {i.key: i for i in newer.items.all()}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        b, a = before.get(key), after.get(key)
        if b is None:
            changes.append(Change(key, "added", None, a))
        elif a is None:
            changes.append(Change(key, "removed", b, None))
        elif (b.text, b.status, b.correction, b.critical) != (a.text, a.status, a.correction, a.critical):
            changes.append(Change(key, "changed", b, a))
    return changes
