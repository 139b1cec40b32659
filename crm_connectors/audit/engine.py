"""Read what the audit needs from a CRM, once, into a JSON snapshot.

Everything goes through the `CrmConnector` interface, so the cost is the connector's: a number of calls
that depends on objects, fields, pipelines and stages, never on records (DESIGN.md section 6). Deep mode
adds the record walks (duplicates; naming HubSpot's rogue values; the stage history of at most HISTORY_RECORDS
records per stage field, for stage skips and backward moves) and reports their cost apart ("deep", "history").

A CRM error never escapes `collect`: a refused or broken answer ends the reading (the CRM is unwell or the
budget is spent: more calls would only spend more), and what was read so far is kept with the reason, in
plain words. An error about one item only (an unknown field, a property HubSpot cannot count, a metadata
object this user cannot read) is noted and the reading goes on: one unreadable field never ends a section.

Contract with the rules (`snapshot` keys beyond the CRM's own shape):
  - "unreadable": [{"object": kind, "field": api_name, "reason": "<Object>.<Field> is missing or not readable by
    this user"}], the fields the connector skipped; a rule needing one reports "not evaluated" with that reason.
  - "custom_objects": [{"name", "label", "records" (None when not counted), "fields": [_field() rows]}], custom
    objects with stage-like picklists, read before any "no customer lifecycle" conclusion.
  - "objects"[kind]["readable"]: False when the object exists but this user may not read it (not "missing").
  - "value_counts"["deal.<loss reason field>"]: its values; a free-text field's grouped wording has "free_text": True.
  - "segment_fill": [{"object", "field", "missing", "total"}], the segment, region and owner fields' fill
    (rules.segment_fields: at most SEGMENT_FIELDS_READ per concept and object), read with the data quality.
  - On HubSpot, an unsigned lifecycle, status or type field's "value_counts" and the ticket "stage_counts" hold only
    the retired options held by records (with "empty", "unknown_total" and "total"): each counted value costs a
    search there, and no rule reports the current options' counts of a field the engagement has not signed.
No Django here: the benchmark and the rules' tests use it as is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base import (
    STAGE_OBJECTS,
    CrmConnector,
    CrmError,
    CrmField,
    CrmNotReadable,
    CrmQueryError,
    CrmUnsupported,
    as_json,
)
from . import rules

SNAPSHOT_VERSION = 1
HISTORY_DAYS = 365  # deep mode reads the last year of stage history
HISTORY_RECORDS = 1_000  # records read per field in deep mode (the cost cap)
ITEM_ERRORS = (CrmQueryError, CrmUnsupported)  # about one field or object: note it, read on
Progress = Callable[[int, int], None]  # (percent, calls spent so far)


class Stop(Exception):
    """A CRM error that ends the reading."""


def _field(f: CrmField, with_values: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": f.api_name,
        "label": f.label,
        "type": f.type,
        "custom": f.custom,
        "required": f.required,
        "role": f.role,
    }
    if f.is_picklist:
        row["values"] = (
            [
                {
                    "value": v.api_value,
                    "label": v.label,
                    "active": v.active,
                    "order": v.order,
                    "probability": v.probability,
                    "is_closed": v.is_closed,
                    "is_won": v.is_won,
                }
                for v in f.values
            ]
            if with_values
            else []
        )
        row["value_count"] = len(f.values)
    return row


class Collector:
    def __init__(
        self,
        connector: CrmConnector,
        *,
        deep: bool = False,
        mapped: Iterable[tuple[str, str]] = (),
        stale_days: int = 180,
        as_of: datetime | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        self.c = connector
        self.deep = deep
        self.mapped = list(mapped)  # (crm_object, crm_field) pairs the signed architecture names
        self.stale_days = stale_days
        self.as_of = as_of
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.last_error: CrmError | None = None
        self._totals: dict[str, int] | None = None
        self.snapshot: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "platform": connector.platform,
            "read_at": datetime.now(UTC).isoformat(),
            "deep": deep,
            "sections": {},
            "objects": {},
            "fields": {},
            "pipelines": {},
            "stage_counts": {},
            "value_counts": {},
            "empty_counts": {},
            "data_quality": {},
            "history": {},
            "unreadable": [],
            "custom_objects": [],
            "segment_fill": [],
            "budget": {},
            "cost": {},
            "errors": [],
            "notes": [],
        }

    # ---- plumbing

    def progress(self, percent: int) -> None:
        if self.on_progress is not None:
            self.on_progress(percent, self.c.calls_spent)

    def call(self, step: str, fn: Callable[[], Any], *, item: bool = False) -> Any:
        """Run one connector call; an item error is noted (None returned), any other CRM error stops."""
        try:
            return fn()
        except ITEM_ERRORS as exc:
            if not item:
                self.fail(step, exc)
            self.snapshot["errors"].append(
                {"step": step, "message": str(exc), "kind": type(exc).__name__, "fatal": False}
            )
            return None
        except CrmError as exc:
            self.fail(step, exc)

    def fail(self, step: str, exc: CrmError) -> None:
        self.last_error = exc
        self.snapshot["errors"].append({"step": step, "message": str(exc), "kind": type(exc).__name__, "fatal": True})
        raise Stop(str(exc)) from None

    def section(self, name: str, fn: Callable[[], None]) -> None:
        before = self.c.calls_spent
        try:
            fn()
        finally:
            self.snapshot["cost"][name] = self.c.calls_spent - before
        self.snapshot["sections"][name] = True

    # ---- reading

    def collect(self) -> dict[str, Any]:
        s = self.snapshot
        self.progress(2)
        try:
            self.section("fields", self._fields)
            self.progress(25)
            self.section("pipelines", self._pipelines)
            self.section("custom_objects", self._custom_objects)
            self.progress(30)
            self.section("counts", self._counts)
            self.section("data_quality", self._quality)
            self.progress(85)
            if self.deep:
                self.section("deep", self._deep)
                self.section("history", self._history)
            self.progress(95)
            budget = self.call("API budget", self.c.api_budget, item=True)
            if budget is not None:
                s["budget"] = {**as_json(budget), "budget_remaining": budget.budget_remaining}
        except Stop:
            pass
        for note in self.c.notes:
            if note not in s["notes"]:
                s["notes"].append(note)
        self._records()
        s["calls"] = self.c.calls_spent
        s["cost"]["total"] = self.c.calls_spent
        s["seconds"] = round(time.monotonic() - self.started, 3)
        return s

    def _records(self) -> None:
        """Record counts per object, from counts the audit read anyway (CrmConnector.objects() would spend a
        count call per object again)."""
        s = self.snapshot
        totals: dict[str, int] = {}
        for row in (s["data_quality"] or {}).get("stale", []) + (s["data_quality"] or {}).get("missing", []):
            totals.setdefault(row["object"], row["total"])
        for vc in s["value_counts"].values():
            totals.setdefault(vc["object"], vc["total"])
        for kind, sc in s["stage_counts"].items():
            totals.setdefault(kind, sc["total"])
        for kind, row in s["objects"].items():
            if row["available"]:
                row["records"] = totals.get(kind)

    def _available(self, kinds: Iterable[str] = rules.OBJECT_LABELS) -> list[str]:
        return [k for k in kinds if self.snapshot["objects"].get(k, {}).get("available")]

    def _fields(self) -> None:
        wanted = {(rules.object_kind(o), (f or "").lower()) for o, f in self.mapped}
        for n, kind in enumerate(rules.OBJECT_LABELS):
            self.progress(5 + 4 * n)
            label = rules.OBJECT_LABELS[kind].capitalize()
            try:
                found = self.call(f"fields of {kind}", lambda kind=kind: self.c.fields(kind))
            except Stop:
                if not isinstance(self.last_error, ITEM_ERRORS):
                    raise
                # the CRM has no such object here (HubSpot has no lead object), or this user may not read it:
                # not an error of the audit; "readable": False tells the rules not to conclude it is missing
                self.snapshot["errors"].pop()
                refused = isinstance(self.last_error, CrmNotReadable)
                self.snapshot["objects"][kind] = {
                    "label": label,
                    "available": False,
                    "records": None,
                    "readable": not refused,
                }
                self.snapshot["notes"].append(
                    f"The {kind} object is not readable by this user: {self.last_error}"
                    if refused
                    else f"{self.c.label} has no {kind} object here: {self.last_error}"
                )
                continue
            self.snapshot["objects"][kind] = {"label": label, "available": True, "records": None}
            rows = []
            for f in found:
                text = rules.norm(f.label)
                keep = bool(f.role) or (kind, f.api_name.lower()) in wanted or (kind, text) in wanted
                keep = keep or (kind == "deal" and bool(rules.FORECAST_FIELD.search(text)))
                rows.append(_field(f, keep))
            self.snapshot["fields"][kind] = rows

    def _unreadable(self, kind: str, field_name: str, reason: str) -> None:
        row = {"object": kind, "field": field_name, "reason": reason}
        if not any(
            u["object"] == kind and u["field"].lower() == field_name.lower() for u in self.snapshot["unreadable"]
        ):
            self.snapshot["unreadable"].append(row)

    def _custom_objects(self) -> None:
        found = self.call("custom objects", self.c.custom_objects, item=True)
        if found is None:
            return
        self.snapshot["notes"] += [n for n in found.notes if n not in self.snapshot["notes"]]
        self.snapshot["custom_objects"] = [
            {"name": o.api_name, "label": o.label, "records": o.records, "fields": [_field(f, True) for f in o.fields]}
            for o in found.objects
        ]

    def _pipelines(self) -> None:
        for kind in self._available(STAGE_OBJECTS):
            found = self.call(f"{kind} pipelines", lambda kind=kind: self.c.pipelines(kind), item=True)
            if found is None:
                continue
            self.snapshot["pipelines"][kind] = [
                {
                    "id": p.id,
                    "label": p.label,
                    "order": p.order,
                    "active": p.active,
                    "stages": [
                        {
                            "id": st.id,
                            "label": st.label,
                            "order": st.order,
                            "probability": st.probability,
                            "is_closed": st.is_closed,
                            "is_won": st.is_won,
                            "active": st.active,
                        }
                        for st in p.stages
                    ],
                }
                for p in found
            ]

    def _count_plan(self) -> list[tuple[str, Callable[[], None]]]:
        snap = rules.Snapshot(self.snapshot)
        plan: list[tuple[str, Callable[[], None]]] = []
        signed_kinds = {rules.object_kind(o) for o, _ in self.mapped}
        for kind in self._available(STAGE_OBJECTS):
            # every deal stage is counted (the next-step and loss-reason rules add up open and lost deals), and every
            # stage of an object with signed stages (the drift rules report records per stage)
            judged = self.c.counts_per_value and kind != "deal" and kind not in signed_kinds
            read = self._judged_stage_counts if judged else self._stage_counts
            plan.append((f"{kind} stage counts", lambda kind=kind, read=read: read(kind)))
        # (kind, field) -> whether every option's count is needed: the drift, forecast and loss-reason rules report
        # records per option; the lifecycle, status and type rules only the empty, rogue and retired ones
        counted: dict[tuple[str, str], bool] = {}
        for kind in self._available(("lead", "contact", "company")):
            for f in snap.role_fields(kind):
                counted[(kind, f["name"])] = False
        forecast = rules.forecast_field(snap)
        if forecast is not None:
            counted[("deal", forecast["name"])] = True
        for o, name in self.mapped:
            kind = rules.object_kind(o)
            f = snap.field(kind, name) if kind and snap.available(kind) else None
            if f is not None and f["type"] == "picklist" and f.get("role") != "stage":
                counted[(kind, f["name"])] = True
        for (kind, name), every in sorted(counted.items()):
            read = self._value_counts if every or not self.c.counts_per_value else self._judged_counts
            plan.append((f"{kind}.{name} values", lambda kind=kind, name=name, read=read: read(kind, name)))
        reason = rules.reason_field(snap) if snap.available("deal") else None
        if reason is not None:
            if reason["type"] != "picklist":  # a picklist's value counts say how many deals have none
                plan.append((f"deal.{reason['name']} empty", lambda name=reason["name"]: self._empty("deal", name)))
            if ("deal", reason["name"]) not in counted and reason["type"] in ("picklist", "string", "text"):
                # one reason dominating the recorded ones (the seed's drop-off review); free text grouped by wording
                plan.append(
                    (f"deal.{reason['name']} values", lambda name=reason["name"]: self._value_counts("deal", name))
                )
        return plan

    def _counts(self) -> None:
        plan = self._count_plan()
        for n, (_step, fn) in enumerate(plan):
            self.progress(30 + int(45 * n / max(1, len(plan))))
            fn()

    def _stage_counts(self, kind: str) -> None:
        sc = self.call(f"{kind} stage counts", lambda: self.c.stage_counts(kind), item=True)
        if sc is None:
            return
        self.snapshot["stage_counts"][kind] = {
            "stages": [
                {
                    "value": v.value,
                    "label": v.label,
                    "count": v.count,
                    "known": v.known,
                    "active": v.active,
                    "pipeline_id": v.pipeline_id,
                }
                for v in sc.stages
            ],
            "without_stage": sc.without_stage,
            "unknown_total": sc.unknown_total,
            "total": sc.total,
        }

    def _value_counts(self, kind: str, name: str, deep: bool = False) -> None:
        errors = len(self.snapshot["errors"])
        vc = self.call(f"{kind}.{name} values", lambda: self.c.value_counts(kind, name, deep=deep), item=True)
        if vc is None:
            if len(self.snapshot["errors"]) > errors and self.snapshot["errors"][-1]["kind"] == "CrmQueryError":
                label = rules.OBJECT_LABELS.get(kind, kind).capitalize()
                self._unreadable(kind, name, f"{label}.{name} is missing or not readable by this user")
            return
        self.snapshot["value_counts"][f"{kind}.{name}"] = {
            "object": kind,
            "field": vc.field,
            "values": [
                {"value": v.value, "label": v.label, "count": v.count, "known": v.known, "active": v.active}
                for v in vc.values
            ],
            "empty": vc.empty,
            "unknown_total": vc.unknown_total,
            "unknown_named": vc.unknown_named,
            "total": vc.total,
            "note": vc.note,
            "deep": deep,
            "free_text": vc.free_text,
        }
        if not vc.free_text:  # records with no value at all (a free-text reading only saw some records)
            self.snapshot["empty_counts"][f"{kind}.{vc.field}"] = vc.empty

    def _record_total(self, kind: str) -> int | None:
        """All records of an object, read once per audit (HubSpot counts them for the data-quality shares anyway)."""
        if self._totals is None:
            found = self.call("record counts", self.c.objects, item=True) or []
            self._totals = {o.kind: o.record_count for o in found if o.available and o.record_count is not None}
        return self._totals.get(kind)

    def _judged(self, kind: str, name: str, retired: list[str]) -> tuple[int, int, dict[str, int], int] | None:
        """(records without a value, records in values no option lists, records per retired option held, all
        records): what the rules judge a field by, where a CRM charges a request per value counted (HubSpot). The
        current options' own counts are left out; no rule reports them unless the field is signed."""
        errors = len(self.snapshot["errors"])
        step = f"{kind}.{name} values"
        empty = self.call(step, lambda: self.c.count_without_value(kind, name), item=True)
        unknown = None if empty is None else self.call(step, lambda: self.c.count_unlisted(kind, name), item=True)
        held = None if unknown is None else self.call(step, lambda: self.c.held_counts(kind, name, retired), item=True)
        total = self._record_total(kind)
        if empty is None or unknown is None or held is None or total is None:
            if len(self.snapshot["errors"]) > errors and self.snapshot["errors"][-1]["kind"] == "CrmQueryError":
                label = rules.OBJECT_LABELS.get(kind, kind).capitalize()
                self._unreadable(kind, name, f"{label}.{name} is missing or not readable by this user")
            return None
        return empty, unknown, held, total

    def _judged_counts(self, kind: str, name: str) -> None:
        f = rules.Snapshot(self.snapshot).field(kind, name) or {"values": []}
        options = {v["value"]: v for v in f.get("values") or [] if v.get("active") is False}
        judged = self._judged(kind, name, list(options))
        if judged is None:
            return
        empty, unknown, held, total = judged
        self.snapshot["value_counts"][f"{kind}.{name}"] = {
            "object": kind,
            "field": name,
            "values": [
                {"value": v, "label": options[v]["label"], "count": n, "known": True, "active": False}
                for v, n in held.items()
            ],
            "empty": empty,
            "unknown_total": unknown,
            "unknown_named": unknown == 0,
            "total": total,
            "note": "Counted: records without a value, in retired options and in values no option lists.",
            "deep": False,
            "free_text": False,
        }
        self.snapshot["empty_counts"][f"{kind}.{name}"] = empty

    def _judged_stage_counts(self, kind: str) -> None:
        name = rules.Snapshot(self.snapshot).stage_field(kind)
        if name is None:
            self._stage_counts(kind)
            return
        archived = {
            st["id"]: (p["id"], st)
            for p in self.snapshot["pipelines"].get(kind) or []
            for st in p["stages"]
            if st.get("active") is False
        }
        judged = self._judged(kind, name, list(archived))
        if judged is None:
            return
        empty, unknown, held, total = judged
        self.snapshot["stage_counts"][kind] = {
            "stages": [
                {
                    "value": v,
                    "label": archived[v][1]["label"],
                    "count": n,
                    "known": True,
                    "active": False,
                    "pipeline_id": archived[v][0],
                }
                for v, n in held.items()
            ],
            "without_stage": empty,
            "unknown_total": unknown,
            "total": total,
        }

    def _empty(self, kind: str, name: str) -> None:
        n = self.call(f"{kind}.{name} empty", lambda: self.c.count_without_value(kind, name), item=True)
        if n is not None:
            self.snapshot["empty_counts"][f"{kind}.{name}"] = n

    def _quality(self) -> None:
        """Data quality; the connector skips (and lists) the fields it cannot read, so the rest is measured. The
        fill of the segment, region and owner fields (DATA-NO-SEGMENT-FIELDS) is read in the same aggregates as the
        minimum fields' (Salesforce: one query per object whatever the number of fields) and kept apart from them."""
        minimum = {(kind, n.lower()) for kind, names in self.c.minimum_fields.items() for n in names}
        required = {kind: list(names) for kind, names in self.c.minimum_fields.items()}
        snap = rules.Snapshot(self.snapshot)
        segment = set()
        for kind in rules.segment_objects(snap) if minimum else ():
            for fields in rules.segment_fields(snap, kind).values():
                for f in fields:
                    segment.add((kind, f["name"].lower()))
                    if (kind, f["name"].lower()) not in minimum:
                        required.setdefault(kind, []).append(f["name"])
        dq = self.call(
            "data quality",
            lambda: self.c.data_quality(
                as_of=self.as_of, stale_days=self.stale_days, required=required or None, deep=False
            ),
            item=True,
        )
        if dq is None:
            return
        quality = _quality_json(dq)
        self.snapshot["segment_fill"] = [m for m in quality["missing"] if (m["object"], m["field"].lower()) in segment]
        if minimum:
            quality["missing"] = [m for m in quality["missing"] if (m["object"], m["field"].lower()) in minimum]
            quality["unreadable"] = [u for u in quality["unreadable"] if (u["object"], u["field"].lower()) in minimum]
        self.snapshot["data_quality"] = quality
        for u in dq.unreadable:
            self._unreadable(u.object, u.field, u.reason)

    def _deep(self) -> None:
        """Record walks: duplicates (people by email, companies by domain) and naming unnamed rogue values."""
        dq = self.call(
            "deep data quality (duplicates)",
            lambda: self.c.data_quality(as_of=self.as_of, stale_days=self.stale_days, deep=True),
            item=True,
        )
        if dq is not None:
            if not self.snapshot["data_quality"]:
                self.snapshot["data_quality"] = _quality_json(dq)
            self.snapshot["data_quality"]["duplicates"] = _quality_json(dq)["duplicates"]
            for u in dq.unreadable:
                self._unreadable(u.object, u.field, u.reason)
        for vc in list(self.snapshot["value_counts"].values()):
            if vc["unknown_total"] and not vc["unknown_named"]:
                self.progress(90)
                self._value_counts(vc["object"], vc["field"], deep=True)
        snap = rules.Snapshot(self.snapshot)
        for kind, sc in self.snapshot["stage_counts"].items():
            named = sum(s["count"] for s in sc["stages"] if not s["known"])
            stage_field = snap.stage_field(kind)
            if sc["unknown_total"] <= named or stage_field is None:
                continue
            self.progress(92)
            vc = self.call(
                f"{kind} stage values", lambda k=kind, f=stage_field: self.c.value_counts(k, f, deep=True), item=True
            )
            for v in vc.unknown if vc is not None else ():
                sc["stages"].append(
                    {
                        "value": v.value,
                        "label": None,
                        "count": v.count,
                        "known": False,
                        "active": None,
                        "pipeline_id": None,
                    }
                )

    def history_plan(self) -> list[tuple[str, str]]:
        """The (object, field) pairs whose per-record history deep mode reads: the lead/contact lifecycle fields,
        the deal stage, and any picklist the signed architecture maps stages to."""
        snap = rules.Snapshot(self.snapshot)
        plan: list[tuple[str, str]] = []
        for kind in self._available(("lead", "contact")):
            plan += [(kind, f["name"]) for f in snap.role_fields(kind, "lifecycle") if f["type"] == "picklist"]
        stage = snap.stage_field("deal") if snap.available("deal") else None
        if stage:
            plan.append(("deal", stage))
        for o, name in self.mapped:
            kind = rules.object_kind(o)
            if kind not in ("lead", "contact", "company", "deal") or not snap.available(kind):
                continue
            f = snap.field(kind, name)
            if f is not None and f["type"] == "picklist":
                plan.append((kind, f["name"]))
        return list(dict.fromkeys(plan))

    def _history(self) -> None:
        """Deep mode: each record's path through the stage fields in the last HISTORY_DAYS days (at most
        HISTORY_RECORDS records per field), stored as distinct paths with their record counts."""
        end = self.as_of or datetime.now(UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        start = end - timedelta(days=HISTORY_DAYS)
        for kind, name in self.history_plan():
            self.progress(93)
            fh = self.call(
                f"{kind}.{name} history",
                lambda k=kind, n=name: self.c.field_history(k, n, start, end, limit=HISTORY_RECORDS),
                item=True,
            )
            if fh is None:
                continue
            if not fh.available:
                self.snapshot["notes"].append(fh.note)
            paths: Counter[tuple[tuple[str, ...], str | None]] = Counter()
            for r in fh.records:
                paths[(r.path, r.pipeline)] += 1
            self.snapshot["history"][f"{kind}.{fh.field}"] = {
                "object": kind,
                "field": fh.field,
                "start": fh.start.isoformat(),
                "end": fh.end.isoformat(),
                "available": fh.available,
                "records_read": fh.records_read,
                "changes_read": fh.changes_read,
                "sampled": fh.sampled,
                "population": fh.population,
                "source": fh.source,
                "note": fh.note,
                "calls": fh.calls,
                "paths": [
                    {"values": list(path), "pipeline": pipeline, "records": n}
                    for (path, pipeline), n in sorted(paths.items(), key=lambda kv: (-kv[1], kv[0][0]))
                ],
            }


def _quality_json(dq: Any) -> dict[str, Any]:
    return {
        "as_of": dq.as_of.isoformat(),
        "stale_days": dq.stale_days,
        "missing": [{"object": m.object, "field": m.field, "missing": m.missing, "total": m.total} for m in dq.missing],
        "stale": [{"object": s.object, "stale": s.stale, "total": s.total} for s in dq.stale],
        "open_deals_without_next_step": dq.open_deals_without_next_step,
        "duplicates": None
        if dq.duplicates is None
        else [
            {"object": d.object, "key": d.key, "groups": d.groups, "records": d.records, "scanned": d.scanned}
            for d in dq.duplicates
        ],
        "notes": list(dq.notes),
        "unreadable": [{"object": u.object, "field": u.field, "reason": u.reason} for u in dq.unreadable],
    }


def collect(connector: CrmConnector, **options: Any) -> dict[str, Any]:
    return Collector(connector, **options).collect()


def deep_cost_estimate(snapshot: dict[str, Any]) -> int | None:
    """Calls a deep audit would add, from the record counts a standard audit read (pages of the record walks)."""
    objects = snapshot.get("objects") or {}

    def records(kind: str) -> int:
        return (objects.get(kind) or {}).get("records") or 0

    fields = snapshot.get("fields") or {}
    history_fields = sum(
        1 for kind in ("lead", "contact") for f in fields.get(kind) or [] if f.get("role") == "lifecycle"
    ) + (1 if records("deal") else 0)
    if snapshot.get("platform") == "salesforce":
        pages = [records(k) for k in ("lead", "contact", "company") if records(k)]
        history = history_fields * (2 + -(-HISTORY_RECORDS * 8 // 2000))  # count + at most that many pages
        return sum(max(1, -(-n // 2000)) + 1 for n in pages) + 16 + history
    if snapshot.get("platform") == "hubspot":
        history = history_fields * (-(-HISTORY_RECORDS // 200) + -(-HISTORY_RECORDS // 50))  # searches + batch reads
        return sum(max(1, -(-records(k) // 100)) for k in ("contact", "company")) + 16 + history
    return None
