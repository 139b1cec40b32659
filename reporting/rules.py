"""The rule language of maintenance tasks, hypercare KPIs and refinement triggers (playbooks.schema.Rule).

`evaluate` judges one rule against the figures of one period: the current value (a number, or one number
per stage / transition / reason when the rule says `per`), the previous periods' values, the baseline,
and for `new_value_vs_signed` the values present in the CRM versus the signed architecture. It never
passes silently: missing data gives NOT_EVALUABLE with the reason in plain words.

Statuses:
    ok              the rule holds
    red             a red flag (or a fired trigger)
    watch           the condition holds now but not yet for the rule's sustained window
    explained       red, but a person recorded an explanation (the seed's "without explanation")
    info            informational (`track`), or a target whose deadline has not come
    not_evaluable   no data, no baseline, or no signed architecture to compare with
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

OK, RED, WATCH, EXPLAINED, INFO, NOT_EVALUABLE = "ok", "red", "watch", "explained", "info", "not_evaluable"
SEVERITY = {RED: 5, NOT_EVALUABLE: 4, WATCH: 3, EXPLAINED: 2, INFO: 1, OK: 0}
PERIOD_DAYS = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}


@dataclass
class Figures:
    """What is known about one metric for one period. Values may be per key (stage, transition, ...)."""

    current: float | dict | None
    history: list = field(default_factory=list)  # earlier periods, oldest first, same shape as current
    baseline: float | dict | None = None
    present_values: set | None = None  # new_value_vs_signed: values found in the CRM
    signed_values: set | None = None  # ... and the values the signed architecture allows
    events: set = field(default_factory=set)  # event rules: events recorded in the period
    explanation: str = ""
    live_since: date | None = None  # for evaluate_after / target.within
    today: date | None = None
    missing_reason: str = ""  # why `current` is None, e.g. "needs manual input", "no drop-off reason field"


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
        peak = max([*series, value])
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


def _window_passed(window, figures: Figures) -> bool | None:
    if window is None:
        return True
    if figures.live_since is None:
        return None
    today = figures.today or date.today()
    return today >= figures.live_since + timedelta(days=window.n * PERIOD_DAYS[window.period])


def _shares(value) -> float:
    """share_above on a breakdown ({reason: count}): the largest share, in percent."""
    total = sum(value.values())
    return max(value.values()) / total * 100 if total else 0.0


def _one(rule, value, baseline, series: list, figures: Figures, key: str = "") -> Evaluation:
    if value is None:
        return Evaluation(NOT_EVALUABLE, figures.missing_reason or "no data for this period", key=key)
    leader = ""
    if rule.comparison == "share_above" and isinstance(value, dict):
        leader = max(value, key=value.get) if value else ""
        value = _shares(value)
        series = [_shares(v) if isinstance(v, dict) else v for v in series]
    if rule.comparison == "track":
        return Evaluation(INFO, f"{_num(value)}{_unit(rule)} (tracked, no threshold)", value, key=key)
    if rule.comparison == "target":
        due = _window_passed(rule.target.within, figures)
        met, message = _target(rule, value, baseline)
        if met is None:
            return Evaluation(NOT_EVALUABLE, message, value, baseline, key=key)
        if met:
            return Evaluation(OK, f"target met: {message}", value, baseline, rule.target.value, key=key)
        status = RED if due else INFO
        return Evaluation(
            status, f"target not met{'' if due else ' yet'}: {message}", value, baseline, rule.target.value, key=key
        )
    if rule.comparison == "no_increase":
        due = _window_passed(rule.evaluate_after, figures)
        if not due:
            return Evaluation(
                INFO,
                "evaluated once the engagement has been live for "
                f"{rule.evaluate_after.n} {rule.evaluate_after.period}s",
                value,
                baseline,
                key=key,
            )
    holds, message = _condition(rule, value, baseline, series)
    if leader:
        message = f"{leader}: {message}"  # which reason (or value) holds the largest share
    if holds is None:
        return Evaluation(NOT_EVALUABLE, message, value, baseline, rule.threshold, key=key)
    if not holds:
        return Evaluation(OK, message, value, baseline, rule.threshold, key=key)
    if rule.sustained is not None:
        needed = rule.sustained.n
        run = 1
        for earlier in reversed(series):
            if earlier is None or not _condition(rule, earlier, baseline, series)[0]:
                break
            run += 1
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
    if figures.explanation and rule.exempt_if:
        return Evaluation(
            EXPLAINED, f"{message}; explained: {figures.explanation}", value, baseline, rule.threshold, key=key
        )
    return Evaluation(RED, message, value, baseline, rule.threshold, key=key)


def evaluate(rule, figures: Figures) -> Evaluation:
    if rule.event is not None:
        if rule.event in figures.events:
            return Evaluation(RED, f"{rule.event.replace('_', ' ')} recorded this period")
        return Evaluation(OK, f"no {rule.event.replace('_', ' ')} recorded")
    if rule.comparison == "new_value_vs_signed":
        if figures.signed_values is None:
            return Evaluation(NOT_EVALUABLE, "no signed stage architecture to compare with")
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

    current = figures.current
    if rule.per and isinstance(current, dict) and not (rule.comparison == "share_above" and _is_flat(current)):
        parts = []
        baselines = figures.baseline if isinstance(figures.baseline, dict) else {}
        for key in sorted(current):
            series = [h.get(key) if isinstance(h, dict) else None for h in figures.history]
            parts.append(_one(rule, current[key], baselines.get(key), series, figures, key))
        if not parts:
            return Evaluation(NOT_EVALUABLE, figures.missing_reason or "no data for this period")
        worst = max(parts, key=lambda p: SEVERITY[p.status])
        flagged = [p for p in parts if p.status == worst.status]
        summary = "; ".join(f"{p.key}: {p.message}" for p in flagged[:4])
        return Evaluation(worst.status, summary, parts=parts)
    baseline = figures.baseline if not isinstance(figures.baseline, dict) else None
    return _one(rule, current, baseline, list(figures.history), figures)


def _is_flat(value: dict) -> bool:
    """A {reason: count} breakdown rather than {stage: {reason: count}}."""
    return all(not isinstance(v, dict) for v in value.values())
