"""The rule language, exercised with the library's own rules (thresholds as the seeds state them)."""

from datetime import date, timedelta

import pytest

from playbooks.loader import load_library
from reporting.health_rules import EXPLAINED, INFO, NOT_EVALUABLE, OK, RED, WATCH, Figures, evaluate

LIBRARY = {pb.key: pb for pb in load_library()}


def rule(playbook: str, key: str):
    pb = LIBRARY[playbook]
    for task in pb.maintenance.tasks:
        if task.key == key:
            return task.rules[0]
    for trigger in pb.maintenance.refinement_triggers:
        if trigger.key == key:
            return trigger.rule
    for kpi in pb.hypercare.kpis if pb.hypercare else []:
        if kpi.key == key:
            return kpi.rule
    raise KeyError(key)


CONVERSION = rule("gtm-lifecycle", "stage-conversion-rate-check")


def test_conversion_rate_drop_of_more_than_five_points_flags_only_that_transition():
    figures = Figures(current={"MQL→SAL": 42.0, "SAL→SQL": 30.0}, baseline={"MQL→SAL": 48.0, "SAL→SQL": 33.0})
    result = evaluate(CONVERSION, figures)
    assert result.status == RED
    by_key = {p.key: p.status for p in result.parts}
    assert by_key == {"MQL→SAL": RED, "SAL→SQL": OK}  # 6 pp is a flag, 3 pp is not
    assert "down 6 pp" in result.message


def test_exactly_five_points_is_not_more_than_five():
    assert evaluate(CONVERSION, Figures(current={"MQL→SAL": 43.0}, baseline={"MQL→SAL": 48.0})).status == OK


def test_no_baseline_is_not_evaluable_and_says_why():
    result = evaluate(CONVERSION, Figures(current={"MQL→SAL": 43.0}))
    assert result.status == NOT_EVALUABLE and "no baseline" in result.message


def test_production_drop_over_twenty_percent_unless_explained():
    volume = rule("gtm-lifecycle", "production-by-stage-volume")
    figures = Figures(current={"MQL": 70.0, "SAL": 95.0}, baseline={"MQL": 100.0, "SAL": 100.0})
    assert evaluate(volume, figures).status == RED
    figures.explanation = "Trade show season ended; expected seasonal dip."
    assert evaluate(volume, figures).status == EXPLAINED


def test_rogue_stage_audit_against_the_signed_architecture():
    rogue = rule("gtm-lifecycle", "rogue-stage-audit")
    signed = {"Lead", "MQL", "SAL", "SQL"}
    result = evaluate(rogue, Figures(current=None, present_values={"Lead", "MQL", "Hot Lead"}, signed_values=signed))
    assert result.status == RED and "Hot Lead" in result.message
    assert evaluate(rogue, Figures(current=None, present_values={"MQL"}, signed_values=signed)).status == OK
    unsigned = evaluate(rogue, Figures(current=None, present_values={"MQL"}))
    assert unsigned.status == NOT_EVALUABLE and "signed" in unsigned.message


def test_drop_off_reason_share_above_thirty_percent_per_stage():
    reasons = rule("gtm-lifecycle", "drop-off-reason-review")
    figures = Figures(
        current={
            "SAL": {"No budget": 4, "Timing": 3, "Competitor": 3},
            "SQL": {"No budget": 2, "Timing": 2, "Competitor": 2, "Other": 2},
        }
    )
    result = evaluate(reasons, figures)
    assert {p.key: p.status for p in result.parts} == {"SAL": RED, "SQL": OK}


def test_missing_field_is_reported_not_passed():
    reasons = rule("gtm-lifecycle", "drop-off-reason-review")
    result = evaluate(reasons, Figures(current=None, missing_reason="no drop-off reason field"))
    assert result.status == NOT_EVALUABLE and result.message == "no drop-off reason field"


def test_sustained_trigger_fires_only_after_two_months():
    trigger = rule("gtm-lifecycle", "conversion-rate-decline")
    baseline = {"SQL→SAO": 40.0}
    first = Figures(current={"SQL→SAO": 35.0}, baseline=baseline, history=[{"SQL→SAO": 40.0}])
    assert evaluate(trigger, first).status == WATCH
    second = Figures(current={"SQL→SAO": 34.0}, baseline=baseline, history=[{"SQL→SAO": 40.0}, {"SQL→SAO": 35.0}])
    result = evaluate(trigger, second)
    assert result.status == RED and "2 consecutive months" in result.message
    recovered = Figures(current={"SQL→SAO": 39.0}, baseline=baseline, history=[{"SQL→SAO": 35.0}])
    assert evaluate(trigger, recovered).status == OK


