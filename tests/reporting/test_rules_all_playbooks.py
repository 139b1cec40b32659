"""Every maintenance rule of every playbook, generated from its YAML: figures just inside and just outside the
threshold (or target), in the months inside and outside the rule's window, checked month by month as they come
(on time) and all at once afterwards (a catch-up), give the same status, and the status the seed's words give.

The expected statuses come from a small model written here from the seeds' wording (not from reporting/): which
months a task is due in, when a window counted from go-live ends (worked out by hand from 15 January 2026), and
which side of its threshold each month's figure was put on.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from engagements import progression
from playbooks.loader import load_library
from playbooks.models import Playbook
from reporting import figures, runs, schedules
from reporting.models import Granularity, HealthResult
from tests.conftest import ensure_library

LIVE = date(2026, 1, 15)  # go-live, mid-month so that a window can end inside a month that is checked
JAN, FEB, MAR, APR, MAY, JUN, JUL = (date(2026, m, 1) for m in range(1, 8))
MONTHS = [JAN, FEB, MAR, APR, MAY, JUN, JUL]
MONTH_ENDS = {JAN: 31, FEB: 28, MAR: 31, APR: 30, MAY: 31, JUN: 30, JUL: 31}
# Windows counted from 15 January 2026, by hand: 30 days end on 13 February (17 days of January + 13), 60 days on
# 15 March (17 + 28 + 15), 2 quarters (6 months) on 14 July.
DEADLINES = {(30, "day"): date(2026, 2, 13), (60, "day"): date(2026, 3, 15), (2, "quarter"): date(2026, 7, 14)}
# The first business cycle, days 30 to 60 (GTM Lifecycle) or 30 to 90 (RI, PRM) after go-live: 14 February to
# 16 March or 15 April, so the months it touches are February and March, or February to April.
FIRST_CYCLE_MONTHS = {(30, 60): [FEB, MAR], (30, 90): [FEB, MAR, APR]}
QUARTER_ENDS = [MAR, JUN]  # quarters since go-live: January-March, April-June
KEYS = {"transition": "MQL→SAL", "stage": "SQL", "manager": "Ana Ruiz"}  # one key for a rule read `per` key
THRESHOLDS = {"below", "above", "count_above", "duration_above", "share_above", "drop_pp", "drop_pct", "drop_from_peak"}
IN, OUT, ALTERNATING, PEAK = "inside", "outside", "single weeks outside", "peak"
OK, RED, WATCH, INFO = "ok", "red", "watch", "info"


@dataclass(frozen=True)
class Case:
    playbook: str
    task: str
    cadence: str
    index: int
    rule: object
    first_cycle: tuple[int, int] | None

    def __str__(self) -> str:
        return f"{self.playbook}:{self.task}:{self.index}"


def library_cases() -> list[Case]:
    """Every maintenance rule with a threshold, a target or a baseline to beat (tracking and event rules have no
    figure to be inside or outside of; the signed-architecture audit needs a CRM and is tested with one)."""
    cases = []
    for pb in load_library():
        if pb.maintenance is None:
            continue
        cycle = pb.maintenance.first_business_cycle
        window = (cycle.window_days.min, cycle.window_days.max) if cycle else None
        owned = [(t.key, t.cadence, n, r) for t in pb.maintenance.tasks for n, r in enumerate(t.rules)]
        owned += [(t.key, "monthly", 0, t.rule) for t in pb.maintenance.refinement_triggers]
        for key, cadence, index, rule in owned:
            if rule.comparison in THRESHOLDS | {"target", "no_increase"}:
                cases.append(Case(pb.key, key, cadence, index, rule, window))
    return cases


CASES = library_cases()


# --------------------------------------------------------------------------------------------------
# The model: due months, windows, the two sides of a threshold


def deadline(rule) -> date | None:
    window = rule.evaluate_after or (rule.target.within if rule.target else None)
    return None if window is None else DEADLINES[(window.n, window.period)]


def month_end(month: date) -> date:
    return month.replace(day=MONTH_ENDS[month])


def due(case: Case, month: date) -> bool:
    """Monthly tasks and triggers every month; quarterly ones and rules read per quarter at each quarter's end;
    first-business-cycle tasks in the cycle's months and in the month their target's deadline falls in."""
    if case.rule.period == "quarter" or case.cadence == "quarterly":
        return month in QUARTER_ENDS
    if case.cadence == "after_first_business_cycle":
        target = case.rule.target
        end = deadline(case.rule) if target is not None and target.within is not None else None
        return month in FIRST_CYCLE_MONTHS[case.first_cycle] or (end is not None and end.replace(day=1) == month)
    assert case.cadence in ("monthly", "weekly"), case.cadence
    return True


def judged_month(case: Case) -> date:
    """The first month after January in which the rule is due and its window has elapsed."""
    end = deadline(case.rule)
    return next(m for m in MONTHS[1:] if due(case, m) and (end is None or month_end(m) >= end))


def last_month(case: Case) -> date:
    """The judged month, or for a first-business-cycle task the month after its cycle, when it is no longer due."""
    judged = judged_month(case)
    if case.cadence != "after_first_business_cycle":
        return judged
    after = MONTHS[MONTHS.index(FIRST_CYCLE_MONTHS[case.first_cycle][-1]) + 1]
    return max(judged, after)


def sides(case: Case, scenario: str) -> dict[date, str]:
    """Which side of the threshold each month's figure is on. The judged month gets the scenario's side; the months
    before it the opposite one (so each month visibly answers for its own figure); the months after it an outside
    figure (a first-business-cycle task must not report it once the cycle is over)."""
    judged, last = judged_month(case), last_month(case)
    months = [m for m in MONTHS if m <= last]
    if scenario == "outside, held the month before":
        chosen = {m: IN for m in months if m < judged} | {MONTHS[MONTHS.index(judged) - 1]: OUT, judged: OUT}
    else:
        at = {"inside": IN, "outside": OUT, "outside in single weeks": ALTERNATING}[scenario]
        before = OUT if at == IN else IN
        chosen = {m: before for m in months if m < judged} | {judged: at}
    chosen |= {m: OUT for m in months if m > judged}
    if case.rule.comparison == "drop_from_peak":
        chosen[JAN] = PEAK  # the peak the later months are measured from
    return chosen


def expected(case: Case, by_month: dict[date, str]) -> dict[date, str | None]:
    """The status of each month (None: the rule is not in that month's run), from the seed's words."""
    rule, end = case.rule, deadline(case.rule)
    found = {}
    for month, side in by_month.items():
        before_deadline = end is not None and month_end(month) < end
        previous = by_month.get(MONTHS[MONTHS.index(month) - 1]) if month != JAN else None
        if not due(case, month):
            status = None
        elif rule.comparison == "target":  # met is met; missed is "not yet due" until the window ends
            status = OK if side == IN else (INFO if before_deadline else RED)
        elif rule.evaluate_after is not None and before_deadline:
            status = INFO
        elif side in (IN, PEAK):
            status = OK
        elif side == ALTERNATING:  # single weeks below, never two in a row, and the month ends above: no flag
            status = OK
        elif rule.window == "week":  # every week of the month outside: two in a row and more
            status = RED
        elif rule.sustained is not None:
            status = RED if previous == OUT else WATCH
        else:
            status = RED
        found[month] = status
    return found


def scenarios(case: Case) -> list[str]:
    names = ["inside", "outside"]
    if case.rule.sustained is not None and case.rule.window == "month":
        names.append("outside, held the month before")
    if case.rule.window == "week":
        names.append("outside in single weeks")
    return names


def slot(case: Case) -> tuple[str, str]:
    """Where a rule's figures are kept: its metric, monthly or weekly."""
    return case.rule.metric, "week" if case.rule.window == "week" else "month"


def groups() -> list:
    """The cases of each playbook and scenario, packed into as few engagements as their figures allow: rules that
    read different figures share an engagement (each is judged on its own figures, so they cannot disturb each
    other); two rules on the same figures each get their own. Fewer engagements, fewer months to report."""
    params = []
    for playbook in sorted({c.playbook for c in CASES}):
        for scenario in ("inside", "outside", "outside, held the month before", "outside in single weeks"):
            packed: list[list[Case]] = []
            for case in (c for c in CASES if c.playbook == playbook and scenario in scenarios(c)):
                home = next((g for g in packed if slot(case) not in {slot(c) for c in g}), None)
                if home is None:
                    packed.append([case])
                else:
                    home.append(case)
            params += [pytest.param(g, scenario, id=f"{playbook}:{scenario}:{n}") for n, g in enumerate(packed, 1)]
    return params


# --------------------------------------------------------------------------------------------------
# Figures on each side, from the rule's own threshold


def reasons(leading: int, total: int = 1000) -> dict:
    """{reason: count} of `total` records where reason "A" leads with `leading`, the rest in groups of 50."""
    rest = total - leading
    return {"A": leading, **{f"R{n}": min(50, rest - 50 * n) for n in range((rest + 49) // 50)}}


def baseline_of(rule) -> float | None:
    if rule.comparison == "drop_pp":
        return 50.0
    if rule.comparison == "drop_pct":
        return 1000.0
    if rule.comparison == "no_increase":
        return 10.0
    if rule.comparison == "target":
        return {"value": None, "increase_from_baseline": 50.0, "reduction_from_baseline": 1000.0}.get(
            rule.target.of, 10.0
        )
    return None


def figure(rule, side: str):
    """A figure exactly at the threshold (inside: not a flag) or one step past it (outside), worked out from the
    seed's wording: "below 85%" is red at 84.9; "drops >5 pp from baseline" is red at 5.1 pp; "more than 10 points
    from peak" is red at 10.1 below the peak of 80; a target of "+15 pp" is met at exactly +15."""
    c, t = rule.comparison, rule.threshold
    step = 1 if rule.unit == "count" else 0.1
    out = side == OUT
    if side == PEAK:
        return 80.0
    if c == "below":
        return t - step if out else t
    if c in ("above", "count_above", "duration_above"):
        return t + step if out else t
    if c == "share_above":
        if rule.per:  # 1000 records: the leading reason holds t% of them, then one record more
            return reasons(round(t * 10) + (1 if out else 0))
        return t + step if out else t
    if c == "drop_pp":
        return 50 - t - step if out else 50 - t
    if c == "drop_pct":  # t% fewer than a baseline of 1000, then one fewer still
        return 1000 - 10 * t - (1 if out else 0)
    if c == "drop_from_peak":
        return 80 - t - step if out else 80 - t
    if c == "no_increase":
        return 10.0 if out else 10.1
    target = rule.target
    v, above = target.value, target.op in ("gt", "gte")
    strict = target.op in ("gt", "lt")
    if target.of == "value":
        met = v + (0.1 if above else -0.1) if strict else v
        missed = v if strict else v + (-0.1 if above else 0.1)
        return missed if out else met
    assert above and not strict, target  # the library's baseline targets are all "at least"
    if target.of == "increase_from_baseline":
        return 50 + v - (0.1 if out else 0)
    if target.of == "reduction_from_baseline":  # v% lower than 1000, then one record short of it
        return 1000 - 10 * v + (1 if out else 0)
    return 10 * v - (0.1 if out else 0)  # a multiple of a baseline of 10


def quarter_figures(rule, side: str) -> list[float]:
    """The three months of a quarter whose figure (their sum or mean, as the rule says) is exactly the threshold,
    or one step past it: a month on the wrong side of it alone does not decide the quarter."""
    t, sign = rule.threshold, (-1 if rule.comparison == "below" else 1)
    if rule.aggregate == "mean":
        months = [t + 1, t - 1, t]
        months[2] += sign * 0.3 if side == OUT else 0  # the mean moves by 0.1
    else:
        months = [0.3 * t, 0.3 * t, 0.4 * t]
        months[2] += sign * 0.1 if side == OUT else 0
    return months


# --------------------------------------------------------------------------------------------------
# Driving an engagement


def begin(cast, cases: list[Case], name: str):
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key=cases[0].playbook).latest_version(),
        name=name,
        start_date=date(2025, 11, 3),
        actor=cast.consultant,
        engagement_type="dedicated",
    )
    schedules.start_schedule(engagement=engagement, actor=cast.consultant, live_since=LIVE)
    for case in cases:
        baseline = baseline_of(case.rule)
        if baseline is not None:
            key = KEYS.get(case.rule.per or "", "")
            figures.set_baseline(
                engagement=engagement, metric=case.rule.metric, key=key, value=baseline, actor=cast.consultant
            )
    return engagement


def weeks_of(month: date) -> list[date]:
    """The Mondays of the weeks lying wholly in the month, Monday to Sunday: January 2026 starts on a Thursday, so
    5, 12 and 19 January (26 January ends on 1 February); February, 2, 9 and 16 (23 February ends on 1 March).
    A week across a month end gets no figure here: which month it belongs to is tested on its own."""
    monday = month + timedelta(days=(7 - month.weekday()) % 7)
    found = []
    while (monday + timedelta(days=6)).month == month.month:
        found.append(monday)
        monday += timedelta(days=7)
    return found


def enter(engagement, case: Case, month: date, side: str) -> None:
    rule = case.rule
    key = KEYS.get(rule.per or "", "")
    if rule.period == "quarter":
        if month in QUARTER_ENDS:
            quarter = [MONTHS[MONTHS.index(month) - n] for n in (2, 1, 0)]
            for m, value in zip(quarter, quarter_figures(rule, side), strict=True):
                figures.record_metric(engagement=engagement, metric=rule.metric, period=m, value=value)
        return
    if rule.window == "week":
        weeks = weeks_of(month)
        for n, monday in enumerate(weeks):
            week_side = side if side != ALTERNATING else (OUT if n % 2 == 1 and n < len(weeks) - 1 else IN)
            figures.record_metric(
                engagement=engagement,
                metric=rule.metric,
                period=monday,
                value=figure(rule, week_side),
                granularity=Granularity.WEEK,
            )
        return
    value = figure(rule, side)
    as_breakdown = isinstance(value, dict)
    figures.record_metric(
        engagement=engagement,
        metric=rule.metric,
        period=month,
        key=key,
        value=None if as_breakdown else value,
        breakdown=value if as_breakdown else None,
    )


def verdicts(engagement, case: Case) -> dict[date, list[tuple[str, str]]]:
    found: dict[date, list[tuple[str, str]]] = {}
    for r in HealthResult.objects.filter(
        run__engagement=engagement, task_key=case.task, rule_index=case.index
    ).order_by("run__period", "key"):
        found.setdefault(r.run.period, []).append((r.status, r.message))
    return found


def statuses(found: dict, months) -> dict[date, str | None]:
    out = {}
    for month in months:
        results = found.get(month, [])
        assert len(results) <= 1, results  # one rule, one key: one verdict at most
        out[month] = results[0][0] if results else None
    return out


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # catch-up runs render their reports


@pytest.mark.parametrize(("cases", "scenario"), groups())
def test_on_time_and_catch_up_give_the_status_the_seed_gives(cast, cases, scenario):
    plans = [(case, sides(case, scenario)) for case in cases]
    months = sorted({m for _, plan in plans for m in plan})

    def enter_month(engagement, month):
        for case, plan in plans:
            if month in plan:
                enter(engagement, case, month, plan[month])

    on_time = begin(cast, cases, "On time")
    for month in months:  # each month's figures arrive, then its run, before the next month's figures exist
        enter_month(on_time, month)
        run, _ = runs.create_run(on_time, month)
        runs.execute_run(run.pk)
    caught_up = begin(cast, cases, "Caught up")
    for month in months:
        enter_month(caught_up, month)
    after = months[-1].replace(month=months[-1].month + 2)  # a catch-up covers the months before last month
    assert [r.period for r in runs.catch_up(caught_up.maintenance_schedule.pk, today=after)] == months

    want = {str(case): expected(case, plan) for case, plan in plans}
    late = {str(case): verdicts(caught_up, case) for case in cases}
    assert {str(case): statuses(late[str(case)], sorted(plan)) for case, plan in plans} == want
    assert {str(case): verdicts(on_time, case) for case in cases} == late  # the same verdicts, word for word
    judged = {want[str(case)][judged_month(case)] for case in cases}
    no_flag = scenario in ("inside", "outside in single weeks")
    assert judged <= ({OK} if no_flag else {RED, WATCH}), "the judged month's figure decides"


def test_every_rule_with_a_threshold_or_target_is_in_the_table():
    """Guards the generation: each playbook with maintenance rules contributes, and every kind of window is met."""
    by_playbook = {c.playbook for c in CASES}
    assert by_playbook == {"gtm-lifecycle", "partnership-success", "revenue-intelligence"}
    assert {c.rule.window for c in CASES} >= {"month", "week", "quarter"}
    assert any(c.rule.evaluate_after for c in CASES) and any(c.rule.target and c.rule.target.within for c in CASES)
    assert len(CASES) == 31
