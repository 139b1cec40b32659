"""Maintenance schedules and monthly health checks.

A schedule is instantiated from the engagement's playbook (its maintenance tasks and refinement triggers,
with their rules). Each month, beat creates one HealthCheckRun per engagement and period (a unique row, so
a duplicate tick or a second worker creates nothing) and queues it. A run gathers each rule's figures
(from the CRM through the connectors, or from values a person entered or uploaded), evaluates the rule,
stores the verdicts, renders the Health-Check Report and sends one email per recipient (a unique delivery
row per run and address, claimed before sending, so retries never send twice).
"""

import csv
import io
import logging
import math
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from playbooks.schema import Rule

from . import rules as rule_engine
from .models import (
    Baseline,
    Cadence,
    DeliveryStatus,
    FlagExplanation,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    MetricValue,
    ReportDelivery,
    RunStatus,
    ScheduledTask,
    ScheduleOwner,
    TaskKind,
)

logger = logging.getLogger(__name__)
CRM_SOURCES = {"crm", "crm_metadata"}
HISTORY_PERIODS = 6
BASELINE_RULES = {"drop_pp", "drop_pct", "no_increase"}  # rules judged against a baseline


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(day: date) -> date:
    return month_start(month_start(day) - timedelta(days=1))


# --------------------------------------------------------------------------------------------------
# Schedule


@transaction.atomic
def start_schedule(
    *, engagement, actor, live_since: date | None = None, catch_up: bool = False, request=None
) -> MaintenanceSchedule:
    """Instantiate the playbook's maintenance tasks and triggers for this engagement; with `catch_up`, the months
    since go-live are then checked in the background (`catch_up` below)."""
    maintenance = engagement.spec.maintenance
    if maintenance is None:
        raise DomainError("This playbook has no maintenance schedule.")
    if MaintenanceSchedule.objects.filter(engagement=engagement).exists():
        raise DomainError("The maintenance schedule has already been started.")
    types = {t.key: t for t in engagement.spec.engagement_types}
    engagement_type = types.get(engagement.engagement_type)
    client_owned = engagement_type is None or engagement_type.maintenance_owner == "customer"
    schedule = MaintenanceSchedule.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        started_by=actor,
        owner=ScheduleOwner.CLIENT if client_owned else ScheduleOwner.CONSULTANCY,
        live_since=live_since or engagement.handed_off_on or timezone.localdate(),
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


def months_live(schedule: MaintenanceSchedule, period: date) -> int:
    return (period.year - schedule.live_since.year) * 12 + period.month - schedule.live_since.month


def in_first_cycle(schedule: MaintenanceSchedule, period: date) -> bool:
    """The first business cycle, 30-60 days after launch: its figures become the baselines not yet set."""
    return months_live(schedule, period) in (0, 1)


def is_due(task: ScheduledTask, schedule: MaintenanceSchedule, period: date) -> bool:
    """Whether a task belongs in the run for the month starting at `period`."""
    if task.cadence in (Cadence.WEEKLY, Cadence.MONTHLY):
        return True
    if task.cadence == Cadence.QUARTERLY:
        return months_live(schedule, period) % 3 == 2  # the third month of each quarter since go-live
    if task.cadence == Cadence.FIRST_CYCLE:
        return in_first_cycle(schedule, period)
    return months_live(schedule, period) in (5, 11)  # every 6-12 months


# --------------------------------------------------------------------------------------------------
# Figures entered by people


@transaction.atomic
def record_metric(
    *,
    engagement,
    metric: str,
    period: date,
    actor=None,
    value: float | None = None,
    breakdown: dict | None = None,
    key: str = "",
    source: str = "manual",
) -> MetricValue:
    if value is None and not breakdown:
        raise DomainError(f"{metric}: give a value.")
    row, _ = MetricValue.objects.update_or_create(
        organization=engagement.organization,
        engagement=engagement,
        metric=metric,
        key=key,
        period=month_start(period),
        defaults={"value": value, "breakdown": breakdown, "source": source, "entered_by": actor},
    )
    return row


