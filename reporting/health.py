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

from . import health_rules as rule_engine
from .models import (
    Baseline,
    Cadence,
    FlagExplanation,
    Granularity,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    MetricValue,
    RunStatus,
    RunStep,
    ScheduledTask,
    ScheduleOwner,
    TaskKind,
)

logger = logging.getLogger(__name__)
CRM_SOURCES = {"crm", "crm_metadata"}
HISTORY_PERIODS = 6
HISTORY_WEEKS = 8
BASELINE_RULES = {"drop_pp", "drop_pct", "no_increase"}  # rules judged against a baseline
REVIEW_PROMPT = "A person reviews this and records it"  # a task without a machine rule, in its run
ENTRY_METRIC = "stage_entry_volume"  # records entering each stage: the denominators of conversion rates
OUTSIDE_SOURCES = {
    "ri_platform": "from the revenue intelligence platform",
    "prm_platform": "from the partner platform",
    "manual": "from outside the CRM",
}


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(day: date) -> date:
    return month_start(month_start(day) - timedelta(days=1))


def month_end(period: date) -> date:
    return rule_engine.add_months(month_start(period), 1) - timedelta(days=1)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_weeks(period: date) -> list[date]:
    """The Mondays of the weeks that belong to the month: the weeks ending in it. A month's run starts on the 1st of
    the next month, when every one of those weeks is over; a week that ends in the next month is judged there (with
    the weeks starting in it, a week spanning a month end would be judged before its figure exists, and a catch-up
    run would judge it differently from the run on time)."""
    start = month_start(period)
    sunday = start + timedelta(days=(6 - start.weekday()) % 7)
    weeks = []
    while sunday <= month_end(period):
        weeks.append(sunday - timedelta(days=6))
        sunday += timedelta(days=7)
    return weeks


# --------------------------------------------------------------------------------------------------
# Schedule


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
    since go-live are then checked in the background (`catch_up` below)."""
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
    """0 for the go-live month, 1 for the month after, ..."""
    return (period.year - schedule.live_since.year) * 12 + period.month - schedule.live_since.month


def first_cycle(schedule: MaintenanceSchedule) -> tuple[date, date]:
    """The first and last day of the first business cycle: the playbook's 30-90 (or 30-60) days after go-live."""
    first, last = schedule.first_cycle_days
    return schedule.live_since + timedelta(days=first), schedule.live_since + timedelta(days=last)


def in_first_cycle(schedule: MaintenanceSchedule, period: date) -> bool:
    """Whether the month belongs to the first business cycle: the months from the one in which its first day falls
    (day 30 after go-live) to the one in which its last day falls (day 60 or 90)."""
    begins, ends = first_cycle(schedule)
    return month_start(period) <= ends and month_end(period) >= begins


def quarter_months(schedule: MaintenanceSchedule, period: date) -> list[date] | None:
    """The three months of the quarter since go-live that ends with `period`, or None mid-quarter."""
    live = months_live(schedule, period)
    if live < 2 or live % 3 != 2:
        return None
    return [rule_engine.add_months(month_start(period), -n) for n in (2, 1, 0)]


def _deadlines(task: ScheduledTask, schedule: MaintenanceSchedule) -> list[date]:
    """The last days of the task's windows counted from go-live ("within 2 quarters")."""
    days = []
    for raw in task.rules:
        within = (raw.get("target") or {}).get("within")
        if within:
            days.append(rule_engine.window_last_day(schedule.live_since, Rule.model_validate(raw).target.within))
    return days


def is_due(task: ScheduledTask, schedule: MaintenanceSchedule, period: date) -> bool:
    """Whether a task belongs in the run for the month starting at `period`.

    Quarterly: the third month of each quarter since go-live. First business cycle: the months of the cycle, and
    the month in which a target of the task reaches its deadline ("+15 pp within 2 quarters" is judged then).
    Every 6-12 months: the sixth month since go-live and every sixth month after (months 6, 12, 18, ...)."""
    live = months_live(schedule, period)
    if task.cadence in (Cadence.WEEKLY, Cadence.MONTHLY):
        return True
    if task.cadence == Cadence.QUARTERLY:
        return live >= 2 and live % 3 == 2
    if task.cadence == Cadence.FIRST_CYCLE:
        return in_first_cycle(schedule, period) or any(
            month_start(period) <= day <= month_end(period) for day in _deadlines(task, schedule)
        )
    return live >= 5 and (live - 5) % 6 == 0  # every 6-12 months, year after year


