"""The portfolio health page's rows: every engagement with a maintenance schedule, with its last run, whether the
month just ended has its run, who runs the schedule, when the next run comes and its red flags over the last months.
Three queries whatever the number of engagements."""

from datetime import date
from typing import Any

from django.db.models import Exists, OuterRef, Subquery, Value
from django.db.models.functions import Concat
from django.utils.safestring import mark_safe

from deliverables.charts import sparkline
from engagements.models import EngagementMember, TeamRole

from .models import HealthCheckRun, MaintenanceSchedule, RunStatus, ScheduleOwner
from .periods import due_period, month_axis, next_due


def schedule_rows(organization, today: date) -> dict:
    """The page's context: the schedules (each with its columns as attributes), the totals and the trend's months."""
    due = due_period(today)
    runs = HealthCheckRun.objects.filter(engagement=OuterRef("engagement_id")).order_by("-period")
    architect = (
        EngagementMember.objects.filter(engagement=OuterRef("engagement_id"), role=TeamRole.ARCHITECT)
        .order_by("created_at", "id")
        .annotate(label=Concat("user__first_name", Value(" "), "user__last_name"))
    )
    schedules: list[Any] = list(  # each row takes the page's columns as attributes below
        MaintenanceSchedule.objects.for_org(organization)
        .select_related("engagement__client")
        .annotate(
            last_uuid=Subquery(runs.values("uuid")[:1]),
            last_period=Subquery(runs.values("period")[:1]),
            last_status=Subquery(runs.values("status")[:1]),
            last_red=Subquery(runs.values("red_count")[:1]),
            last_not_evaluable=Subquery(runs.values("not_evaluable_count")[:1]),
            has_due_run=Exists(HealthCheckRun.objects.filter(engagement=OuterRef("engagement_id"), period=due)),
            architect_name=Subquery(architect.values("label")[:1]),
            architect_email=Subquery(architect.values("user__email")[:1]),
        )
        .order_by("engagement__client__name", "engagement__name", "id")
    )
    axis = month_axis(due)
    history: dict[int, dict] = {}
    for row in (
        HealthCheckRun.objects.for_org(organization)
        .filter(engagement_id__in=[s.engagement_id for s in schedules], period__gte=axis[0])
        .values("engagement_id", "period", "red_count")
    ):
        history.setdefault(row["engagement_id"], {})[row["period"]] = row["red_count"]
    statuses = dict(RunStatus.choices)
    for s in schedules:
        reds = [history.get(s.engagement_id, {}).get(p) for p in axis]
        s.trend = mark_safe(sparkline(reds))  # noqa: S308 - our SVG of numbers
        s.trend_label = "; ".join(f"{p:%b %Y}: {n}" for p, n in zip(axis, reds, strict=True) if n is not None)
        s.last_status_label = statuses.get(s.last_status, "")
        s.next = next_due(s, has_due_run=s.has_due_run, today=today)
        s.owner_name = (
            (s.architect_name or "").strip() or s.architect_email or "no architect assigned"
            if s.owner == ScheduleOwner.CONSULTANCY
            else s.engagement.client.name
        )
    return {
        "schedules": schedules,
        "red_total": sum(s.last_red or 0 for s in schedules),
        "flagged": sum(1 for s in schedules if s.last_red),
        "never_run": sum(1 for s in schedules if s.last_period is None),
        "axis": axis,
    }
