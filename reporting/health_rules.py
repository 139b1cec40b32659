"""The rule language of maintenance tasks, hypercare KPIs and refinement triggers (playbooks.schema.Rule).

`evaluate` judges one rule against the figures of one period: the current value (a number, or one number
per stage / transition / reason when the rule says `per`), the previous periods' values, the baseline,
and for `new_value_vs_signed` the values present in the CRM versus the signed architecture. It never
passes silently: missing data gives NOT_EVALUABLE with the reason in plain words.

Windows are judged for the period being checked (`Figures.as_of`, the last day of the month checked), never
against today, so a catch-up or back-dated run gives what the run on time gave. A window counted from go-live
("after 60 days live", a target "within 2 quarters") that has not elapsed by then is "not yet due" (info), not
red. A rule
read per week receives the month's weekly figures (`Figures.windows`); `sustained` counts consecutive windows
of the rule's own period, and a missing window breaks the run.

Small numbers: a rule with `min_count` judges a figure only when the records behind it (`Figures.counts`)
reach it (MIN_RECORDS, 20, in the library): 5 entries against a baseline of 7 is "too few records to judge",
not a 29% drop. For a volume the records are the larger of the month and its baseline; for a conversion rate,
the month's entries into its first stage.

Statuses:
    ok              the rule holds
    red             a red flag (or a fired trigger)
    watch           the condition holds now but not yet for the rule's sustained window
    explained       red, but a person recorded an explanation (the seed's "without explanation")
    info            informational (`track`), too few records to judge, or "not yet due": the rule's window has
                    not elapsed by the end of the period checked, or the first business cycle that sets its
                    baseline has not ended
    not_evaluable   no data, no baseline, or no signed architecture to compare with

`rule_in_words` says a rule (its stored dump) as a sentence a client could read; `humanize` names a metric.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.template.defaultfilters import pluralize

OK, RED, WATCH, EXPLAINED, INFO, NOT_EVALUABLE = "ok", "red", "watch", "explained", "info", "not_evaluable"
SEVERITY = {RED: 5, NOT_EVALUABLE: 4, WATCH: 3, EXPLAINED: 2, INFO: 1, OK: 0}
NOT_YET_DUE = "not yet due"  # how an info result whose window has not elapsed begins
MIN_RECORDS = 20  # the library's min_count: fewer records than this behind a volume or a rate are not judged
PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}
PERIOD_DAYS = {"day": 1, "week": 7}


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    first = date(year, month0 + 1, 1)
    following = date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1)
    return min(first + timedelta(days=day.day - 1), following - timedelta(days=1))


def window_last_day(start: date, window) -> date:
    """The last day of `window` ({n, period}) counted from `start` (its first day): 60 days from 1 Oct end on
    29 Nov, 2 quarters from 1 Aug on 31 Jan."""
    if window.period in PERIOD_DAYS:
        return start + timedelta(days=window.n * PERIOD_DAYS[window.period] - 1)
    return add_months(start, window.n * PERIOD_MONTHS[window.period]) - timedelta(days=1)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class Figures:
    """What is known about one metric for one period. Values may be per key (stage, transition, ...)."""

    current: float | dict | None
    history: list = field(default_factory=list)  # earlier windows, oldest first, same shape as current; None = gap
    baseline: float | dict | None = None
    present_values: set | None = None  # new_value_vs_signed: values found in the CRM
    signed_values: set | None = None  # ... and the values the signed architecture allows
    events: set = field(default_factory=set)  # event rules: events recorded in the period
    explanation: str = ""
    live_since: date | None = None  # for evaluate_after / target.within
    as_of: date | None = None  # the last day of the period checked: windows are judged at it, never at today
    missing_reason: str = ""  # why `current` is None, e.g. "enter a figure", "no drop-off reason field"
    windows: list | None = None  # a weekly rule: [(label, value or None)] of the period's weeks, oldest first
    counts: float | dict | None = None  # records behind each figure, for min_count (same shape as current)
    reasons: dict = field(default_factory=dict)  # {key: why that figure is missing}, when it has its own reason
    # The first business cycle that sets the baselines, in words, while it has not ended by the period checked: a
    # rule measured from a baseline it has not set yet is not yet due (not "no data")
    baseline_pending: str = ""


@dataclass
class Evaluation:
    status: str
    message: str
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    key: str = ""
    parts: list["Evaluation"] = field(default_factory=list)

    @property
    def is_flag(self) -> bool:
        return self.status in (RED, EXPLAINED)


def _num(value) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _unit(rule) -> str:
    return {"pct": "%", "pp": " pp", "points": " points", "hours": " h", "days": " days", "per_week": "/week"}.get(
        rule.unit or "", ""
    )


def _condition(rule, value: float, baseline: float | None, series: list[float]) -> tuple[bool | None, str]:
    """(holds, message) for one number; holds None means it cannot be judged (message says why)."""
    c, t, u = rule.comparison, rule.threshold, _unit(rule)
    if c == "below":
        return value < t, f"{_num(value)}{u} (red below {_num(t)}{u})"
    if c in ("above", "count_above", "duration_above", "share_above"):
        return value > t, f"{_num(value)}{u} (red above {_num(t)}{u})"
    if c in ("drop_pp", "drop_pct", "no_increase") and baseline is None:
        return None, "no baseline yet: it is set from the first business cycle or by hand"
    if c == "drop_pp":
        drop = baseline - value
        return (
            drop > t,
            f"{_num(value)} vs baseline {_num(baseline)}: {'down' if drop >= 0 else 'up'} "
            f"{_num(abs(drop))} pp (red when down more than {_num(t)} pp)",
        )
    if c == "drop_pct":
        if baseline == 0:
            return None, "baseline is zero, so a relative drop cannot be computed"
        drop = (baseline - value) / baseline * 100
        return (
            drop > t,
            f"{_num(value)} vs baseline {_num(baseline)}: {'down' if drop >= 0 else 'up'} "
            f"{_num(abs(drop))}% (red when down more than {_num(t)}%)",
        )
    if c == "drop_from_peak":
        peak = max([*(v for v in series if v is not None), value])  # months without a figure have no say
        return (
            peak - value > t,
            f"{_num(value)} vs peak {_num(peak)}: down {_num(peak - value)}{u} (red when more than {_num(t)}{u})",
        )
    if c == "no_increase":
        return value <= baseline, f"{_num(value)} vs baseline {_num(baseline)}"
    raise ValueError(f"unknown comparison {c!r}")


def _target(rule, value: float, baseline: float | None) -> tuple[bool | None, str]:
    target = rule.target
    if target.of != "value" and baseline is None:
        return None, "no baseline yet to measure the target against"
    if target.of in ("reduction_from_baseline", "multiple_of_baseline") and baseline == 0:
        return None, "baseline is zero, so the target cannot be measured against it"
    if target.of == "value":
        measured, what = value, _num(value)
    elif target.of == "increase_from_baseline":
        measured, what = value - baseline, f"+{_num(value - baseline)} from baseline"
    elif target.of == "reduction_from_baseline":
        measured, what = (baseline - value) / baseline * 100, f"{_num((baseline - value) / baseline * 100)}% lower"
    else:
        measured, what = value / baseline, f"{_num(value / baseline)}x baseline"
    met = {
        "gt": measured > target.value,
        "gte": measured >= target.value,
        "lt": measured < target.value,
        "lte": measured <= target.value,
    }[target.op]
    symbol = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}[target.op]
    return met, f"{what} (target {symbol} {_num(target.value)}{_unit(target)})"


def _deadline(window, figures: Figures) -> tuple[bool | None, str]:
    """(elapsed by the end of the period checked, when it ends in words) for a window counted from go-live."""
    if figures.live_since is None:
        return None, "the go-live date is not known"
    last = window_last_day(figures.live_since, window)
    when = f"{plural(window.n, window.period)} after go-live ({last:%-d %B %Y})"
    as_of = figures.as_of or date.today()
    return as_of >= last, when


def _shares(value) -> float:
    """share_above on a breakdown ({reason: count}): the largest share, in percent."""
    total = sum(value.values())
    return max(value.values()) / total * 100 if total else 0.0


def _streak(rule, series: list, baseline) -> int:
    """How many windows in a row, ending with the last of `series`, the condition held (a gap ends the run)."""
    run = 0
    for value in reversed(series):
        if value is None or not _condition(rule, value, baseline, [])[0]:
            break
        run += 1
    return run


def _one(rule, value, baseline, series: list, figures: Figures, key: str = "", counts=None) -> Evaluation:
    if value is None:
        reason = figures.reasons.get(key) or figures.missing_reason or "no data for this period"
        return Evaluation(NOT_EVALUABLE, reason, key=key)
    leader = ""
    if rule.comparison == "share_above" and isinstance(value, dict):
        leader = max(value, key=value.get) if value else ""
        value = _shares(value)
        series = [_shares(v) if isinstance(v, dict) else v for v in series]
    if rule.comparison == "track":
        return Evaluation(INFO, f"{_num(value)}{_unit(rule)} (tracked, no threshold)", value, key=key)
    if rule.comparison == "target":
        met, message = _target(rule, value, baseline)
        due, when = _deadline(rule.target.within, figures) if rule.target.within else (True, "")
        if met:
            return Evaluation(OK, f"target met: {message}", value, baseline, rule.target.value, key=key)
        if due is False:
            so_far = f"; so far {message}" if met is not None else f"; {message}"
            return Evaluation(INFO, f"{NOT_YET_DUE}: judged at {when}{so_far}", value, baseline, key=key)
        if met is None or due is None:
            return Evaluation(NOT_EVALUABLE, message if met is None else when, value, baseline, key=key)
        at = f" at {when}" if when else ""
        return Evaluation(RED, f"target not met{at}: {message}", value, baseline, rule.target.value, key=key)
    if rule.evaluate_after is not None:
        due, when = _deadline(rule.evaluate_after, figures)
        if not due:
            reason = f"{NOT_YET_DUE}: judged from {when}" if due is False else when
            return Evaluation(INFO if due is False else NOT_EVALUABLE, reason, value, baseline, key=key)
    if rule.min_count and counts is not None and counts < rule.min_count:
        against = f" vs baseline {_num(baseline)}" if baseline is not None else ""
        # A volume is its own count; a rate says how many records it was computed from.
        source = "" if counts == max(value, baseline or 0) else f", from {_num(counts)} record{pluralize(counts)}"
        return Evaluation(
            INFO,
            f"too few records to judge: {_num(value)}{against}{source} "
            f"(a change is judged from {rule.min_count} records)",
            value,
            baseline,
            key=key,
        )
    holds, message = _condition(rule, value, baseline, series)
    if leader:
        message = f"{leader}: {message}"  # which reason (or value) holds the largest share
    if holds is None and baseline is None and figures.baseline_pending:
        return Evaluation(INFO, f"{NOT_YET_DUE}: judged against {figures.baseline_pending}", value, key=key)
    if holds is None:
        return Evaluation(NOT_EVALUABLE, message, value, baseline, rule.threshold, key=key)
    if not holds:
        return Evaluation(OK, message, value, baseline, rule.threshold, key=key)
    if rule.sustained is not None:
        needed, run = rule.sustained.n, 1 + _streak(rule, series, baseline)
        if run < needed:
            return Evaluation(
                WATCH,
                f"{message}; held for {run} of {needed} {rule.sustained.period}s",
                value,
                baseline,
                rule.threshold,
                key=key,
            )
        message = f"{message}; held for {run} consecutive {rule.sustained.period}s"
    return _red(rule, message, value, baseline, figures, key)


def _red(rule, message: str, value, baseline, figures: Figures, key: str = "") -> Evaluation:
    if figures.explanation and rule.exempt_if:
        return Evaluation(
            EXPLAINED, f"{message}; explained: {figures.explanation}", value, baseline, rule.threshold, key=key
        )
    return Evaluation(RED, message, value, baseline, rule.threshold, key=key)


def _windows(rule, figures: Figures) -> Evaluation:
    """A rule read per week: every week of the period is judged, with the weeks before it for `sustained`.
    Red when a run of the sustained length (one week without it) ends in the period; watch when the period
    ends inside a shorter run."""
    windows = figures.windows or []
    measured = [(label, value) for label, value in windows if value is not None]
    if not measured:
        return Evaluation(NOT_EVALUABLE, figures.missing_reason or "no weekly figures for this period")
    needed = rule.sustained.n if rule.sustained else 1
    series, best, best_end = list(figures.history), 0, None
    for index, (_label, value) in enumerate(windows):
        series.append(value)
        run = _streak(rule, series, None)
        if run >= needed and run >= best:
            best, best_end = run, index
    label, value = measured[-1]
    _, condition = _condition(rule, value, None, [])
    unit = rule.window
    if best_end is not None:
        held = windows[max(0, best_end - best + 1) : best_end + 1]
        weeks = ", ".join(f"{w[0]}: {_num(w[1])}{_unit(rule)}" for w in held)
        earlier = best - len(held)
        before = f" (and {plural(earlier, 'earlier ' + unit)})" if earlier else ""
        message = f"red for {plural(best, 'consecutive ' + unit)}: {weeks}{before}"
        return _red(rule, message, windows[best_end][1], None, figures)
    run = _streak(rule, series, None)
    if run:
        return Evaluation(
            WATCH, f"{label}: {condition}; held for {run} of {needed} {unit}s", value, threshold=rule.threshold
        )
    gaps = len(windows) - len(measured)
    missing = f"; no figure for {plural(gaps, unit)}" if gaps else ""
    return Evaluation(OK, f"{label}: {condition}{missing}", value, threshold=rule.threshold)


def evaluate(rule, figures: Figures) -> Evaluation:
    if rule.event is not None:
        if rule.event in figures.events:
            return Evaluation(RED, f"{rule.event.replace('_', ' ')} recorded this period")
        return Evaluation(OK, f"no {rule.event.replace('_', ' ')} recorded")
    if rule.comparison == "new_value_vs_signed":
        if figures.present_values is None and figures.signed_values is None and figures.missing_reason:
            return Evaluation(NOT_EVALUABLE, figures.missing_reason)
        if figures.signed_values is None:
            return Evaluation(NOT_EVALUABLE, "no signed stage architecture to compare with: sign it first")
        if figures.present_values is None:
            return Evaluation(NOT_EVALUABLE, figures.missing_reason or "the CRM's values could not be read")
        rogue = sorted(figures.present_values - figures.signed_values)
        if rogue:
            return Evaluation(
                RED,
                f"{len(rogue)} value(s) not in the signed architecture: {', '.join(rogue)}",
                float(len(rogue)),
                threshold=0,
            )
        return Evaluation(OK, "every value in the CRM is in the signed architecture", 0.0, threshold=0)
    if figures.windows is not None:
        return _windows(rule, figures)

    current = figures.current
    if rule.per and isinstance(current, dict) and not (rule.comparison == "share_above" and _is_flat(current)):
        parts = []
        baselines = figures.baseline if isinstance(figures.baseline, dict) else {}
        counts = figures.counts if isinstance(figures.counts, dict) else {}
        for key in sorted(current):
            series = [h.get(key) if isinstance(h, dict) else None for h in figures.history]
            parts.append(_one(rule, current[key], baselines.get(key), series, figures, key, counts.get(key)))
        if not parts:
            return Evaluation(NOT_EVALUABLE, figures.missing_reason or "no data for this period")
        worst = max(parts, key=lambda p: SEVERITY[p.status])
        flagged = [p for p in parts if p.status == worst.status]
        summary = "; ".join(f"{p.key}: {p.message}" for p in flagged[:4])
        return Evaluation(worst.status, summary, parts=parts)
    baseline = figures.baseline if not isinstance(figures.baseline, dict) else None
    counts = figures.counts if not isinstance(figures.counts, dict) else None
    return _one(rule, current, baseline, list(figures.history), figures, counts=counts)


def _is_flat(value: dict) -> bool:
    """A {reason: count} breakdown rather than {stage: {reason: count}}."""
    return all(not isinstance(v, dict) for v in value.values())


# --------------------------------------------------------------------------------------------------
# A rule in plain words (pages, the report, a task's list of rules)

UNITS = {
    "pct": "%",
    "pp": " pp",
    "points": " points",
    "hours": " h",
    "days": " days",
    "per_week": "/week",
    "multiple": "x",
}
OPS = {"gt": "above", "gte": "at least", "lt": "below", "lte": "at most"}
SOURCES = {
    "crm": "from the CRM",
    "crm_metadata": "from the CRM's setup",
    "ri_platform": "from the revenue intelligence platform",
    "prm_platform": "from the partner platform",
    "manual": "entered by hand",
    "app": "from this app",
}


def humanize(name: str | None) -> str:
    text = (name or "").removeprefix("event:").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _n(value) -> str:
    if value is None:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _window_words(window) -> str:
    n, period = window["n"], window["period"]
    return f"{n} {period}{'s' if n != 1 else ''}"


def rule_in_words(rule: dict) -> str:
    """One rule (a playbooks.schema.Rule dump) as a sentence a client could read."""
    if rule.get("event"):
        text = f"Red when “{humanize(rule['event']).lower()}” is recorded in the month"
    else:
        what = humanize(rule.get("metric")).lower()
        c, t, unit = rule.get("comparison"), rule.get("threshold"), UNITS.get(rule.get("unit") or "", "")
        if c == "below":
            text = f"Red when {what} is below {_n(t)}{unit}"
        elif c in ("above", "count_above", "duration_above"):
            text = f"Red when {what} is above {_n(t)}{unit}"
        elif c == "share_above":
            text = f"Red when the largest share of {what} is above {_n(t)}{unit}"
        elif c == "drop_pp":
            text = f"Red when {what} is more than {_n(t)} pp below its baseline"
        elif c == "drop_pct":
            text = f"Red when {what} is more than {_n(t)}% below its baseline"
        elif c == "drop_from_peak":
            text = f"Red when {what} falls more than {_n(t)}{unit} from its peak"
        elif c == "no_increase":
            text = f"Red when {what} has not risen above its baseline"
            if rule.get("evaluate_after"):
                text += f" after {_window_words(rule['evaluate_after'])} live"
        elif c == "new_value_vs_signed":
            text = f"Red when the CRM holds values not in the signed architecture ({what})"
        elif c == "target":
            target = rule.get("target") or {}
            goal = f"{OPS.get(target.get('op'), target.get('op'))} {_n(target.get('value'))}"
            goal += UNITS.get(target.get("unit") or "", "")
            of = target.get("of", "value")
            if of == "increase_from_baseline":
                goal = f"up {goal} from its baseline"
            elif of == "reduction_from_baseline":
                goal = f"down {goal} from its baseline"
            elif of == "multiple_of_baseline":
                goal = f"{goal} times its baseline"
            text = f"Target: {what} {goal}"
            if target.get("within"):
                text += f" within {_window_words(target['within'])} of go-live"
        elif c == "track":
            text = f"Tracked: {what} (no threshold)"
        else:
            text = f"{humanize(what)}: {c}"
        if c not in ("target", "track") and rule.get("target"):
            target = rule["target"]
            text += f" (target {OPS.get(target.get('op'), '')} {_n(target.get('value'))}"
            text += f"{UNITS.get(target.get('unit') or '', '')})"
        if rule.get("per"):
            text += f", per {humanize(rule['per']).lower()}"
        if rule.get("period") in ("quarter", "year"):
            how = "the sum" if rule.get("aggregate") == "sum" else "the mean"
            text += f", over a {rule['period']} ({how} of its months, judged at its end)"
        elif rule.get("period") == "week" and not rule.get("sustained"):
            text += ", in any week"
        if rule.get("sustained"):
            text += f", for {_window_words(rule['sustained'])} in a row"
        if rule.get("min_count"):
            text += f" (judged from {rule['min_count']} records)"
    if rule.get("exempt_if"):
        text += ", unless explained"
    sources = [SOURCES.get(s, s) for s in rule.get("data_source") or []]
    if sources:
        text += f". Figures {' or '.join(sources)}."
    else:
        text += "."
    return text