def test_revenue_intelligence_thresholds():
    compliance = rule("revenue-intelligence", "forecast-submission-compliance")
    assert evaluate(compliance, Figures(current=84.0)).status == RED
    assert evaluate(compliance, Figures(current=85.0)).status == OK
    coverage = rule("revenue-intelligence", "recording-coverage-dropping")
    assert evaluate(coverage, Figures(current=80.0, history=[90.0])).status == WATCH
    assert evaluate(coverage, Figures(current=80.0, history=[84.0])).status == RED
    accuracy = rule("revenue-intelligence", "forecast-accuracy-declining")
    assert evaluate(accuracy, Figures(current=70.0, history=[75.0, 82.0, 78.0])).status == RED  # 12 from peak
    assert evaluate(accuracy, Figures(current=74.0, history=[75.0, 82.0, 78.0])).status == OK  # 8 from peak


def test_partnership_deal_registration_flat_after_sixty_days_and_sync_errors():
    flat = rule("partnership-success", "deal-registration-flat")
    early = Figures(current=10.0, baseline=10.0, live_since=date(2026, 10, 1), as_of=date(2026, 11, 1))
    assert evaluate(flat, early).status == INFO
    late = Figures(current=10.0, baseline=10.0, live_since=date(2026, 8, 1), as_of=date(2026, 11, 1))
    assert evaluate(flat, late).status == RED
    grew = Figures(current=14.0, baseline=10.0, live_since=date(2026, 8, 1), as_of=date(2026, 11, 1))
    assert evaluate(flat, grew).status == OK
    sync = rule("partnership-success", "crm-sync-health-check")
    assert evaluate(sync, Figures(current=49.0)).status == RED
    assert evaluate(sync, Figures(current=47.0)).status == OK


def test_target_within_a_window():
    login = rule("partnership-success", "portal-login-rate")
    early = Figures(current=40.0, live_since=date(2026, 11, 1), as_of=date(2026, 11, 10))
    assert evaluate(login, early).status == INFO
    late = Figures(current=40.0, live_since=date(2026, 9, 1), as_of=date(2026, 11, 10))
    assert evaluate(login, late).status == RED
    assert evaluate(login, Figures(current=75.0, live_since=date(2026, 9, 1), as_of=date(2026, 11, 10))).status == OK


def test_events_and_tracking():
    motion = rule("gtm-lifecycle", "new-gtm-motion")
    assert evaluate(motion, Figures(current=None, events={"new_gtm_motion"})).status == RED
    assert evaluate(motion, Figures(current=None)).status == OK
    tracked = rule("gtm-lifecycle", "time-in-stage-analysis")
    assert evaluate(tracked, Figures(current={"MQL→SAL": 4.5})).status == INFO


@pytest.mark.parametrize("playbook", sorted(k for k, pb in LIBRARY.items() if pb.maintenance))
def test_every_library_rule_evaluates_without_data_to_not_evaluable_or_ok(playbook):
    """No rule of the library passes silently when it has no data."""
    pb = LIBRARY[playbook]
    rules = [r for t in pb.maintenance.tasks for r in t.rules] + [t.rule for t in pb.maintenance.refinement_triggers]
    for r in rules:
        result = evaluate(r, Figures(current=None, missing_reason="needs manual input"))
        expected = OK if r.event else NOT_EVALUABLE
        assert result.status == expected, (r, result)


# --------------------------------------------------------------------------------------------------
# Every threshold rule of the library, from its YAML: just inside and just outside its threshold.

THRESHOLDS = {"below", "above", "count_above", "duration_above", "share_above", "drop_pp", "drop_pct", "drop_from_peak"}


def library_rules(comparisons=None):
    """(playbook, task or trigger key, rule) of every maintenance rule in the library."""
    found = []
    for pb in LIBRARY.values():
        if pb.maintenance is None:
            continue
        owned = [(t.key, r) for t in pb.maintenance.tasks for r in t.rules]
        owned += [(t.key, t.rule) for t in pb.maintenance.refinement_triggers]
        found += [(pb.key, key, r) for key, r in owned if comparisons is None or r.comparison in comparisons]
    return found