def rule_is_due(rule: Rule, schedule: MaintenanceSchedule, period: date) -> bool:
    """A rule read per quarter is judged at the quarter's end (in the run of its third month) only."""
    return rule.window not in ("quarter", "year") or quarter_months(schedule, period) is not None


def window_text(task: ScheduledTask, rule: Rule | None, schedule: MaintenanceSchedule, period: date) -> str:
    """The period a rule is judged over, in words, for the result."""
    if rule is not None and rule.target is not None and rule.target.within is not None:
        last = rule_engine.window_last_day(schedule.live_since, rule.target.within)
        within = rule.target.within
        return f"by {last:%-d %B %Y} ({rule_engine.plural(within.n, within.period)} after go-live)"
    if rule is not None and rule.window == "week":
        weeks = month_weeks(period)
        return f"the weeks ending in {period:%B %Y} ({weeks[0]:%-d %b} to {weeks[-1] + timedelta(days=6):%-d %b})"
    if (rule is not None and rule.window == "quarter") or task.cadence == Cadence.QUARTERLY:
        months = quarter_months(schedule, period) or [period]
        return f"the quarter {months[0]:%b %Y} to {months[-1]:%b %Y}"
    if task.cadence == Cadence.FIRST_CYCLE:
        begins, ends = first_cycle(schedule)
        low, high = schedule.first_cycle_days
        return f"the first business cycle, {low}-{high} days after go-live ({begins:%-d %b} to {ends:%-d %b %Y})"
    if task.cadence == Cadence.HALF_YEARLY:
        return f"every 6-12 months: month {months_live(schedule, period) + 1} since go-live ({period:%B %Y})"
    text = f"{period:%B %Y}"
    if rule is not None and rule.evaluate_after is not None:
        last = rule_engine.window_last_day(schedule.live_since, rule.evaluate_after)
        after = rule_engine.plural(rule.evaluate_after.n, rule.evaluate_after.period)
        text += f", judged from {after} after go-live ({last:%-d %B %Y})"
    return text


# --------------------------------------------------------------------------------------------------
# Figures entered by people


def figure_period(text: str) -> tuple[str, date]:
    """(granularity, first day) of a figure's period written YYYY-MM (a month) or YYYY-Www (an ISO week).
    Raises ValueError with what is wrong."""
    text = text.strip()
    if len(text) == 8 and text[4:6].upper() == "-W" and text[:4].isdigit() and text[6:].isdigit():
        return Granularity.WEEK, date.fromisocalendar(int(text[:4]), int(text[6:]), 1)
    if len(text) != 7 or text[4] != "-":
        raise ValueError("a period is written YYYY-MM, or YYYY-Www for a weekly figure")
    return Granularity.MONTH, date.fromisoformat(f"{text}-01")


def check_not_future(period: date, today: date | None = None) -> None:
    """A figure is for a period that has begun: 2031 is a typing error, not a forecast."""
    if period > (today or timezone.localdate()):
        raise DomainError(f"{period:%B %Y} has not begun yet: figures are entered for periods up to the current one.")


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
    granularity: str = Granularity.MONTH,
) -> MetricValue:
    """Store one figure for the month of `period` (or, weekly, for the week containing it)."""
    if value is None and not breakdown:
        raise DomainError(f"{metric}: give a value.")
    start = week_start(period) if granularity == Granularity.WEEK else month_start(period)
    check_not_future(start)
    row, _ = MetricValue.objects.update_or_create(
        organization=engagement.organization,
        engagement=engagement,
        metric=metric,
        key=key,
        granularity=granularity,
        period=start,
        defaults={"value": value, "breakdown": breakdown, "source": source, "entered_by": actor},
    )
    return row