@transaction.atomic
def import_csv(*, engagement, text: str, actor) -> int:
    """Upload figures that live outside the CRM: columns metric, key (optional), period (YYYY-MM), value."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"metric", "period", "value"} - set(reader.fieldnames or [])
    if missing:
        raise DomainError(f"The CSV needs the column(s) {', '.join(sorted(missing))} (line 1).")
    count = 0
    for line, row in enumerate(reader, start=2):
        if None in row.values() or not (row.get("metric") or "").strip():
            raise DomainError(f"Line {line}: it needs a metric, a period and a value.")
        try:
            period = date.fromisoformat(f"{row['period'].strip()[:7]}-01")
            value = float(row["value"])
        except ValueError:
            raise DomainError(
                f"Line {line}: period must be YYYY-MM and value a number (got {row['period']!r}, {row['value']!r})."
            ) from None
        if not math.isfinite(value):
            raise DomainError(f"Line {line}: the value must be a finite number (got {row['value']!r}).")
        record_metric(
            engagement=engagement,
            metric=row["metric"].strip(),
            key=(row.get("key") or "").strip(),
            period=period,
            value=value,
            actor=actor,
            source="csv",
        )
        count += 1
    activity.record(
        organization=engagement.organization,
        actor=actor,
        target=engagement,
        verb="metrics.imported",
        data={"rows": count},
    )
    return count


@transaction.atomic
def set_baseline(
    *, engagement, metric: str, value: float, actor, key: str = "", source: str = "set by hand", request=None
) -> Baseline:
    baseline, _ = Baseline.objects.update_or_create(
        organization=engagement.organization,
        engagement=engagement,
        metric=metric,
        key=key,
        defaults={"value": value, "established_on": timezone.localdate(), "source": source},
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="baseline.set",
        data={"metric": metric, "key": key, "value": value, "source": source},
    )
    return baseline


# --------------------------------------------------------------------------------------------------
# Runs


def create_run(engagement, period: date) -> tuple[HealthCheckRun, bool]:
    """The run for (engagement, period): created once, whatever the number of ticks or workers."""
    try:
        with transaction.atomic():
            return HealthCheckRun.objects.get_or_create(
                organization=engagement.organization, engagement=engagement, period=month_start(period)
            )
    except IntegrityError:  # a concurrent creator won the race
        return HealthCheckRun.objects.get(engagement=engagement, period=month_start(period)), False


def due_schedules(period: date, schedules=None):
    """The active schedules that have a run for `period`: live before the month ended (`schedules` narrows)."""
    queryset = MaintenanceSchedule.objects.all() if schedules is None else schedules
    return queryset.filter(active=True, live_since__lt=month_start(period) + timedelta(days=31))


def queue_due_runs(today: date | None = None) -> int:
    """Beat, across all organizations: one run per engagement with an active schedule, for last month."""
    from .tasks import run_health_check

    period = previous_month(today or timezone.localdate())
    queued = 0
    for schedule in due_schedules(period).select_related("engagement__organization"):
        run, created = create_run(schedule.engagement, period)
        if created:
            transaction.on_commit(lambda pk=run.pk: run_health_check.delay(pk))
            queued += 1
    return queued


def _history(engagement, metric: str, period: date) -> dict[str, list]:
    """Earlier periods' values per key, oldest first, for sustained windows and peaks."""
    rows = (
        MetricValue.objects.for_org(engagement.organization)
        .filter(
            engagement=engagement,
            metric=metric,
            period__lt=period,
            period__gte=period - timedelta(days=31 * HISTORY_PERIODS),
        )
        .order_by("period")
    )
    periods = sorted({r.period for r in rows})
    by_period = {p: {} for p in periods}
    for r in rows:
        by_period[r.period][r.key] = r.breakdown if r.breakdown is not None else r.value
    return [by_period[p] for p in periods]


