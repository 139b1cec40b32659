"""Maintenance schedules: who runs one, starting it from the playbook (its maintenance tasks and refinement triggers,
with their rules), a task's threshold or cadence changed for one engagement, and the figures its rules read.

Services here change state only inside a transaction and write the activity log there.
"""

from datetime import date

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from playbooks.schema import NEEDS_THRESHOLD, Rule

from .health_rules import humanize
from .models import Cadence, MaintenanceSchedule, ScheduledTask, ScheduleOwner, TaskKind
from .periods import catch_up_periods


def schedule_owner(engagement) -> str:
    """Who runs the schedule: the engagement type's maintenance owner, else the playbook's (the delivery model's
    Operate phase is run by the consultancy while embedded support lasts), else the client."""
    types = {t.key: t for t in engagement.spec.engagement_types}
    engagement_type = types.get(engagement.engagement_type)
    if engagement_type is not None:
        client_owned = engagement_type.maintenance_owner == "customer"
    else:
        maintenance = engagement.spec.maintenance
        client_owned = maintenance is None or maintenance.owner != "consultancy"
    return ScheduleOwner.CLIENT if client_owned else ScheduleOwner.CONSULTANCY


@transaction.atomic
def start_schedule(
    *, engagement, actor, live_since: date | None = None, catch_up: bool = False, request=None
) -> MaintenanceSchedule:
    """Instantiate the playbook's maintenance tasks and triggers for this engagement; with `catch_up`, the months
    since go-live are then checked in the background (`runs.catch_up`)."""
    maintenance = engagement.spec.maintenance
    if maintenance is None:
        raise DomainError("This playbook has no maintenance schedule.")
    if MaintenanceSchedule.objects.filter(engagement=engagement).exists():
        raise DomainError("The maintenance schedule has already been started.")
    schedule = MaintenanceSchedule.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        started_by=actor,
        owner=schedule_owner(engagement),
        live_since=live_since or go_live(engagement),
    )
    rows = []
    for n, task in enumerate(maintenance.tasks):
        rows.append(
            ScheduledTask(
                organization=engagement.organization,
                schedule=schedule,
                kind=TaskKind.TASK,
                key=task.key,
                name=task.name,
                cadence=task.cadence,
                what_to_check=task.what_to_check or "",
                red_flag=task.red_flag or "",
                action=task.action_if_off_track or "",
                order=n,
                rules=[r.model_dump(mode="json", exclude_defaults=True) for r in task.rules],
            )
        )
    for n, trigger in enumerate(maintenance.refinement_triggers, start=len(rows)):
        rows.append(
            ScheduledTask(
                organization=engagement.organization,
                schedule=schedule,
                kind=TaskKind.TRIGGER,
                key=trigger.key,
                name=trigger.trigger,
                cadence=Cadence.MONTHLY,
                red_flag=trigger.threshold,
                action=trigger.response,
                rules=[trigger.rule.model_dump(mode="json", exclude_defaults=True)],
                order=n,
            )
        )
    ScheduledTask.objects.bulk_create(rows)
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="maintenance.started",
        data={"tasks": len(rows), "owner": schedule.owner, "catch_up": catch_up},
    )
    if catch_up and catch_up_periods(schedule):
        from .tasks import catch_up_health_checks

        transaction.on_commit(lambda: catch_up_health_checks.delay(schedule.pk))
    return schedule


def go_live(engagement) -> date:
    """The launch the schedule's windows count from ("30-90 days post-launch"): hypercare is the post-launch
    support, so it starts at go-live; without hypercare, the handoff; before either, today."""
    return engagement.hypercare_start or engagement.handed_off_on or timezone.localdate()


@transaction.atomic
def adjust_task(
    *,
    task: ScheduledTask,
    actor,
    threshold: float | None = None,
    cadence: str | None = None,
    rule_index: int = 0,
    request=None,
) -> ScheduledTask:
    """Change a task's threshold or cadence for this engagement only; the change is logged."""
    before = {"cadence": task.cadence, "rules": task.rules}
    if cadence is not None:
        if cadence not in Cadence.values:
            raise DomainError(f"Unknown cadence {cadence!r}.")
        task.cadence = cadence
    if threshold is not None:
        if not 0 <= rule_index < len(task.rules):
            raise DomainError("That task has no such rule.")
        changed = {**task.rules[rule_index], "threshold": threshold}
        Rule.model_validate(changed)  # the adjusted rule must still be a valid rule
        task.rules = [changed if i == rule_index else r for i, r in enumerate(task.rules)]
    task.save(update_fields=["cadence", "rules"])
    activity.record(
        organization=task.organization,
        actor=actor,
        request=request,
        target=task.schedule.engagement,
        verb="maintenance.adjusted",
        data={"task": task.key, "before": before, "after": {"cadence": task.cadence, "rules": task.rules}},
    )
    return task


def adjustable_rules(task: ScheduledTask) -> list[tuple[int, dict]]:
    """The rules of a task that have a threshold a consultant may change."""
    return [(i, r) for i, r in enumerate(task.rules) if r.get("comparison") in NEEDS_THRESHOLD]


def schedule_metrics(tasks) -> list[tuple[str, str]]:
    """(metric, label) of every figure the schedule's rules read, events as `event:<name>`, in task order."""
    seen: dict[str, str] = {}
    for task in tasks:
        for rule in task.rules:
            if rule.get("metric"):
                seen.setdefault(rule["metric"], humanize(rule["metric"]))
            elif rule.get("event"):
                seen.setdefault(f"event:{rule['event']}", f"Event: {humanize(rule['event']).lower()}")
    return list(seen.items())