@transaction.atomic
def import_csv(*, engagement, text: str, actor) -> int:
    """Upload figures that live outside the CRM: columns metric, key (optional), period (YYYY-MM, or YYYY-Www for
    a weekly figure), value. A period that has not begun is refused, naming its line and column."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"metric", "period", "value"} - set(reader.fieldnames or [])
    if missing:
        raise DomainError(f"The CSV needs the column(s) {', '.join(sorted(missing))} (line 1).")
    count = 0
    for line, row in enumerate(reader, start=2):
        if None in row.values() or not (row.get("metric") or "").strip():
            raise DomainError(f"Line {line}: it needs a metric, a period and a value.")
        try:
            granularity, period = figure_period(row["period"])
        except ValueError:
            raise DomainError(
                f"Line {line}, column period: write the month as YYYY-MM or the week as YYYY-Www "
                f"(got {row['period']!r})."
            ) from None
        try:
            value = float(row["value"])
        except ValueError:
            raise DomainError(f"Line {line}, column value: a number is needed (got {row['value']!r}).") from None
        if not math.isfinite(value):
            raise DomainError(f"Line {line}, column value: the value must be a finite number (got {row['value']!r}).")
        if period > timezone.localdate():
            raise DomainError(
                f"Line {line}, column period: {row['period'].strip()} has not begun yet; figures are entered for "
                "months (or weeks) up to the current one."
            )
        record_metric(
            engagement=engagement,
            metric=row["metric"].strip(),
            key=(row.get("key") or "").strip(),
            period=period,
            value=value,
            actor=actor,
            source="csv",
            granularity=granularity,
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
    every_tenant = MaintenanceSchedule.objects.across_tenants("beat: the month-end queue covers every tenant")
    queryset = every_tenant if schedules is None else schedules
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


def _values(engagement, metric: str, granularity: str, start: date, end: date) -> dict[date, dict]:
    """{period: {key: value or breakdown}} of one metric's figures with `start` <= period <= `end`."""
    found: dict[date, dict] = {}
    for r in MetricValue.objects.for_org(engagement.organization).filter(
        engagement=engagement, metric=metric, granularity=granularity, period__gte=start, period__lte=end
    ):
        found.setdefault(r.period, {})[r.key] = r.breakdown if r.breakdown is not None else r.value
    return found


def _history(engagement, metric: str, period: date) -> list[dict]:
    """The HISTORY_PERIODS months before `period`, oldest first, one {key: value} each ({} when a month has no
    figure, so a gap breaks a sustained run), for sustained windows and peaks."""
    months = [rule_engine.add_months(month_start(period), -n) for n in range(HISTORY_PERIODS, 0, -1)]
    found = _values(engagement, metric, Granularity.MONTH, months[0], months[-1])
    return [found.get(m, {}) for m in months]


def _crm_computes(crm, metric: str) -> bool:
    """Whether the CRM reading computes this metric (a CrmFigures._<metric> method); other figures are entered.
    `crm` is a CrmFigures, or the class itself to ask without a connection."""
    return crm is not None and callable(getattr(crm, f"_{metric}", None))


def _missing(rule: Rule, crm, period: date) -> str:
    """Why a rule has no figure, truthfully: what to enter, connect or sign."""
    from .crm_metrics import CrmFigures
    from .health_actions import humanize

    what = humanize(rule.metric).lower()
    outside = [OUTSIDE_SOURCES[s] for s in rule.data_source if s in OUTSIDE_SOURCES]
    when = f"the weeks ending in {period:%B %Y} (YYYY-Www)" if rule.window == "week" else f"{period:%B %Y}"
    if _crm_computes(crm, rule.metric):
        return crm.missing.get(rule.metric) or f"the CRM gave no {what} for {period:%B %Y}"
    if outside:
        return f"enter a figure for {when}: {what} comes {' or '.join(outside)} (by hand or CSV)"
    if crm is None and _crm_computes(CrmFigures, rule.metric):
        return f"connect the client's CRM: {what} is read from it (or enter a figure for {when} by hand or CSV)"
    return f"{what} is not computed from the CRM yet: enter a figure for {when} (by hand or CSV)"


def _current(rows: dict, rule: Rule):
    """The figure(s) of one period: {key: value} when keyed, else the single value."""
    if rule.per is not None or any(rows.keys() - {""}):
        return rows
    return rows.get("")


def _quarter(engagement, rule: Rule, schedule: MaintenanceSchedule, period: date) -> tuple[float | None, str]:
    """The quarter's figure made of its three months (sum or mean, as the rule says), or why it cannot be."""
    months = quarter_months(schedule, period)
    found = _values(engagement, rule.metric, Granularity.MONTH, months[0], months[-1])
    values = [found.get(m, {}).get("") for m in months]
    absent = [m for m, v in zip(months, values, strict=True) if not isinstance(v, int | float)]
    if absent:
        names = ", ".join(f"{m:%B %Y}" for m in absent)
        how = "their sum" if rule.aggregate == "sum" else "their mean"
        return None, f"enter the figure of {names}: the quarter's figure is {how} over its three months"
    total = sum(values)
    return (total if rule.aggregate == "sum" else round(total / len(values), 2)), ""