def _figures(engagement, rule: Rule, period: date, schedule: MaintenanceSchedule, crm) -> rule_engine.Figures:
    org = engagement.organization
    today = timezone.localdate()
    if rule.event is not None:
        events = set(
            MetricValue.objects.for_org(org)
            .filter(engagement=engagement, metric=f"event:{rule.event}", period=period)
            .values_list("metric", flat=True)
        )
        return rule_engine.Figures(current=None, events={e.removeprefix("event:") for e in events})
    if CRM_SOURCES & set(rule.data_source) and crm is not None:
        crm.compute(rule.metric, period)  # stores MetricValue rows (source crm) or records why it cannot
    rows = list(MetricValue.objects.for_org(org).filter(engagement=engagement, metric=rule.metric, period=period))
    baselines = {
        b.key: b.value for b in Baseline.objects.for_org(org).filter(engagement=engagement, metric=rule.metric)
    }
    history = _history(engagement, rule.metric, period)
    missing = (crm.missing.get(rule.metric) if crm is not None else "") or (
        "needs manual input" if not CRM_SOURCES & set(rule.data_source) else "no CRM connection for this client"
    )
    figures = rule_engine.Figures(current=None, live_since=schedule.live_since, today=today, missing_reason=missing)
    if rule.comparison == "new_value_vs_signed":
        if crm is not None:
            figures.present_values, figures.signed_values = crm.present_and_signed()
        return figures
    if not rows:
        return figures
    keyed = rule.per is not None or any(r.key for r in rows)
    if keyed:
        figures.current = {r.key: (r.breakdown if r.breakdown is not None else r.value) for r in rows}
        figures.baseline = baselines or None
        figures.history = history
    else:
        row = rows[0]
        figures.current = row.breakdown if row.breakdown is not None else row.value
        figures.baseline = baselines.get("")
        figures.history = [h.get("") for h in history]
    return figures


def _establish_baselines(engagement, period: date, metrics: set[str]) -> None:
    """First business cycle: the period's CRM figures become the baselines not yet set."""
    org = engagement.organization
    known = set(Baseline.objects.for_org(org).filter(engagement=engagement).values_list("metric", "key"))
    for row in MetricValue.objects.for_org(org).filter(
        engagement=engagement, period=period, metric__in=metrics, value__isnull=False
    ):
        if (row.metric, row.key) not in known:
            Baseline.objects.create(
                organization=org,
                engagement=engagement,
                metric=row.metric,
                key=row.key,
                value=row.value,
                established_on=timezone.localdate(),
                source=f"first business cycle ({period:%B %Y})",
            )


