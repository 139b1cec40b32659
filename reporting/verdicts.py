"""A run's verdicts: every rule due in the month judged against its figures.

Each rule's figures are gathered (from the CRM through `crm_metrics`, which stores them as it reads, or from the
figures people entered or uploaded), judged by the rule language (`health_rules`) and kept as HealthResult rows
(not saved here: the run's evaluate step saves them). The first business cycle sets the baselines not yet set; a
flag red again while an earlier explanation covers it shows as explained (`flags.carry_explanations`).
"""

from datetime import date, timedelta

from playbooks.schema import Rule

from . import health_rules as rule_engine
from .crm_metrics import CrmFigures
from .flags import carry_explanations
from .health_rules import humanize, rule_in_words
from .models import (
    Baseline,
    Cadence,
    Granularity,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    MetricValue,
    ScheduledTask,
)
from .periods import (
    first_cycle,
    in_first_cycle,
    is_due,
    live_weeks,
    month_end,
    month_start,
    quarter_months,
    rule_is_due,
    window_text,
)

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


def _weekly(engagement, rule: Rule, schedule: MaintenanceSchedule, period: date) -> tuple[list, list]:
    """(the month's weeks since go-live as [(label, value)], the HISTORY_WEEKS weeks before them) of a weekly
    rule."""
    weeks = live_weeks(schedule, period)
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
    begins, ends = first_cycle(schedule)
    if rule.comparison in BASELINE_RULES and month_start(period) <= ends:
        # "These become the benchmarks for monthly monitoring" (001 4a): monitoring against a baseline starts once
        # the first business cycle has set it; the cycle's own months set it after they are judged.
        figures.baseline_pending = f"the baseline the first business cycle sets ({begins:%-d %b} to {ends:%-d %b %Y})"
    if rule.window == "week":
        figures.windows, figures.history = _weekly(engagement, rule, schedule, period)
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


def evaluate(run: HealthCheckRun, *, crm_factory=None) -> tuple[list[HealthResult], dict]:
    """Read the CRM and the figures and judge every due rule: the results (not saved yet) and the run's counts."""
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
    carry_explanations(run, results)
    return results, {
        "red_count": sum(r.status == rule_engine.RED for r in results),
        "not_evaluable_count": sum(r.status == rule_engine.NOT_EVALUABLE for r in results),
        "api_calls": crm.calls if crm else 0,
        "error": "; ".join(crm.errors) if crm else "",
    }
