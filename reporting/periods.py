"""The periods health checks count in: months and ISO weeks, the month a run checks, the next run's date, and a
schedule's calendar (months since go-live, its first business cycle, quarters, which tasks and rules are due in a
month and the window each is judged over, in words).

Two month arithmetics: `add_months` here moves between first days of months (periods, axes, an explanation's
cover); `health_rules.add_months` keeps the day of the month (windows counted from go-live).
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from playbooks.schema import Rule

from . import health_rules as rule_engine
from .models import Cadence, MaintenanceSchedule, ScheduledTask

TREND_MONTHS = 6
CATCH_UP_MONTHS = 12


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


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_axis(last: date, months: int = TREND_MONTHS) -> list[date]:
    """The first days of the `months` months ending with `last`'s month, oldest first."""
    end = month_start(last)
    return [add_months(end, -n) for n in range(months - 1, -1, -1)]


def due_period(today: date | None = None) -> date:
    """The month a run created today checks: the month just ended (as beat does)."""
    return previous_month(today or timezone.localdate())


@dataclass
class NextDue:
    period: date  # the month the next run checks
    on: date  # when beat creates it
    overdue: bool  # the month has ended and its run does not exist yet


def next_due(schedule: MaintenanceSchedule, *, has_due_run: bool, today: date | None = None) -> NextDue | None:
    """When the next monthly run comes, given whether the month just ended already has its run."""
    if not schedule.active:
        return None
    today = today or timezone.localdate()
    ended = due_period(today)
    if not has_due_run and schedule.live_since < ended + timedelta(days=31):
        return NextDue(period=ended, on=today, overdue=True)
    current = month_start(today)
    return NextDue(period=current, on=add_months(current, 1), overdue=False)


# --------------------------------------------------------------------------------------------------
# A schedule's calendar: business cycles, quarters since go-live, what is due in a month


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


def live_weeks(schedule: MaintenanceSchedule, period: date) -> list[date]:
    """The month's weeks (`month_weeks`) that end on or after go-live: a week before it has nothing to measure."""
    return [w for w in month_weeks(period) if w + timedelta(days=6) >= schedule.live_since]


def rule_is_due(rule: Rule, schedule: MaintenanceSchedule, period: date) -> bool:
    """A rule read per quarter is judged at the quarter's end (in the run of its third month) only; one read per
    week in a month with a week since go-live."""
    if rule.window == "week":
        return bool(live_weeks(schedule, period))
    return rule.window not in ("quarter", "year") or quarter_months(schedule, period) is not None


def window_text(task: ScheduledTask, rule: Rule | None, schedule: MaintenanceSchedule, period: date) -> str:
    """The period a rule is judged over, in words, for the result."""
    if rule is not None and rule.target is not None and rule.target.within is not None:
        last = rule_engine.window_last_day(schedule.live_since, rule.target.within)
        within = rule.target.within
        return f"by {last:%-d %B %Y} ({rule_engine.plural(within.n, within.period)} after go-live)"
    if rule is not None and rule.window == "week":
        weeks = live_weeks(schedule, period) or month_weeks(period)
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


def catch_up_periods(schedule: MaintenanceSchedule, today: date | None = None) -> list[date]:
    """The ended months from go-live to the month before the one just ended (the last year at most), oldest first."""
    due = previous_month(today or timezone.localdate())
    periods, period = [], month_start(schedule.live_since)
    while period < due:
        periods.append(period)
        period = month_start(period + timedelta(days=32))
    return periods[-CATCH_UP_MONTHS:]