def execute_run(run_id: int, *, crm_factory=None) -> HealthCheckRun | None:
    """Claim a queued run and evaluate every due rule. Returns None when another worker has it."""
    from .crm_metrics import CrmFigures

    claimed = HealthCheckRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = HealthCheckRun.objects.select_related("engagement__client", "organization").get(pk=run_id)
    engagement = run.engagement
    schedule = MaintenanceSchedule.objects.get(engagement=engagement)
    crm = None
    results, baseline_metrics = [], set()
    try:
        crm = (crm_factory or CrmFigures.for_engagement)(engagement)
        for task in schedule.tasks.all():
            if not is_due(task, schedule, run.period):
                continue
            for raw in task.rules:
                rule = Rule.model_validate(raw)
                if rule.metric and (task.cadence == Cadence.FIRST_CYCLE or rule.comparison in BASELINE_RULES):
                    baseline_metrics.add(rule.metric)
                verdict = rule_engine.evaluate(rule, _figures(engagement, rule, run.period, schedule, crm))
                parts = verdict.parts or [verdict]
                for part in parts:
                    results.append(
                        HealthResult(
                            organization=run.organization,
                            run=run,
                            task_key=task.key,
                            task_name=task.name,
                            kind=task.kind,
                            metric=rule.metric or f"event:{rule.event}",
                            key=part.key,
                            status=part.status,
                            message=part.message,
                            value=part.value,
                            baseline=part.baseline,
                            threshold=part.threshold,
                        )
                    )
        if baseline_metrics and in_first_cycle(schedule, run.period):
            _establish_baselines(engagement, run.period, baseline_metrics)
    except Exception as exc:  # recorded on the run in plain words; never shown as healthy
        logger.exception("Health check %s failed", run_id)
        HealthCheckRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            api_calls=crm.calls if crm else 0,
        )
        return HealthCheckRun.objects.get(pk=run_id)
    finally:
        if crm is not None:
            crm.close()
    _carry_explanations(run, results)
    HealthResult.objects.bulk_create(results)
    red = sum(r.status == rule_engine.RED for r in results)
    not_evaluable = sum(r.status == rule_engine.NOT_EVALUABLE for r in results)
    status = RunStatus.PARTIAL if (crm and crm.errors) else RunStatus.SUCCEEDED
    HealthCheckRun.objects.filter(pk=run_id).update(
        status=status,
        finished_at=timezone.now(),
        red_count=red,
        not_evaluable_count=not_evaluable,
        api_calls=crm.calls if crm else 0,
        error="; ".join(crm.errors) if crm else "",
    )
    return HealthCheckRun.objects.get(pk=run_id)


def explanations_in_force(engagement, period: date) -> dict[tuple[str, str, str], FlagExplanation]:
    """{(task_key, metric, key): explanation} of earlier months covering `period`: not withdrawn, not expired.

    When two cover the same flag, the one written for the later month wins."""
    found: dict[tuple[str, str, str], FlagExplanation] = {}
    for explanation in (
        FlagExplanation.objects.for_org(engagement.organization)
        .filter(
            engagement=engagement,
            from_period__lt=period,
            until_period__gte=period,
            withdrawn_at__isnull=True,
        )
        .order_by("-from_period", "-created_at")
    ):
        found.setdefault((explanation.task_key, explanation.metric, explanation.key), explanation)
    return found


def _carry_explanations(run: HealthCheckRun, results: list[HealthResult]) -> None:
    """A flag red again while an earlier month's explanation of it is in force shows as explained, with it."""
    if not any(r.status == rule_engine.RED for r in results):
        return
    in_force = explanations_in_force(run.engagement, run.period)
    for result in results:
        explanation = in_force.get((result.task_key, result.metric, result.key))
        if result.status == rule_engine.RED and explanation is not None:
            result.status = rule_engine.EXPLAINED
            result.explanation = explanation.explanation
            result.explained_by_id = explanation.explained_by_id
            result.carried_from = explanation


CATCH_UP_MONTHS = 12


def catch_up_periods(schedule: MaintenanceSchedule, today: date | None = None) -> list[date]:
    """The ended months from go-live to the month before the one just ended (the last year at most), oldest first."""
    due = previous_month(today or timezone.localdate())
    periods, period = [], month_start(schedule.live_since)
    while period < due:
        periods.append(period)
        period = month_start(period + timedelta(days=32))
    return periods[-CATCH_UP_MONTHS:]


def catch_up(schedule_id: int, today: date | None = None) -> list[HealthCheckRun]:
    """Check the months that passed between go-live and the start of the schedule, oldest first, so the first
    business cycle sets the baselines and every trend has its history. Their reports are rendered but not emailed:
    nobody wants last spring's health check in their inbox. The month just ended is beat's (or "run now"), as usual.
    A retry re-runs nothing: each month's run is claimed once."""
    schedule = MaintenanceSchedule.objects.select_related("engagement__organization").get(pk=schedule_id)
    done = []
    for period in catch_up_periods(schedule, today):
        run, _ = create_run(schedule.engagement, period)
        finished = execute_run(run.pk)
        if finished is not None:
            complete_run(finished, email=False)
            done.append(finished)
    return done


