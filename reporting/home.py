"""What the consultant's home page reads from reporting: this month's red flags."""

from datetime import date

from . import health_actions
from . import health_rules as rule_engine
from .models import HealthResult


def red_flags(organization, engagement_ids: list[int], today: date) -> tuple[date, list[HealthResult]]:
    """The month this month's health checks judge (the month just ended, as beat runs them) and the red flags nobody
    has explained in those runs of the engagements, by engagement."""
    period = health_actions.due_period(today)
    flags = list(
        HealthResult.objects.for_org(organization)
        .filter(run__engagement_id__in=engagement_ids, run__period=period, status=rule_engine.RED)
        .select_related("run__engagement")
        .order_by("run__engagement__name", "task_name", "key", "id")
    )
    return period, flags
