from dataclasses import dataclass, field

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# Statuses as a reader says them: never the stored code ("not_evaluable").
STATUS_WORDS = {
    "red": "Red",
    "watch": "Watch",
    "not_evaluable": "Not evaluable",
    "explained": "Explained",
    "info": "Info",
    "ok": "OK",
}
# Worst first: the order of the report's sections and of the checks in its full table.
STATUS_ORDER = ["red", "watch", "not_evaluable", "explained", "info", "ok"]


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)


@register.filter
def css_string(value) -> str:
    """Text safe inside a double-quoted CSS string (running headers and footers)."""
    # <style> is raw text: HTML escaping does not apply there, CSS escaping does ("<" cannot close the tag).
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ").replace("\n", " ")
    return mark_safe(text)  # noqa: S308 - escaped for a CSS string above


@register.filter
def status_word(status: str) -> str:
    """'not_evaluable' -> 'Not evaluable'; an unknown code reads as words too."""
    return STATUS_WORDS.get(status, str(status).replace("_", " ").capitalize())


def _subject(result, *, several: bool) -> str:
    """What a result is about: its stage or transition; for a check of several figures without one, the figure in
    words ("Records without stage"); else "" (the check's name says it all)."""
    if result.key:
        return result.key
    if not several or not result.metric or result.metric.startswith("event:"):
        return ""
    words = result.metric.replace("_", " ")
    return words[:1].upper() + words[1:]


def _own_reason(result) -> str:
    """A not-evaluable result's own reason. The CRM figures give one reason per metric, listing each distinct reason
    with the stages it covers ("A→B, C→D: HubSpot keeps no …; MQL→SQL: more records entered SQL …"); every row of
    that metric carries the whole list. Each row shows only the part naming its own stage, so a reader is not handed
    five reasons for one figure. (Once each row carries its own reason, this finds nothing to split.)"""
    if result.status != "not_evaluable" or not result.key or "; " not in result.message:
        return result.message
    for part in result.message.split("; "):
        keys, sep, reason = part.partition(": ")
        if sep and result.key in (k.strip() for k in keys.split(", ")):
            return reason
    return result.message


@dataclass
class Check:
    """One maintenance task or trigger of the run and its results (one per stage or transition for `per` rules)."""

    name: str
    rows: list = field(default_factory=list)

    @property
    def worst(self) -> str:
        return min((r.status for r in self.rows), key=_rank)


@dataclass
class Summary:
    """What the report's first page says, counted from the same rows its tables list."""

    results: list
    by_status: dict[str, list]
    checks: list[Check]

    @property
    def counts(self) -> dict[str, int]:
        return {status: len(rows) for status, rows in self.by_status.items()}

    @property
    def unjudged(self) -> list[dict]:
        """The not-evaluable results, one line per check and reason: "Production by Stage Volume · Onboarding,
        Implementation · HubSpot keeps no 'date entered' property…" rather than the same reason five times."""
        lines: dict[tuple[str, str], dict] = {}
        for result in sorted(self.by_status["not_evaluable"], key=lambda r: r.pk or 0):
            line = lines.setdefault(
                (result.task_name, result.finding), {"check": result.task_name, "reason": result.finding, "for": []}
            )
            if result.subject:
                line["for"].append(result.subject)
        # Two checks on one figure (a conversion's monthly check and its decline trigger) share the line.
        merged: dict[tuple[str, tuple], dict] = {}
        for line in lines.values():
            same = merged.setdefault((line["reason"], tuple(line["for"])), {**line, "checks": []})
            same["checks"].append(line["check"])
        for line in merged.values():
            line["check"] = " and ".join(line.pop("checks"))
        return list(merged.values())

    @property
    def sentence(self) -> str:
        """'3 red flags, 2 trends to watch, 1 figure that could not be evaluated and 26 results within range.'"""
        c = self.counts
        parts = [
            _count(c["red"], "red flag", "red flags"),
            _count(c["watch"], "trend to watch", "trends to watch"),
            _count(c["not_evaluable"], "result that could not be evaluated", "results that could not be evaluated"),
            _count(c["explained"], "explained flag", "explained flags"),
            _count(c["ok"] + c["info"], "result within range", "results within range"),
        ]
        parts = [p for p in parts if p]
        if not parts:
            return "nothing to judge: no rule was due this month."
        return (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + "."


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def _count(n: int, one: str, many: str) -> str:
    return "" if n == 0 else f"{n} {one if n == 1 else many}"


@register.simple_tag
def health_summary(results) -> Summary:
    """The run's results grouped by status and by check, worst first: sections, counts and the full table of a
    Health-Check Report (page, email, PDF) all come from here, so they cannot disagree."""
    results = list(results)
    by_status = {status: [r for r in results if r.status == status] for status in STATUS_ORDER}
    checks: dict[str, Check] = {}
    for result in results:
        checks.setdefault(result.task_name, Check(result.task_name)).rows.append(result)
    for check in checks.values():
        check.rows.sort(key=lambda r: r.pk or 0)  # as the check wrote them
        several = len({r.metric for r in check.rows if not r.key}) > 1
        for result in check.rows:
            result.subject = _subject(result, several=several)
            result.finding = _own_reason(result)
    ordered = sorted(checks.values(), key=lambda c: (_rank(c.worst), c.name))
    return Summary(results=results, by_status=by_status, checks=ordered)