def complete_run(run: HealthCheckRun, *, email: bool = True) -> list[ReportDelivery]:
    """After execute_run: render the Health-Check Report (once) and queue one email per recipient (each sent once).

    Returns the deliveries queued. A failed or unfinished run gets neither report nor email. Emails go through
    the `send_health_report` task: to the workers when a broker is set, inline otherwise.
    """
    from .services import render_health_report
    from .tasks import send_health_report

    if run.status not in (RunStatus.SUCCEEDED, RunStatus.PARTIAL):
        return []
    if not HealthCheckRun.objects.filter(pk=run.pk, report__isnull=False).exists():
        render_health_report(run)
    if not email:
        return []
    deliveries = plan_deliveries(run)
    for delivery in deliveries:
        send_health_report.delay(delivery.pk)
    return deliveries


RAN, ALREADY_FINISHED, IN_PROGRESS = "ran", "already_finished", "in_progress"


def check_now(
    engagement, period: date, *, actor=None, actor_label: str = "", crm_factory=None
) -> tuple[HealthCheckRun, str]:
    """The run of (engagement, period), created once, executed in this process, then reported and emailed as the
    run_health_check task does. Returns the run and what happened to it here:

    RAN               executed now (created now, or queued earlier and not yet picked up by a worker)
    ALREADY_FINISHED  it had already run: not re-run, no second report or email
    IN_PROGRESS       a worker is running it right now: left to that worker
    """
    with transaction.atomic():
        run, created = create_run(engagement, period)
        if created:
            activity.record(
                organization=engagement.organization,
                actor=actor,
                actor_label=actor_label,
                target=engagement,
                verb="health.run_requested",
                data={"period": f"{month_start(period):%Y-%m}", "run": str(run.uuid), "in_process": True},
            )
    done = execute_run(run.pk, crm_factory=crm_factory) if run.status == RunStatus.QUEUED else None
    if done is None:
        run.refresh_from_db()
        return run, IN_PROGRESS if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) else ALREADY_FINISHED
    complete_run(done)
    done.refresh_from_db()
    return done, RAN


def recipients(run: HealthCheckRun) -> list[tuple[str, str]]:
    """The engagement's chosen stakeholders who still want the report, and the consultants."""
    from accounts.models import Membership, Role
    from engagements.models import EngagementStakeholder

    engagement = run.engagement
    people = [
        (s.stakeholder.email, s.stakeholder.name)
        for s in EngagementStakeholder.objects.for_org(run.organization)
        .filter(engagement=engagement, receives_updates=True, stakeholder__health_reports=True)
        .select_related("stakeholder")
    ]
    team = engagement.team.values("user")
    for membership in Membership.objects.for_org(run.organization).filter(user__in=team).select_related("user"):
        people.append((membership.user.email, membership.user.get_full_name()))
    if not team.exists():
        for membership in Membership.objects.for_org(run.organization).filter(role=Role.OWNER).select_related("user"):
            people.append((membership.user.email, membership.user.get_full_name()))
    seen, unique = set(), []
    for email, name in people:
        if email.lower() not in seen:
            seen.add(email.lower())
            unique.append((email, name))
    return unique


def plan_deliveries(run: HealthCheckRun) -> list[ReportDelivery]:
    for email, name in recipients(run):
        ReportDelivery.objects.get_or_create(
            organization=run.organization, run=run, email=email, defaults={"name": name}
        )
    return list(run.deliveries.filter(status=DeliveryStatus.PENDING))


__all__ = [
    "adjust_task",
    "check_now",
    "complete_run",
    "create_run",
    "due_schedules",
    "execute_run",
    "explanations_in_force",
    "import_csv",
    "plan_deliveries",
    "queue_due_runs",
    "record_metric",
    "set_baseline",
    "start_schedule",
]