def _weekly(engagement, rule: Rule, period: date) -> tuple[list, list]:
    """(the month's weeks as [(label, value)], the HISTORY_WEEKS weeks before them) of a weekly rule."""
    weeks = month_weeks(period)
    earlier = [weeks[0] - timedelta(days=7 * n) for n in range(HISTORY_WEEKS, 0, -1)]
    found = _values(engagement, rule.metric, Granularity.WEEK, earlier[0], weeks[-1])
    windows = [(f"week of {w:%-d %b}", found.get(w, {}).get("")) for w in weeks]
    return windows, [found.get(w, {}).get("") for w in earlier]


def _counts(engagement, rule: Rule, figures: rule_engine.Figures, period: date, crm):
    """The records behind each figure, for min_count: a volume's own figures (the larger of month and baseline), a
    conversion rate's entries into its first stage this month."""
    current = figures.current
    if not rule.min_count or current is None:
        return None
    if rule.per == "transition" and isinstance(current, dict):
        if _crm_computes(crm, ENTRY_METRIC):
            crm.compute(ENTRY_METRIC, period)
        entries = _values(engagement, ENTRY_METRIC, Granularity.MONTH, period, period).get(period, {})
        return {k: entries.get(k.split("→")[0]) for k in current} if entries else None
    baseline = figures.baseline
    if isinstance(current, dict):
        base = baseline if isinstance(baseline, dict) else {}
        return {k: max(v, base.get(k) or 0) for k, v in current.items() if isinstance(v, int | float)}
    return max(current, baseline or 0) if isinstance(current, int | float) else None


def _figures(engagement, rule: Rule, period: date, schedule: MaintenanceSchedule, crm) -> rule_engine.Figures:
    org = engagement.organization
    if rule.event is not None:
        events = set(
            MetricValue.objects.for_org(org)
            .filter(engagement=engagement, metric=f"event:{rule.event}", period=period)
            .values_list("metric", flat=True)
        )
        return rule_engine.Figures(current=None, events={e.removeprefix("event:") for e in events})
    if _crm_computes(crm, rule.metric):
        crm.compute(rule.metric, period)  # stores MetricValue rows (source crm) or records why it cannot
    missing = _missing(rule, crm, period)
    figures = rule_engine.Figures(
        current=None, live_since=schedule.live_since, as_of=month_end(period), missing_reason=missing
    )
    if rule.comparison == "new_value_vs_signed":
        if crm is None:
            figures.missing_reason = "connect the client's CRM: its stage values are compared with the signed ones"
        else:
            figures.present_values, figures.signed_values = crm.present_and_signed()
            figures.missing_reason = crm.missing.get(rule.metric, "")
        return figures
    baselines = {
        b.key: b.value for b in Baseline.objects.for_org(org).filter(engagement=engagement, metric=rule.metric)
    }
    if rule.window == "week":
        figures.windows, figures.history = _weekly(engagement, rule, period)
        return figures
    if rule.window == "quarter":
        figures.current, reason = _quarter(engagement, rule, schedule, period)
        figures.missing_reason = reason or figures.missing_reason
        figures.baseline = baselines.get("")
        return figures
    rows = _values(engagement, rule.metric, Granularity.MONTH, period, period).get(period)
    if not rows:
        return figures
    figures.current = _current(rows, rule)
    if _crm_computes(crm, rule.metric) and hasattr(crm, "reason"):  # each figure the CRM could not give says why
        figures.reasons = {k: crm.reason(rule.metric, k) for k, v in rows.items() if v is None}
    history = _history(engagement, rule.metric, period)
    if isinstance(figures.current, dict):
        figures.baseline = baselines or None
        figures.history = history
    else:
        figures.baseline = baselines.get("")
        figures.history = [h.get("") for h in history]
    figures.counts = _counts(engagement, rule, figures, period, crm)
    return figures


def _establish_baselines(engagement, period: date, metrics: set[str]) -> None:
    """First business cycle: the period's CRM figures become the baselines not yet set."""
    org = engagement.organization
    known = set(Baseline.objects.for_org(org).filter(engagement=engagement).values_list("metric", "key"))
    for row in MetricValue.objects.for_org(org).filter(
        engagement=engagement, period=period, granularity=Granularity.MONTH, metric__in=metrics, value__isnull=False
    ):
        if (row.metric, row.key) not in known:
            Baseline.objects.create(
                organization=org,
                engagement=engagement,
                metric=row.metric,
                key=row.key,
                value=row.value,
                established_on=month_end(period),  # as of the month checked: a catch-up run sets what it would have
                source=f"first business cycle ({period:%B %Y})",
            )


