"""The client's tasks: checklist items the customer owns, done in the portal by a stakeholder, by a consultant on the
client's behalf, or by themselves when their completion criterion is met; and the daily digest of overdue ones.

A task is a ChecklistItem (ChecklistItem.objects.client_owned()), so the checklist, its counters and the gates
see the client's work like any other; this module adds who did it and when it is due.
"""

from datetime import date

from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import activity
from accounts.emails import send_email
from accounts.models import DomainError

from . import progression
from .models import ChecklistItem, Engagement, EngagementStakeholder, Stakeholder, TaskDigest
from .models.delivery import EngagementStakeholderQuerySet
from .portal_access import emailed_link_path

USER_AGENT_LENGTH = 400  # as Signature.user_agent
COMPLETED = "client_task.completed"  # by the stakeholder in the portal
AUTO_COMPLETED = "client_task.auto_completed"  # by itself, its completion criterion met


def for_stakeholder(stakeholder: Stakeholder):
    """The stakeholder's tasks: client tasks of the open engagements that name them, in checklist order."""
    engagements = Engagement.objects.visible_to(stakeholder).open()
    return (
        ChecklistItem.objects.for_org(stakeholder.organization_id)
        .client_owned()
        .filter(engagement__in=engagements)
        .select_related("engagement", "phase", "sub_phase", "done_by", "done_by_stakeholder")
        .order_by("engagement__name", "order")
    )


def why(item: ChecklistItem) -> str:
    """What the task is for, in the method's own words: its sub-phase's purpose, else its phase's goal."""
    sub = item.sub_phase
    return sub.purpose if sub is not None and sub.purpose else item.phase.goal


def _require_client_task(item: ChecklistItem) -> None:
    if not item.is_client_task:
        raise DomainError(
            f"“{item.text}” is the consultancy's work (owner: {item.owner or 'nobody'}), not the client's."
        )


def complete_client_task(
    item: ChecklistItem,
    by_stakeholder: Stakeholder | None = None,
    by_user=None,
    auto_reason: str | None = None,
    request=None,
) -> ChecklistItem:
    """Mark a client task done, by exactly one of: the stakeholder (in the portal), a consultant on the client's
    behalf, or the task itself (auto_reason says which criterion was met, e.g. "intake form submitted").

    Done already: nothing changes, so a second click or a criterion met twice keeps who did it first.
    """
    given = [who for who in (by_stakeholder, by_user, auto_reason) if who]
    if len(given) != 1:
        raise ValueError("complete_client_task needs exactly one of by_stakeholder, by_user or auto_reason.")
    _require_client_task(item)
    if by_user is not None:  # the checklist tick records it as done on the client's behalf
        return progression.set_checklist_item(item=item, done=True, actor=by_user, request=request)
    if by_stakeholder is not None and not item.engagement.stakeholder_roles.filter(stakeholder=by_stakeholder).exists():
        raise DomainError(f"{by_stakeholder.name} is not a stakeholder of {item.engagement.name}.")
    with transaction.atomic():
        item.engagement = progression._lock(item.engagement)
        progression.checklist_editable(item)
        item.refresh_from_db(fields=["done"])  # under the engagement's lock: a concurrent completion is seen
        if item.done:
            return item
        item.done, item.done_at, item.done_by = True, timezone.now(), None
        item.done_by_stakeholder, item.auto_reason = by_stakeholder, (auto_reason or "")[:200]
        item.save(update_fields=["done", "done_at", "done_by", "done_by_stakeholder", "auto_reason"])
        user_agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH] if request is not None else ""
        activity.record(
            organization=item.organization,
            actor_label=f"{by_stakeholder.name} <{by_stakeholder.email}>" if by_stakeholder else "system",
            verb=COMPLETED if by_stakeholder else AUTO_COMPLETED,
            target=item.engagement,
            request=request,
            data={"item": item.key, "text": item.text, "reason": item.auto_reason, "user_agent": user_agent},
        )
    return item


