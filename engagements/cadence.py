"""The weekly operating cadence: board items, the decision log, and the weekly written update."""

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError

from .models import (
    ChecklistItem,
    DecisionLogEntry,
    DecisionStatus,
    Engagement,
    EngagementStakeholder,
    FeedbackItem,
    GateDecision,
    Release,
    ReleaseStatus,
    Risk,
    RiskStatus,
    UpdateStatus,
    WeeklyUpdate,
    WorkItem,
    WorkStatus,
)

BOARD_MODELS = {
    "work": WorkItem,
    "decision": DecisionLogEntry,
    "risk": Risk,
    "release": Release,
    "feedback": FeedbackItem,
}
LANES = [
    ("in_progress", "Work in progress"),
    ("decisions", "Decisions needed"),
    ("risks", "Risks"),
    ("releases", "Completed releases"),
    ("upcoming", "Upcoming work"),
]


def board_lanes(engagement: Engagement, *, client_view: bool = False) -> dict[str, list]:
    """The five lanes of the shared delivery board, each one query whatever the board's size."""

    def rows(model, **filters):
        qs = model.objects.for_org(engagement.organization).filter(engagement=engagement, **filters)
        return list(qs.client_visible() if client_view else qs)

    work = rows(WorkItem, status__in=[WorkStatus.IN_PROGRESS, WorkStatus.UPCOMING])  # both work lanes, one query
    return {
        "in_progress": [w for w in work if w.status == WorkStatus.IN_PROGRESS],
        "decisions": rows(DecisionLogEntry, status=DecisionStatus.NEEDED),
        "risks": rows(Risk, status=RiskStatus.OPEN),
        "releases": rows(Release, status=ReleaseStatus.RELEASED),
        "upcoming": [w for w in work if w.status == WorkStatus.UPCOMING],
    }


@transaction.atomic
def save_board_item(*, item, actor, request=None):
    """Create or update any board item (work, decision, risk, release, feedback) and log it."""
    if not item.engagement.is_open:
        raise DomainError("This engagement is closed; its board is read-only.")
    creating = item.pk is None
    item.organization_id = item.engagement.organization_id
    if isinstance(item, DecisionLogEntry) and item.status == DecisionStatus.DECIDED and not item.decided_on:
        item.decided_on = timezone.localdate()
    if isinstance(item, Release) and item.status == ReleaseStatus.RELEASED and not item.released_on:
        item.released_on = timezone.localdate()
    item.save()
    kind = item._meta.model_name
    activity.record(
        organization=item.organization,
        actor=actor,
        request=request,
        target=item,
        verb=f"{kind}.{'created' if creating else 'updated'}",
        data={"engagement": str(item.engagement.uuid)},
    )
    return item


@transaction.atomic
def delete_board_item(*, item, actor, request=None) -> None:
    if not item.engagement.is_open:
        raise DomainError("This engagement is closed; its board is read-only.")
    activity.record(
        organization=item.organization,
        actor=actor,
        request=request,
        target=item,
        verb=f"{item._meta.model_name}.deleted",
        data={"engagement": str(item.engagement.uuid)},
    )
    item.delete()


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _lines(rows) -> str:
    return "\n".join(f"- {row}" for row in rows)


