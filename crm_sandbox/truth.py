"""Expected figures, computed straight from a sandbox org's generator model.

Tests compare what the connectors, the audit and the health checks report against these. Nothing here goes
through the HTTP servers, the query engine (`query.py`), the connectors, the audit or the health code:
each function walks the model's slots, the records (k) each slot holds and the slot's monotone date rules,
and binary-searches those rules itself. Cost: O(slots x log records) per call, fine at 200,000 leads.

Kinds: lead, contact, company, deal, ticket, customer_health (with customer_stages_on_custom_object).
Attributes (`attr`): lifecycle, status, lead_stage, source, industry (people); type, lifecycle (company);
stage, pipeline, loss_reason, source (deal); stage, pipeline (ticket, customer_health). Paths (`path`, the
stage histories): lifecycle, status (people), stage (deal, ticket, customer_health).

Values are keyed as a platform shows them, `by=`: "label" (the Salesforce value; the default), "hs" (the
HubSpot internal value), "hs_text" (the HubSpot label) or "key" (the sandbox's own key). None is a blank.
Windows are [start, end) in epoch ms or dates (UTC midnight); `month_window(d)` gives a calendar month's.

    from crm_sandbox import OrgModel, truth
    model = OrgModel("tangled", seed=7, size=5_000, as_of=date(2025, 6, 15))
    truth.value_counts(model, kind="lead", attr="status")          # {"New": 1210, "Contacted": 247, None: 401...}
    truth.conversion(model, kind="contact", path="lifecycle", earlier="mql", later="sql", month=date(2025, 3, 1))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from .dates import add_months, to_ms
from .orgmodel import OrgModel, RecordSet, Slot

When = int | date


def _ms(value: When) -> int:
    return value if isinstance(value, int) else to_ms(value)


def month_window(first: date) -> tuple[int, int]:
    """The calendar month starting at `first` (any day of it) as an epoch-ms [start, end) window."""
    start = first.replace(day=1)
    return to_ms(start), to_ms(add_months(start, 1))


def _slots(model: OrgModel, kind: str) -> Iterator[tuple[RecordSet, int, Slot, int, int]]:
    table = model.sets[kind]
    for rank in range(table.nslots):
        lo, hi = table.k_range(rank)
        if hi > lo:
            yield table, rank, table.slots[rank], lo, hi


def _key(value: Any, by: str) -> Any:
    if value is None or not hasattr(value, "key"):
        return value
    if hasattr(value, "hs_id"):  # a pipeline
        return {"label": value.label, "key": value.key}.get(by, value.hs_id)
    return {"label": value.label, "key": value.key, "hs": value.hs, "hs_text": value.hs_text}[by]


def _first(fn: Callable[[int], int], x: int, lo: int, hi: int) -> int:
    """The first k in [lo, hi) with fn(k) >= x (hi when none); fn never decreases."""
    while lo < hi:
        mid = (lo + hi) // 2
        if fn(mid) < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _within(table: RecordSet, rank: int, rule: Callable[[int], int], lo: int, hi: int, start: int, end: int) -> int:
    def when(k: int) -> int:
        return rule(table.created(rank, k))

    return max(0, _first(when, end, lo, hi) - _first(when, start, lo, hi))


def records(model: OrgModel, *, kind: str) -> int:
    """How many records of a kind the org holds."""
    return sum(hi - lo for *_, lo, hi in _slots(model, kind))


def value_counts(model: OrgModel, *, kind: str, attr: str, by: str = "label") -> dict[Any, int]:
    """Records per value of a field, rogue (unlisted) and retired (inactive) values included, None = blank."""
    out: dict[Any, int] = {}
    for _, _, slot, lo, hi in _slots(model, kind):
        key = _key(slot.values.get(attr), by)
        out[key] = out.get(key, 0) + hi - lo
    return out


def blanks(model: OrgModel, *, kind: str, attr: str) -> int:
    """Records without a value in a field (for flags such as has_phone: records where it is false)."""
    return sum(hi - lo for _, _, slot, lo, hi in _slots(model, kind) if not slot.values.get(attr))


def retired_counts(model: OrgModel, *, kind: str, attr: str, by: str = "label") -> dict[Any, int]:
    """Records per retired value (listed as inactive / hidden, still on records) of a field."""
    counts = value_counts(model, kind=kind, attr=attr, by="key")
    options = {o.key: o for _, _, slot, _, _ in _slots(model, kind) if (o := slot.values.get(attr)) is not None}
    return {_key(options[k], by): n for k, n in counts.items() if k in options and not options[k].active}


def rogue_counts(model: OrgModel, *, kind: str, attr: str, by: str = "label") -> dict[Any, int]:
    """Records per rogue value (held by records, absent from the field's options) of a field."""
    counts = value_counts(model, kind=kind, attr=attr, by="key")
    options = {o.key: o for _, _, slot, _, _ in _slots(model, kind) if (o := slot.values.get(attr)) is not None}
    return {_key(options[k], by): n for k, n in counts.items() if k in options and not options[k].listed}


def created(model: OrgModel, *, kind: str, start: When, end: When) -> int:
    """Records created in [start, end)."""
    s, e = _ms(start), _ms(end)
    return sum(_within(t, rank, lambda c: c, lo, hi, s, e) for t, rank, _, lo, hi in _slots(model, kind))


def entries(
    model: OrgModel,
    *,
    kind: str,
    path: str,
    value: str,
    start: When,
    end: When,
    pipeline: str | None = None,
    by: str = "key",
    first: bool = True,
    latest: bool = False,
) -> int:
    """Times records entered `value` of a stage path in [start, end); a record entering twice counts twice.

    `pipeline` (deals, tickets) keeps one pipeline, by the same `by`. `first=False` leaves out the value a
    record was created with, as Salesforce field history (LeadHistory, ContactHistory) does; with the
    default, it counts like OpportunityHistory. `latest=True` counts only each record's last entry into the
    value, as HubSpot's hs_date_entered_* properties keep it (they differ only where records move back).
    """
    s, e = _ms(start), _ms(end)
    total = 0
    for table, rank, slot, lo, hi in _slots(model, kind):
        if pipeline is not None and _key(slot.values.get("pipeline"), by) != pipeline:
            continue
        path_steps = enumerate(slot.paths.get(path) or [])
        steps = [(step, rule) for step, (option, rule) in path_steps if _key(option, by) == value]
        for step, rule in steps[-1:] if latest else steps:
            if step or first:
                total += _within(table, rank, rule, lo, hi, s, e)
    return total


def conversion(
    model: OrgModel,
    *,
    kind: str,
    path: str,
    earlier: str,
    later: str,
    month: date,
    pipeline: str | None = None,
    by: str = "key",
) -> float | None:
    """Entries into `later` over entries into `earlier` in a calendar month, in percent (None: no entries)."""
    start, end = month_window(month)
    a = entries(model, kind=kind, path=path, value=earlier, start=start, end=end, pipeline=pipeline, by=by)
    b = entries(model, kind=kind, path=path, value=later, start=start, end=end, pipeline=pipeline, by=by)
    return None if not a else b / a * 100


def conversion_series(
    model: OrgModel, *, kind: str, path: str, earlier: str, later: str, months: list[date], **kw: Any
) -> list[float | None]:
    """`conversion` for each month of a list."""
    return [conversion(model, kind=kind, path=path, earlier=earlier, later=later, month=m, **kw) for m in months]


def time_in_stage(
    model: OrgModel,
    *,
    kind: str,
    path: str,
    value: str,
    start: When,
    end: When,
    by: str = "key",
    began_in_window: bool = False,
) -> tuple[int, float | None]:
    """(stays, average days) in `value` for the stays that ended (the next stage was entered) in [start, end).

    `began_in_window=True` keeps only stays that also began in the window (what a reader of the window's
    history rows alone can measure). Walks each record whose stay ended in the window: cheap for a month.
    """
    s, e = _ms(start), _ms(end)
    stays, total_ms = 0, 0
    for table, rank, slot, lo, hi in _slots(model, kind):
        steps = slot.paths.get(path) or []
        for (option, entered), (_, left) in zip(steps, steps[1:], strict=False):
            if _key(option, by) != value:
                continue

            def left_at(k: int, rule: Callable[[int], int] = left, t: RecordSet = table, r: int = rank) -> int:
                return rule(t.created(r, k))

            for k in range(_first(left_at, s, lo, hi), _first(left_at, e, lo, hi)):
                began = entered(table.created(rank, k))
                if began_in_window and began < s:
                    continue
                stays += 1
                total_ms += left_at(k) - began
    return stays, (total_ms / stays / 86_400_000 if stays else None)


def same_instant(model: OrgModel, *, kind: str, path: str = "lifecycle") -> int:
    """Records whose history has two changes at the same instant (same_timestamp_history)."""
    return sum(hi - lo for _, _, slot, lo, hi in _slots(model, kind) if path in slot.values.get("ties", {}))


def normalise_reason(text: str) -> str:
    """How free-text loss reasons are grouped: strip, casefold, collapse inner spaces ('No  budget ' -> 'no budget')."""
    return re.sub(r"\s+", " ", text.strip()).casefold()


def loss_reasons(model: OrgModel, *, normalise: bool = True) -> dict[str, int]:
    """Lost deals per recorded loss reason (normalised when the reason is free text and `normalise`)."""
    out: dict[str, int] = {}
    for label, n in value_counts(model, kind="deal", attr="loss_reason").items():
        if label is None:
            continue
        key = normalise_reason(label) if normalise and model.schema.loss_reason_text else label
        out[key] = out.get(key, 0) + n
    return out


def loss_reason_shares(model: OrgModel, *, normalise: bool = True) -> dict[str, float]:
    """Each recorded loss reason's share of all recorded reasons, in percent."""
    counts = loss_reasons(model, normalise=normalise)
    total = sum(counts.values())
    return {k: n / total * 100 for k, n in counts.items()} if total else {}