@transaction.atomic
def set_due_date(*, item: ChecklistItem, due_date: date | None, actor, request=None) -> ChecklistItem:
    """The consultant's due date for a client task (None clears it)."""
    _require_client_task(item)
    item.engagement = progression._lock(item.engagement)
    progression.checklist_editable(item)
    if item.due_date == due_date:
        return item
    item.due_date = due_date
    item.save(update_fields=["due_date"])
    activity.record(
        organization=item.organization,
        actor=actor,
        request=request,
        target=item.engagement,
        verb="client_task.due_date_set",
        data={"item": item.key, "text": item.text, "due": due_date.isoformat() if due_date else "no date"},
    )
    return item


# ---------------------------------------------------------------- the daily digest of overdue tasks


def digest_recipients(today: date) -> list[int]:
    """Stakeholders with an overdue task on an engagement whose emails they receive (not unsubscribed)."""
    overdue = ChecklistItem.objects.across_tenants("beat: the daily digest covers every tenant").overdue(today)
    receiving = EngagementStakeholder.objects.across_tenants("beat: the daily digest covers every tenant").filter(
        EngagementStakeholderQuerySet.RECEIVES["task_digest"],
        receives_updates=True,
        engagement_id__in=overdue.values("engagement_id"),
    )
    return sorted(set(receiving.values_list("stakeholder_id", flat=True)))


def overdue_for(stakeholder: Stakeholder, today: date) -> list[ChecklistItem]:
    receiving = EngagementStakeholder.objects.for_org(stakeholder.organization_id).filter(
        stakeholder=stakeholder, receives_updates=True
    )
    return list(for_stakeholder(stakeholder).overdue(today).filter(engagement_id__in=receiving.values("engagement_id")))


def claim_digest(stakeholder: Stakeholder, day: date, tasks: int) -> TaskDigest | None:
    """The day's digest row for the stakeholder, if this caller is the first to claim it; else None."""
    try:
        with transaction.atomic():
            return TaskDigest.objects.create(
                organization_id=stakeholder.organization_id, stakeholder=stakeholder, day=day, tasks=tasks
            )
    except IntegrityError:  # another tick claimed the day first: it sends
        return None


def send_digest(stakeholder_id: int, day: date) -> TaskDigest | None:
    """Send the stakeholder's overdue-task digest for `day`, at most once: the row is claimed before sending and
    given back if the email fails (the task retries). Returns the sent digest, or None when there was nothing to
    send or another tick sent it."""
    stakeholder = (
        Stakeholder.objects.for_task(stakeholder_id)
        .filter(portal_enabled=True, health_reports=True)
        .select_related("client", "organization")
        .first()
    )
    if stakeholder is None:
        return None
    tasks = overdue_for(stakeholder, day)
    if not tasks:
        return None
    digest = claim_digest(stakeholder, day, len(tasks))
    if digest is None:
        return None
    try:
        send_email(
            "task-digest",
            to=stakeholder.email,
            context={
                "stakeholder": stakeholder,
                "tasks": [(t, (day - t.due_date).days) for t in tasks if t.due_date],
                "path": emailed_link_path(stakeholder, reverse("portal:home")),
                "unsubscribe_path": reverse("portal:unsubscribe", kwargs={"token": unsubscribe_token(stakeholder)}),
            },
        )
    except Exception:
        TaskDigest.objects.for_org(stakeholder.organization_id).filter(pk=digest.pk).delete()
        raise
    TaskDigest.objects.for_org(stakeholder.organization_id).filter(pk=digest.pk).update(sent_at=timezone.now())
    return digest


def unsubscribe_token(stakeholder: Stakeholder) -> str:
    # The monthly email's token (portal_prefs.unsubscribe reads it): one unsubscribe stops both emails.
    return signing.dumps(str(stakeholder.uuid), salt="reporting.unsubscribe")