def draft_text(engagement: Engagement, week_start: date) -> dict[str, str]:
    """Draft the four sections from what happened in the week; the consultant edits before publishing."""
    org = engagement.organization
    start = timezone.make_aware(timezone.datetime.combine(week_start, timezone.datetime.min.time()))
    end = start + timedelta(days=7)

    def of(model):
        # The update goes to the client: only what is marked client-visible goes into the draft.
        return model.objects.for_org(org).filter(engagement=engagement, client_visible=True)

    changed = [f"Done: {w.title}" for w in of(WorkItem).filter(status=WorkStatus.DONE, updated_at__range=(start, end))]
    changed += [
        f"Released: {r.title}"
        for r in of(Release).filter(status=ReleaseStatus.RELEASED, updated_at__range=(start, end))
    ]
    changed += [
        f"Decided: {d.title} — {d.decision}"
        for d in of(DecisionLogEntry).filter(status=DecisionStatus.DECIDED, updated_at__range=(start, end))
    ]
    changed += [
        f"{g.gate.name}: {g.label}"
        for g in GateDecision.objects.for_org(org)
        .filter(gate__engagement=engagement, created_at__range=(start, end))
        .select_related("gate")
    ]
    checked = (
        ChecklistItem.objects.for_org(org).filter(engagement=engagement, done=True, done_at__range=(start, end)).count()
    )
    if checked:
        changed.append(f"{checked} checklist item{'s' if checked != 1 else ''} completed")
    tested = [f"{w.title}: {w.tested}" for w in of(WorkItem).filter(updated_at__range=(start, end)).exclude(tested="")]
    decisions = [
        f"{d.title} ({d.get_category_display()}, owner {d.owner or 'unassigned'})"
        for d in of(DecisionLogEntry).filter(status=DecisionStatus.NEEDED)
    ]
    next_up = [
        f"{w.title}{f' (due {w.due_date:%d %b})' if w.due_date else ''}"
        for w in of(WorkItem)
        .filter(status__in=[WorkStatus.IN_PROGRESS, WorkStatus.UPCOMING])
        .order_by("due_date", "id")[:10]
    ]
    return {
        "what_changed": _lines(changed) or "- No changes recorded this week.",
        "what_was_tested": _lines(tested) or "- Nothing tested this week.",
        "needs_decision": _lines(decisions) or "- No open decisions.",
        "what_happens_next": _lines(next_up) or "- Nothing planned yet.",
    }


@transaction.atomic
def draft_weekly_update(*, engagement: Engagement, actor, week_start: date | None = None, request=None) -> WeeklyUpdate:
    week_start = week_of(week_start or timezone.localdate())
    update, created = WeeklyUpdate.objects.get_or_create(
        organization=engagement.organization,
        engagement=engagement,
        week_start=week_start,
        defaults=draft_text(engagement, week_start),
    )
    if created:
        activity.record(
            organization=engagement.organization,
            actor=actor,
            request=request,
            target=update,
            verb="update.drafted",
            data={"engagement": str(engagement.uuid)},
        )
    return update


@transaction.atomic
def save_weekly_update(*, update: WeeklyUpdate, actor, request=None) -> WeeklyUpdate:
    stored = WeeklyUpdate.objects.for_org(update.organization_id).select_for_update().get(pk=update.pk)
    if stored.status == UpdateStatus.PUBLISHED:
        raise DomainError("This update is published; clients have read it, so it can no longer change.")
    update.save(update_fields=["what_changed", "what_was_tested", "needs_decision", "what_happens_next", "updated_at"])
    return update


@transaction.atomic
def publish_weekly_update(*, update: WeeklyUpdate, actor, request=None) -> WeeklyUpdate:
    from .tasks import send_weekly_update

    # A conditional UPDATE: a double click or a retry cannot publish (and email) twice.
    now = timezone.now()
    drafts = WeeklyUpdate.objects.for_org(update.organization_id).filter(status=UpdateStatus.DRAFT)
    claimed = drafts.filter(pk=update.pk).update(status=UpdateStatus.PUBLISHED, published_at=now, published_by=actor)
    if not claimed:
        raise DomainError("This update is already published.")
    update.refresh_from_db()
    Engagement.objects.for_org(update.organization_id).filter(pk=update.engagement_id).update(
        last_update_published_at=now
    )
    activity.record(
        organization=update.organization,
        actor=actor,
        request=request,
        target=update,
        verb="update.published",
        data={"engagement": str(update.engagement.uuid)},
    )
    recipients = (
        EngagementStakeholder.objects.for_org(update.organization)
        .recipients_of(update.engagement, "weekly_update")
        .values_list("stakeholder_id", flat=True)
    )
    for stakeholder_id in recipients:
        transaction.on_commit(lambda sid=stakeholder_id: send_weekly_update.delay(update.pk, sid))
    return update
