"""Enablement and handoff: training sessions, the hypercare window, the retention path and the check-in."""

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError

from .models import Engagement, RetentionAction, RetentionStep, TrainingSession


@transaction.atomic
def record_training(
    *,
    engagement: Engagement,
    training_type: str,
    held_on: date,
    actor,
    audience: str = "",
    recorded: bool = False,
    notes: str = "",
    request=None,
) -> TrainingSession:
    types = {t.key: t for t in (engagement.spec.enablement.training_types if engagement.spec.enablement else [])}
    if training_type not in types:
        raise DomainError(
            f"This playbook has no training type {training_type!r}; choose one of: {', '.join(types) or 'none'}."
        )
    session = TrainingSession.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        training_type=training_type,
        audience=audience or ", ".join(types[training_type].audience),
        held_on=held_on,
        recorded=recorded,
        notes=notes,
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="training.recorded",
        data={"type": training_type, "recorded": recorded},
    )
    return session


@transaction.atomic
def set_hypercare(*, engagement: Engagement, start: date, actor, end: date | None = None, request=None) -> Engagement:
    hypercare = engagement.spec.hypercare
    if hypercare is None:
        raise DomainError("This playbook has no hypercare period.")
    if engagement.sub_phases.filter(key=hypercare.sub_phase, skipped=True).exists():
        raise DomainError("Hypercare was skipped for this engagement.")
    end = end or start + timedelta(days=hypercare.duration_days)
    if end <= start:
        raise DomainError("Hypercare must end after it starts.")
    engagement.hypercare_start, engagement.hypercare_end = start, end
    engagement.save(update_fields=["hypercare_start", "hypercare_end"])
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="hypercare.scheduled",
        data={"start": start.isoformat(), "end": end.isoformat()},
    )
    return engagement


def next_retention_step(engagement: Engagement):
    """The seed's single-project path: each step applies when the previous answer meets its condition
    (upsell; "if no" → downsell; "if yes" → retry the retainer at the end of that project). None: finished."""
    retention = engagement.spec.retention
    if retention is None:
        return None
    steps = sorted(retention.single_project.steps, key=lambda step: step.order)
    taken = list(engagement.retention.order_by("created_at").values_list("outcome", flat=True))
    if len(taken) >= len(steps):
        return None
    if taken:
        wanted = {"if no": "declined", "if yes": "accepted"}.get((steps[len(taken)].condition or "").lower())
        if wanted is not None and taken[-1] != wanted:
            return None
    return steps[len(taken)]


@transaction.atomic
def record_retention_step(
    *, engagement: Engagement, action: str, outcome: str, actor, offer: str = "", note: str = "", request=None
) -> RetentionStep:
    Engagement.objects.select_for_update().get(pk=engagement.pk)
    if action not in RetentionAction.values:
        raise DomainError(f"Unknown retention step {action!r}.")
    if outcome not in ("accepted", "declined"):
        raise DomainError("The outcome must be accepted or declined.")
    expected = next_retention_step(engagement)
    if expected is None:
        raise DomainError("The retention path is finished for this engagement.")
    if action != expected.action:
        raise DomainError(
            f"The next retention step is {expected.action.replace('_', ' ')}, not {action.replace('_', ' ')}."
        )
    step = RetentionStep.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        action=action,
        outcome=outcome,
        offer=offer or expected.offer,
        note=note,
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="retention.recorded",
        data={"action": action, "outcome": outcome},
    )
    return step


def check_ins_due(today: date | None = None):
    """Engagements whose refinement check-in is two weeks away (or closer) and not yet reminded."""
    today = today or timezone.localdate()
    return Engagement.objects.filter(
        check_in_date__isnull=False, check_in_date__lte=today + timedelta(days=14), check_in_reminder_sent_at=None
    )
