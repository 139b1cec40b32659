"""What the consultant's home page reads from reporting: this month's red flags and the client tasks overdue."""

from datetime import date

from engagements.models import ChecklistItem

from . import health_rules as rule_engine
from .models import HealthResult
from .periods import due_period


def red_flags(organization, engagement_ids: list[int], today: date) -> tuple[date, list[HealthResult]]:
    """The month this month's health checks judge (the month just ended, as beat runs them) and the red flags nobody
    has explained in those runs of the engagements, by engagement."""
    period = due_period(today)
    flags = list(
        HealthResult.objects.for_org(organization)
        .filter(run__engagement_id__in=engagement_ids, run__period=period, status=rule_engine.RED)
        .select_related("run__engagement")
        .order_by("run__engagement__name", "task_name", "key", "id")
    )
    return period, flags


def client_tasks_overdue(organization, engagement_ids: list[int], today: date) -> list[ChecklistItem]:
    """The client's tasks past their due date and not done, in the engagements in view, longest overdue first; each
    with `days_overdue`."""
    tasks = list(
        ChecklistItem.objects.for_org(organization)
        .overdue(today)
        .filter(engagement_id__in=engagement_ids)
        .select_related("engagement__client")
        .order_by("due_date", "engagement__name", "order")
    )
    for task in tasks:
        task.days_overdue = (today - task.due_date).days  # >= 1: overdue() compares due_date < today
    return tasks