def reasons(leading: int, total: int = 1000) -> dict:
    """{reason: count} of `total` records where reason "A" leads with `leading`, the rest in groups of 50."""
    rest = total - leading
    return {"A": leading, **{f"R{n}": min(50, rest - 50 * n) for n in range((rest + 49) // 50)}}


def boundary(rule) -> tuple[dict, dict]:
    """Figures (as keyword arguments) exactly at the seed's threshold (not a flag) and just past it (a flag), worked
    out from the comparison's wording: "below 85%" is red at 84.9; "drops >5 pp from baseline" is red at 5.1 pp."""
    t = rule.threshold
    step = 1 if rule.unit == "count" else 0.1
    if rule.comparison == "below":
        return {"current": t}, {"current": t - step}
    if rule.comparison in ("above", "count_above", "duration_above"):
        return {"current": t}, {"current": t + step}
    if rule.comparison == "share_above":  # 1000 records: the leading reason holds t% of them, then one more
        leading = round(t * 10)
        return {"current": reasons(leading)}, {"current": reasons(leading + 1)}
    if rule.comparison == "drop_pp":
        return {"current": 50 - t, "baseline": 50}, {"current": 50 - t - step, "baseline": 50}
    if rule.comparison == "drop_pct":  # a baseline of 1000 records: t% fewer, then one record fewer still
        return {"current": 1000 - 10 * t, "baseline": 1000}, {"current": 1000 - 10 * t - 1, "baseline": 1000}
    assert rule.comparison == "drop_from_peak"
    return {"current": 80 - t, "history": [80]}, {"current": 80 - t - step, "history": [80]}


def figures_for(rule, values: dict, *, held: bool = True) -> Figures:
    """Figures for the rule's shape: per key when it says `per`, per week when it reads weeks, with the earlier
    windows a sustained rule needs (`held`: they were past the threshold too; else the window just before was not)."""
    current, baseline, history = values["current"], values.get("baseline"), list(values.get("history", []))
    if rule.sustained is not None:
        before = current if held else boundary(rule)[0]["current"]
        history += [before] * (rule.sustained.n - 1)
    counts = 1000 if rule.min_count else None  # plenty of records behind each figure
    if rule.window == "week":
        return Figures(current=None, history=history, windows=[("week of 5 Oct", current)])
    if rule.per:
        return Figures(
            current={"X": current},
            history=[{"X": h} for h in history],
            baseline=None if baseline is None else {"X": baseline},
            counts={"X": counts} if counts else None,
        )
    return Figures(current=current, history=history, baseline=baseline, counts=counts)


THRESHOLD_RULES = library_rules(THRESHOLDS)


@pytest.mark.parametrize(("playbook", "key", "rule"), THRESHOLD_RULES, ids=[f"{p}:{k}" for p, k, _ in THRESHOLD_RULES])
def test_each_threshold_holds_to_the_boundary(playbook, key, rule):
    at, past = boundary(rule)
    assert evaluate(rule, figures_for(rule, at)).status == OK, "at the threshold is not past it"
    assert evaluate(rule, figures_for(rule, past)).status == RED, "just past the threshold is a flag"
    if rule.sustained is not None:
        # Past the threshold in this window only: not yet the sustained run the seed asks for.
        assert evaluate(rule, figures_for(rule, past, held=False)).status == WATCH


# Every rule whose window counts from go-live ("after 60 days live", "within 2 quarters", "within 30 days"): a figure
# that misses it is "not yet due" up to the day before its window ends, and judged from that day on.

LIVE = date(2026, 1, 1)
MONTH_ENDS = {3: date(2026, 3, 31), 6: date(2026, 6, 30), 12: date(2026, 12, 31)}  # from 1 January, by hand


def last_day(window) -> date:
    """The window's last day counted from 1 January 2026, worked out by hand: 60 days end on 1 March (31 + 28 + 1)."""
    if window.period == "day":
        return LIVE + timedelta(days=window.n - 1)
    if window.period == "week":
        return LIVE + timedelta(days=7 * window.n - 1)
    return MONTH_ENDS[window.n * {"month": 1, "quarter": 3, "year": 12}[window.period]]


WINDOWED = [
    (p, k, r)
    for p, k, r in library_rules()
    if r.evaluate_after is not None or (r.target is not None and r.target.within is not None)
]


def missed(rule) -> dict:
    """Figures that miss the rule: no increase on its baseline, or a target missed by a wide margin."""
    if rule.comparison == "no_increase":
        return {"current": 10.0, "baseline": 10.0}
    target = rule.target
    if target.of == "value":
        return {"current": target.value - 20 if target.op in ("gt", "gte") else target.value + 20}
    return {"current": 50.0, "baseline": 50.0}  # no change at all: misses any improvement target


@pytest.mark.parametrize(("playbook", "key", "rule"), WINDOWED, ids=[f"{p}:{k}" for p, k, _ in WINDOWED])
def test_no_flag_fires_before_its_window_has_elapsed(playbook, key, rule):
    window = rule.evaluate_after or rule.target.within
    deadline = last_day(window)
    values = missed(rule)
    before = evaluate(rule, Figures(**values, live_since=LIVE, as_of=deadline - timedelta(days=1)))
    assert before.status == INFO and before.message.startswith("not yet due"), before.message
    assert f"({deadline:%-d %B %Y})" in before.message
    at = evaluate(rule, Figures(**values, live_since=LIVE, as_of=deadline))
    assert at.status == RED, at.message