def _task_results(task: ScheduledTask, schedule: MaintenanceSchedule, run: HealthCheckRun, crm) -> list[HealthResult]:
    """The verdicts of one due task: one per rule (per key for `per` rules), or one review item without rules."""
    from .health_actions import rule_in_words

    common = {"organization": run.organization, "run": run, "task_key": task.key, "task_name": task.name}
    common |= {"kind": task.kind, "response": task.action}
    if not task.rules:
        return [
            HealthResult(
                **common,
                metric="",
                status=rule_engine.NOT_EVALUABLE,
                message=f"{REVIEW_PROMPT}: {task.what_to_check or task.name}",
                window=window_text(task, None, schedule, run.period),
            )
        ]
    results = []
    for index, raw in enumerate(task.rules):
        rule = Rule.model_validate(raw)
        if not rule_is_due(rule, schedule, run.period):
            continue
        verdict = rule_engine.evaluate(rule, _figures(run.engagement, rule, run.period, schedule, crm))
        for part in verdict.parts or [verdict]:
            results.append(
                HealthResult(
                    **common,
                    metric=rule.metric or f"event:{rule.event}",
                    key=part.key,
                    status=part.status,
                    message=part.message,
                    value=part.value,
                    baseline=part.baseline,
                    threshold=part.threshold,
                    rule_index=index,
                    rule_text=rule_in_words(raw),
                    window=window_text(task, rule, schedule, run.period),
                )
            )
    return results


def execute_run(run_id: int, *, crm_factory=None, goal: str = RunStep.EVALUATE) -> HealthCheckRun | None:
    """Claim a queued run and take it to `goal` (by default: evaluate every due rule, no report, no email).
    Returns None when another worker has it."""
    from .health_run import advance

    return advance(run_id, goal=goal, crm_factory=crm_factory)


def evaluate(run: HealthCheckRun, *, crm_factory=None) -> tuple[list[HealthResult], dict]:
    """Read the CRM and the figures and judge every due rule: the results (not saved yet) and the run's counts."""
    from .crm_metrics import CrmFigures

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
            results += _task_results(task, schedule, run, crm)
        if baseline_metrics and in_first_cycle(schedule, run.period):
            _establish_baselines(engagement, run.period, baseline_metrics)
    finally:
        if crm is not None:
            crm.close()
    _carry_explanations(run, results)
    return results, {
        "red_count": sum(r.status == rule_engine.RED for r in results),
        "not_evaluable_count": sum(r.status == rule_engine.NOT_EVALUABLE for r in results),
        "api_calls": crm.calls if crm else 0,
        "error": "; ".join(crm.errors) if crm else "",
    }


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
    schedule = MaintenanceSchedule.objects.for_task(schedule_id).select_related("engagement__organization").get()
    done = []
    for period in catch_up_periods(schedule, today):
        run, _ = create_run(schedule.engagement, period)
        finished = execute_run(run.pk, goal=RunStep.REPORT)
        if finished is not None:
            done.append(finished)
    return done


RAN, ALREADY_FINISHED, IN_PROGRESS = "ran", "already_finished", "in_progress"


def check_now(
    engagement, period: date, *, actor=None, actor_label: str = "", crm_factory=None, email: bool = True
) -> tuple[HealthCheckRun, str]:
    """The run of (engagement, period), created once, executed in this process, then reported and emailed as the
    run_health_check task does (without `email`, reported only: a back-filled month is not emailed unless asked).
    Returns the run and what happened to it here:

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
    goal = RunStep.SEND if email else RunStep.REPORT
    done = execute_run(run.pk, crm_factory=crm_factory, goal=goal) if run.status == RunStatus.QUEUED else None
    if done is None:
        run.refresh_from_db()
        return run, IN_PROGRESS if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) else ALREADY_FINISHED
    return done, RAN


__all__ = [
    "adjust_task",
    "check_now",
    "create_run",
    "due_schedules",
    "execute_run",
    "explanations_in_force",
    "import_csv",
    "queue_due_runs",
    "record_metric",
    "set_baseline",
    "start_schedule",
]
