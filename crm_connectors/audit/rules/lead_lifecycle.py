"""DOMAIN.md 8.1, the lead / contact lifecycle: outcomes and statuses mixed into lifecycle fields, missing SAL
and drop-off reasons, rogue and retired values, skipped and backward stage moves."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ... import vocabulary
from .flagged import per_field, per_pipeline
from .lexicon import (
    ACTIVITY_WORDS,
    COMPANY_LIFECYCLE,
    COMPLETION_WORDS,
    CUSTOMER_LIFECYCLE,
    HIGH,
    LEAD_LIFECYCLE,
    LOW,
    MEDIUM,
    OBJECT_LABELS,
    OUTCOME,
    PEOPLE,
    REASON_FIELD,
    SAL,
    SALES_PIPELINES,
    SEED_STAGE_NAMES,
    STATUS_WORDS,
    listing,
    matches,
    norm,
    plural,
    share_text,
    shown,
    squash,
    texts,
    words,
)
from .registry import Hit, NotEvaluated, Rule, require, rule
from .snapshot import (
    Context,
    Snapshot,
    documented,
    field_label,
    lifecycle_like,
    reason_field,
    signed_architecture,
    unread_people_fields,
    value_class,
)


@rule(
    "LC-DEAL-OUTCOME-IN-LIFECYCLE",
    title="Deal outcomes stored in lifecycle or status fields",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 Current State Audit §1 “deal outcomes stored in lifecycle stages”; Common Gotchas",
    recommendation="Lifecycle tracks forward progression; deal outcomes go in the deal pipeline. Remove Won/Lost "
    "values from lifecycle and status fields and let the opportunity or deal carry the outcome.",
    detects="Won/Lost values in a lead/contact/company lifecycle or status picklist (not deal stages)",
)
def _deal_outcomes(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    snap.not_read(unread_people_fields(snap, ("lead", "contact", "company")))

    def details(kind: str, f: dict, bad: list[dict]) -> dict[str, Any]:
        # 'Lost Interest' only looks like an outcome: advisory unless a value is a documented one (Closed Lost)
        sure = any(documented(v) for v in bad)
        return {
            "severity": r.severity if sure else LOW,
            "message": f"{snap.crm} {OBJECT_LABELS[kind]} field {field_label(f)} holds deal outcomes: "
            f"{listing(shown(v) for v in bad)}."
            + ("" if sure else " These names are not in the standard vocabulary: check what they mean."),
        }

    fields = lifecycle_like(snap, ("lead", "contact", "company"))
    return per_field(r, fields, lambda f, v: value_class(v) == vocabulary.OUTCOME, details)


@rule(
    "LC-NO-SAL",
    title="No SAL (Sales Accepted Lead) stage",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 Current State Audit §1 “missing SAL stage”; Common Gotchas",
    recommendation="Add a Sales Accepted Lead stage between MQL and SQL: without SAL you cannot measure "
    "Marketing-to-Sales handoff speed or acceptance rate.",
    detects="no lead/contact lifecycle or status value matching SAL / Sales Accepted",
)
def _no_sal(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    fields = list(lifecycle_like(snap))
    if any(matches(SAL, v) for _, f in fields for v in f["values"]):
        return []
    require(snap, unread_people_fields(snap))  # the SAL stage may sit in the field this user cannot read
    if not fields:
        return []
    kinds = sorted({k for k, _ in fields}, key=PEOPLE.index)
    return [
        r.hit(
            object=kinds[0],
            field="",
            values=[f"{k}.{f['name']}" for k, f in fields],
            count=len(fields),
            message=f"None of the {plural(len(fields), 'lifecycle or status field')} on {snap.crm} "
            f"{' and '.join(OBJECT_LABELS[k] for k in kinds)} has a Sales Accepted Lead (SAL) stage.",
        )
    ]


@rule(
    "LC-OVERLAPPING-SYSTEMS",
    title="Several fields track the same funnel",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 Current State Audit §1 “Lead Pipeline + Contact Lifecycle + Lead Status all tracking similar concepts”",
    recommendation="Keep one lifecycle field for funnel position (MQL, SAL, SQL…) and one status field for the "
    "working state; retire the overlapping fields after mapping their values.",
    detects="two or more picklists on the same object carrying funnel stages (MQL, SAL, SQL…), or leads and contacts "
    "carrying them in different fields (Lead Status on leads, a lifecycle field on contacts)",
)
def _overlapping(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    snap.not_read(unread_people_fields(snap))
    hits = []
    carrying: dict[str, dict[str, list[str]]] = {}  # object -> field -> funnel stages it holds
    for kind in PEOPLE:
        fields = {
            f["name"]: [shown(v) for v in f["values"] if vocabulary.is_funnel_stage(v.get("label"), v.get("value"))]
            for f in snap.role_fields(kind, "lifecycle", "status")
        }
        carrying[kind] = {name: vals for name, vals in fields.items() if vals}
    for kind, fields in carrying.items():
        if len(fields) >= 2:
            hits.append(
                r.hit(
                    object=kind,
                    field=", ".join(fields),
                    values=sorted({v for vals in fields.values() for v in vals}),
                    counts={name: len(vals) for name, vals in fields.items()},
                    count=len(fields),
                    evidence={"fields": fields},
                    message=f"{len(fields)} fields on {snap.crm} {OBJECT_LABELS[kind]} carry funnel stages: "
                    + "; ".join(f"{name} ({', '.join(vals)})" for name, vals in fields.items())
                    + ".",
                )
            )
    # across objects: leads and contacts tracking the funnel in different fields (Lead Status on leads, a lifecycle
    # field on contacts) are two systems; the same field on both (mapped on conversion) is one
    leads, contacts = carrying.get("lead") or {}, carrying.get("contact") or {}
    lead_names, contact_names = {n.lower() for n in leads}, {n.lower() for n in contacts}
    if leads and contacts and lead_names != contact_names:
        only = {
            "lead": {n: v for n, v in leads.items() if n.lower() not in contact_names},
            "contact": {n: v for n, v in contacts.items() if n.lower() not in lead_names},
        }
        extra = [
            f"only {OBJECT_LABELS[k]} carry them in "
            + ", ".join(f"{field_label(snap.field(k, n) or {'name': n})} ({', '.join(v)})" for n, v in fields.items())
            for k, fields in only.items()
            if fields
        ]
        hits.append(
            r.hit(
                object="lead, contact",
                field=", ".join(sorted({n for fields in only.values() for n in fields})),
                key="across-objects",
                values=sorted({v for fields in only.values() for vals in fields.values() for v in vals}),
                counts={f"{k}.{n}": len(v) for k, fields in only.items() for n, v in fields.items()},
                count=sum(len(fields) for fields in only.values()),
                evidence={"lead": leads, "contact": contacts},
                message=f"{snap.crm} leads and contacts track the funnel in different fields: "
                + "; ".join(extra)
                + ". Reports that follow one field miss the records tracked in the other.",
            )
        )
    return hits


HUBSPOT_STAGE_DATE = re.compile(r"^hs_(?:v2_)?date_(?:entered|exited)_(.+)$|^hs_lifecyclestage_(.+)_date$")
ACRONYMS = {
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "sal": "salesacceptedlead",
    "sao": "salesacceptedopportunity",
    "pql": "productqualifiedlead",
}


def _stage_key(text: Any) -> str:
    """One spelling per stage: 'MQL', 'Marketing Qualified Lead' and 'marketingqualifiedlead' all read the same."""
    key = squash(text)
    return ACRONYMS.get(key, key)


def _current_stage_keys(snap: Snapshot, kind: str) -> set[str]:
    keys: set[str] = set()
    if kind in ("deal", "ticket"):
        for p in snap.pipelines(kind):
            keys |= {_stage_key(st["id"]) for st in p["stages"] if st.get("active", True) is not False}
        return keys
    for f in snap.role_fields(kind, "lifecycle", "status"):
        for v in f["values"]:
            if v.get("active", True) is not False:
                keys |= {_stage_key(v.get("value")), _stage_key(v.get("label"))}
    return keys


@rule(
    "LC-RETIRED-DATE-PROPERTIES",
    title="Stage date fields for stages that no longer exist",
    domain=LEAD_LIFECYCLE,
    severity=LOW,
    seed="S1 Current State Audit §1 “Lead Pipeline + Contact Lifecycle + Lead Status all tracking similar concepts”; "
    "§4a “records stuck in old stages”",
    recommendation="Retire the date fields of stages that no longer exist (hide or archive them, after copying what "
    "reports still need) so time-in-stage and conversion reports read only the current lifecycle.",
    needs=("fields", "pipelines"),
    detects="date fields that record entering a stage (HubSpot hs_date_entered_*, ‘MQL Date’) whose stage is not a "
    "current value of the object's lifecycle or status fields or pipelines",
)
def _retired_dates(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for kind in ("lead", "contact", "company", "deal"):
        if not snap.available(kind):
            continue
        current = _current_stage_keys(snap, kind)
        if not current:
            continue  # no stage field read: nothing to compare with
        retired: dict[str, str] = {}  # field name -> the stage it dates
        for f in snap.fields(kind):
            if f.get("type") not in ("date", "datetime"):
                continue
            m = HUBSPOT_STAGE_DATE.match(f["name"])
            if m:
                stage = m.group(1) or m.group(2)
            else:
                found = vocabulary.FUNNEL_PATTERN.search(norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", f["name"])))
                found = found or vocabulary.FUNNEL_PATTERN.search(norm(f.get("label")))
                if not found or kind in ("deal", "ticket"):
                    continue
                stage = found.group(0)
            if _stage_key(stage) not in current:
                retired[f["name"]] = stage
        if retired:
            hits.append(
                r.hit(
                    object=kind,
                    field=", ".join(retired),
                    domain=SALES_PIPELINES if kind == "deal" else COMPANY_LIFECYCLE if kind == "company" else r.domain,
                    values=sorted(set(retired.values())),
                    count=len(retired),
                    evidence={"fields": retired},
                    message=f"{plural(len(retired), 'date field')} on {snap.crm} {OBJECT_LABELS[kind]} "
                    f"{'records' if len(retired) == 1 else 'record'} entering stages that are no longer current "
                    f"values: {listing(f'{name} ({stage})' for name, stage in retired.items())}. They are left over "
                    "from an earlier lifecycle and mislead time-in-stage reports.",
                )
            )
    return hits


@rule(
    "LC-STATUS-MIX",
    title="Lifecycle and status concepts mixed in one field",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 Common Gotchas “Keep lifecycle stages (funnel position) and contact statuses (working state) as "
    "separate fields”",
    recommendation="Keep lifecycle stages (funnel position) and contact statuses (working state: New, Working, "
    "Engaged, Nurture) as separate fields; move the working-state values out of the lifecycle field and the funnel "
    "stages out of the status field.",
    detects="working-state words (New, Working, Nurture…) in a lifecycle field, or funnel stages in a status field",
)
def _status_mix(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    snap.not_read(unread_people_fields(snap))

    def wrong(f: dict, v: dict) -> bool:
        return value_class(v) == (vocabulary.STATUS if f["role"] == "lifecycle" else vocabulary.STAGE)

    def details(kind: str, f: dict, bad: list[dict]) -> dict[str, Any]:
        what = "working-state (status) values" if f["role"] == "lifecycle" else "funnel stages"
        # a value only a word pattern recognised may be the client's own name for something else: advisory
        sure = [v for v in bad if documented(v)]
        return {
            "severity": r.severity if sure else LOW,
            "evidence": {"role": f["role"], "values": {shown(v): v.get("value") for v in bad}},
            "message": f"The {f['role']} field {field_label(f)} on {snap.crm} {OBJECT_LABELS[kind]} holds "
            f"{what}: {listing(shown(v) for v in bad)}."
            + ("" if sure else " These names are not in the standard vocabulary: check what they mean."),
        }

    return per_field(r, lifecycle_like(snap), wrong, details)


@rule(
    "LC-NO-CONTACT-STATUS",
    title="No contact status separate from the lifecycle",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §2c “Contact Status field configured (separate from Lifecycle Stage)”",
    recommendation="Configure a Contact Status field (New, Working, Engaged, Nurture) separate from Lifecycle Stage, "
    "and fill it in as reps work the contact.",
    needs=("fields", "counts"),
    detects="contacts have no status picklist, or it is empty on every contact",
)
def _no_contact_status(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if not snap.available("contact"):
        return []
    statuses = snap.role_fields("contact", "status")
    if not statuses:
        require(snap, snap.unreadable("contact", roles=("status",)))
        return [
            r.hit(
                object="contact",
                field="",
                message=f"{snap.crm} contacts have no status field separate from the lifecycle stage.",
            )
        ]
    counted = [vc for f in statuses if (vc := snap.value_counts("contact", f["name"])) is not None]
    total = max((vc["total"] for vc in counted), default=0)
    empty = [f for f in statuses if (vc := snap.value_counts("contact", f["name"])) and total and vc["empty"] >= total]
    if total and len(empty) == len(statuses):
        return [
            r.hit(
                object="contact",
                field=", ".join(f["name"] for f in empty),
                count=total,
                message=f"The contact status field {', '.join(field_label(f) for f in empty)} exists but none of "
                f"the {total:,} {snap.crm} contacts has a value: the working state is not tracked.",
            )
        ]
    return []


@rule(
    "LC-STAGE-ACTIVITY-NAME",
    title="Stages named for activities, not milestones",
    domain=LEAD_LIFECYCLE,
    severity=LOW,
    seed="S1 Common Gotchas “Use past-tense: ‘Demo Completed’ not ‘Demo’” (advisory, DOMAIN.md Q4)",
    recommendation="Name stages as completed milestones (‘Demo Completed’, ‘Proposal Sent’), not activities "
    "(‘Demo’, ‘Send Proposal’), so a record's stage says what has happened.",
    needs=("fields", "pipelines"),
    detects="stage labels that are activities (Demo, Discovery Call, Send Proposal) without a completion word",
)
def _activity_names(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    def activity(label: str) -> bool:
        tokens = words(label)
        if " ".join(tokens) in SEED_STAGE_NAMES:
            return False
        if not ACTIVITY_WORDS & set(tokens):
            return False
        return not any(t in COMPLETION_WORDS or (t.endswith("ed") and len(t) > 4) for t in tokens)

    fields = lifecycle_like(snap, ("lead", "contact", "company"), ("lifecycle",))
    hits = per_field(
        r,
        fields,
        lambda f, v: activity(shown(v)),
        lambda kind, f, bad: {
            "message": f"{field_label(f)} has stages named for activities: {listing(shown(v) for v in bad)}."
        },
    )
    return hits + per_pipeline(
        r,
        snap,
        lambda s: activity(s["label"]),
        lambda p, labels: f"Pipeline “{p['label']}” has stages named for activities: {listing(labels)}.",
        evidence=False,
    )


@rule(
    "LC-NO-DROP-OFF-REASON",
    title="No drop-off reason on lost deals",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 §2c/§2d “Drop-off reason fields … required when moving to disqualified/lost stages”",
    recommendation="Add a drop-off (loss) reason picklist on deals and make it required when a deal moves to "
    "Closed Lost (and on leads when they are disqualified).",
    needs=("fields", "pipelines", "counts"),
    detects="deals have no loss-reason field, or more than the threshold share of lost deals have none",
)
def _no_drop_off_reason(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if not snap.available("deal"):
        return []
    reason = reason_field(snap)
    if reason is None:
        require(snap, snap.unreadable("deal", pattern=REASON_FIELD))
        return [
            r.hit(
                object="deal",
                field="",
                message=f"{snap.crm} deals have no drop-off (loss) reason field: nobody can say why deals are lost.",
            )
        ]
    counts, empty = snap.stage_counts("deal"), snap.empty_count("deal", reason["name"])
    if counts is None or empty is None:
        return []
    if not 0 <= empty <= counts["total"]:
        raise NotEvaluated(
            f"the CRM's counts for deal.{reason['name']} do not add up ({empty:,} of {counts['total']:,})"
        )
    closed = closed_lookup(snap, "deal")
    lost = sum(s["count"] for s in counts["stages"] if closed.get((s.get("pipeline_id"), s["value"].lower())) == "lost")
    with_reason = max(0, counts["total"] - empty)
    without = max(0, lost - with_reason)
    share = without / lost if lost else 0.0
    if lost and share > ctx.threshold("lost_without_reason_share"):
        return [
            r.hit(
                object="deal",
                field=reason["name"],
                counts={"lost": lost, "lost_without_reason": without},
                count=without,
                evidence={"share": round(share, 4), "threshold": ctx.threshold("lost_without_reason_share")},
                message=f"{without:,} of {lost:,} lost deals ({share_text(share)}) have no {reason.get('label')}.",
            )
        ]
    return []


def closed_lookup(snap: Snapshot, kind: str) -> dict[tuple[str | None, str], str]:
    """(pipeline id, stage value) -> 'won' / 'lost' / 'open', from the pipelines' stage flags."""
    out: dict[tuple[str | None, str], str] = {}
    for p in snap.pipelines(kind):
        for s in p["stages"]:
            state = ("won" if s.get("is_won") else "lost") if s.get("is_closed") else "open"
            out[(p["id"], s["id"].lower())] = state
            out.setdefault((None, s["id"].lower()), state)
    return out


@rule(
    "LC-DOMINANT-DROP-OFF-REASON",
    title="One loss reason dominates",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 §4a monthly Drop-off Reason Review “Same reason appearing >30% of the time” (DOMAIN.md T4)",
    recommendation="Review the dominant drop-off reason with the teams that record it: find out what lies behind "
    "it (a real pattern to act on, or a default reps pick) and split it into more precise reasons if it hides several.",
    needs=("fields", "counts"),
    detects="one value holds more than dominant_reason_share of the deals with a recorded loss reason (at least "
    "dominant_reason_min of them)",
)
def _dominant_reason(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    reason = reason_field(snap)
    if reason is None:
        return []
    vc = snap.value_counts("deal", reason["name"])
    if vc is None:
        return []
    counts: dict[str, int] = {}
    for v in vc["values"]:
        if v["count"] and norm(v.get("label") or v["value"]):
            name = v.get("label") or v["value"]
            counts[name] = counts.get(name, 0) + v["count"]
    recorded = sum(counts.values())
    if recorded < ctx.threshold("dominant_reason_min"):
        return []
    top, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    share = n / recorded
    if not 0 < share <= 1:
        raise NotEvaluated(f"the CRM's counts for deal.{reason['name']} do not add up")
    limit = ctx.threshold("dominant_reason_share")
    if share <= limit:
        return []
    free = " (free text, grouped by normalised wording)" if vc.get("free_text") else ""
    ranked = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    return [
        r.hit(
            object="deal",
            field=reason["name"],
            values=list(ranked),
            counts=ranked,
            count=n,
            evidence={"share": round(share, 4), "threshold": limit, "recorded": recorded, "free_text": bool(free)},
            message=f"“{top}” is the {reason.get('label') or reason['name']}{free} of {n:,} of the {recorded:,} "
            f"{snap.crm} deals with a recorded reason ({share_text(share)}; the review threshold is "
            f"{share_text(limit)}). Top reasons: " + ", ".join(f"{k} ({v:,})" for k, v in ranked.items()) + ".",
        )
    ]


@dataclass
class CountedField:
    """One field's record counts split by what the CRM says of each value: current, retired (an inactive picklist
    value, a hidden HubSpot option, an archived stage) or rogue (no option lists it). Judged per field: a value is
    current only among its own field's options."""

    kind: str
    name: str  # field API name
    label: str
    domain: str
    total: int  # records counted (with or without a value)
    retired: dict[str, int] = field(default_factory=dict)  # label -> records
    rogue: dict[str, int] = field(default_factory=dict)  # value as the records hold it -> records
    internal: dict[str, str] = field(default_factory=dict)  # label -> internal value, for the evidence
    unnamed: int = 0  # records in values the CRM did not name (HubSpot without deep)
    hidden_options: list[str] = field(default_factory=list)  # retired options, when the unnamed may be in them


def _options(f: dict | None) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for o in (f or {}).get("values") or []:
        found.setdefault(str(o["value"]).lower(), o)
    for o in (f or {}).get("values") or []:
        found.setdefault(str(o.get("label") or "").lower(), o)
    return found


def _place(
    counted: CountedField,
    options: dict[str, dict],
    value: str,
    label: str | None,
    n: int,
    known: bool,
    active: bool | None,
) -> None:
    option = options.get(value.lower())
    if known and active is False or (not known and option is not None and option.get("active") is False):
        name = label or (option or {}).get("label") or value
        counted.retired[name] = counted.retired.get(name, 0) + n
        counted.internal[name] = (option or {}).get("value") or value
    elif not known and option is None:
        counted.rogue[value] = counted.rogue.get(value, 0) + n


def counted_fields(snap: Snapshot) -> list[CountedField]:
    """Every counted lifecycle, status, type and stage field, with its retired and rogue values."""
    out = []
    domains = {"lead": LEAD_LIFECYCLE, "contact": LEAD_LIFECYCLE, "company": COMPANY_LIFECYCLE}
    for vc in (snap.data.get("value_counts") or {}).values():
        kind = vc["object"]
        f = snap.field(kind, vc["field"])
        if kind not in domains or f is None or not f.get("role"):
            continue
        counted = CountedField(kind, f["name"], f.get("label") or f["name"], domains[kind], vc.get("total") or 0)
        options = _options(f)
        for v in vc["values"]:
            if v["count"]:
                _place(counted, options, v["value"], v.get("label"), v["count"], v["known"], v.get("active"))
        named = sum(v["count"] for v in vc["values"] if not v["known"])
        counted.unnamed = max(0, (vc.get("unknown_total") or 0) - named)
        counted.hidden_options = [shown(o) for o in f.get("values") or [] if o.get("active") is False]
        out.append(counted)
    for kind in ("deal", "ticket"):
        sc = snap.stage_counts(kind)
        if not sc:
            continue
        name = snap.stage_field(kind) or "stage"
        f = snap.field(kind, name)
        counted = CountedField(
            kind,
            name,
            (f or {}).get("label") or name,
            SALES_PIPELINES if kind == "deal" else CUSTOMER_LIFECYCLE,
            sc.get("total") or 0,
        )
        # each pipeline is judged on its own stages: another pipeline's stage on a deal is no option of its pipeline
        field_options = _options(f)
        retired_only = {k: o for k, o in field_options.items() if o.get("active") is False}
        every = dict(field_options)
        per_pipeline: dict[str, dict[str, dict]] = {}
        for p in snap.pipelines(kind):
            stages = {
                st["id"].lower(): {"value": st["id"], "label": st["label"], "active": st.get("active")}
                for st in p["stages"]
            }
            stages.update({st["label"].lower(): v for st, v in zip(p["stages"], stages.values(), strict=True)})
            per_pipeline[p["id"]] = {**retired_only, **stages}
            for key, o in stages.items():
                every.setdefault(key, o)
        for st in sc["stages"]:
            if st["count"]:
                options = per_pipeline.get(st.get("pipeline_id") or "", every)
                _place(counted, options, st["value"], st.get("label"), st["count"], st["known"], st.get("active"))
        named = sum(st["count"] for st in sc["stages"] if not st["known"])
        counted.unnamed = max(0, (sc.get("unknown_total") or 0) - named)
        out.append(counted)
    return out


@rule(
    "LC-UNAPPROVED-VALUES",
    title="Records hold values the picklist does not allow (rogue values)",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 §4a Rogue Stage Audit “Any new values found = governance issue”",
    recommendation="Map these records to approved values, then restrict the field to its defined values (picklist "
    "restriction / property options) so no new values appear.",
    needs=("fields", "counts"),
    detects="records whose lifecycle, status, type or stage value is none of its own field's options or pipeline "
    "stages (retired options are LC-DEPRECATED-STAGE-RECORDS)",
)
def _rogue_values(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for c in counted_fields(snap):
        total = sum(c.rogue.values()) + c.unnamed
        if not total:
            continue
        what = listing(c.rogue) if c.rogue else ""
        tail = ""
        if c.unnamed:
            tail = f" {snap.crm} does not name every such value without a deep audit"
            tail += (
                f" (some may sit in the field's hidden options: {listing(c.hidden_options, 4)})."
                if c.hidden_options
                else "."
            )
        records = c.kind if total == 1 else OBJECT_LABELS[c.kind]
        hits.append(
            r.hit(
                object=c.kind,
                field=c.name,
                domain=c.domain,
                values=list(c.rogue),
                counts=dict(c.rogue),
                count=total,
                evidence={"named": not c.unnamed, "field_label": c.label},
                message=f"{total:,} {records} {'holds' if total == 1 else 'hold'} {c.label} values that are not "
                "among the field's options" + (f": {what}." if what else ".") + tail,
            )
        )
    return hits


@rule(
    "LC-NULL-STAGE",
    title="Records with no stage or status",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §4a first business cycle check “records with no stage assigned”",
    recommendation="Give every record a stage and a status: backfill the empty ones and set both on creation "
    "(automation or a required field) so none is created without them.",
    needs=("fields", "counts"),
    detects="leads/contacts with an empty lifecycle or status field; deals/tickets with no stage",
)
def _null_stage(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for kind in PEOPLE:
        snap.not_read(snap.unreadable(kind, roles=("lifecycle", "status")))
    for kind, f in lifecycle_like(snap, PEOPLE, ("lifecycle", "status")):
        vc = snap.value_counts(kind, f["name"])
        if not vc or not vc["empty"]:
            continue
        total = vc["total"] or 0
        if not 0 < vc["empty"] <= total:
            raise NotEvaluated(f"the CRM's counts for {kind}.{f['name']} do not add up ({vc['empty']:,} of {total:,})")
        if f["role"] == "status" and kind == "contact" and vc["empty"] == total:
            continue  # a contact status nobody fills in is LC-NO-CONTACT-STATUS
        hits.append(
            r.hit(
                object=kind,
                field=f["name"],
                counts={"empty": vc["empty"], "total": total},
                count=vc["empty"],
                evidence={"role": f["role"], "share": round(vc["empty"] / total, 4)},
                message=f"{vc['empty']:,} of {total:,} {snap.crm} {OBJECT_LABELS[kind]} "
                f"({share_text(vc['empty'] / total)}) have no {f.get('label') or f['name']}.",
            )
        )
    for kind in ("deal", "ticket"):
        sc = snap.stage_counts(kind)
        if sc and sc.get("without_stage"):
            hits.append(
                r.hit(
                    object=kind,
                    field=snap.stage_field(kind) or "stage",
                    domain=SALES_PIPELINES if kind == "deal" else CUSTOMER_LIFECYCLE,
                    counts={"empty": sc["without_stage"], "total": sc["total"]},
                    count=sc["without_stage"],
                    message=f"{sc['without_stage']:,} of {sc['total']:,} {OBJECT_LABELS[kind]} have no stage.",
                )
            )
    return hits


@rule(
    "LC-DEPRECATED-STAGE-RECORDS",
    title="Records stuck in retired values",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §4a first business cycle check “records stuck in old stages”",
    recommendation="Move the records out of retired values into current stages; a retired value should hold no "
    "records.",
    needs=("fields", "counts"),
    detects="records in inactive picklist values (Salesforce), hidden options (HubSpot) or archived pipeline stages; "
    "low under retired_share_medium of the field's records, high from retired_share_high",
)
def _deprecated(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for c in counted_fields(snap):
        n = sum(c.retired.values())
        if not n:
            continue
        share = n / c.total if c.total else 0.0
        if not 0 <= share <= 1:
            raise NotEvaluated(f"the CRM's counts for {c.kind}.{c.name} do not add up ({n:,} retired of {c.total:,})")
        severity = (
            HIGH
            if share >= ctx.threshold("retired_share_high")
            else MEDIUM
            if share >= ctx.threshold("retired_share_medium")
            else LOW
        )
        hits.append(
            r.hit(
                object=c.kind,
                field=c.name,
                domain=c.domain,
                severity=severity,
                values=list(c.retired),
                counts=dict(c.retired),
                count=n,
                evidence={"share": round(share, 4), "total": c.total, "internal_values": dict(c.internal)},
                message=f"{n:,} of {c.total:,} {snap.crm} {OBJECT_LABELS[c.kind]} ({share_text(share)}) still hold "
                f"retired {c.label} values: " + ", ".join(f"“{k}” ({v:,})" for k, v in c.retired.items()) + ".",
            )
        )
    return hits


# ---- stage history (deep mode): skips and backward moves

OTHER = re.compile(r"^other$")  # HubSpot's catch-all lifecycle value: an exit, not a step of the funnel


@dataclass
class StageOrder:
    """An ordered stage sequence: the signed architecture's, a pipeline's or a picklist's.

    `ranks` holds the steps (value, lower case -> position; the values of one signed stage share a position);
    `exits` the closed and catch-all values, which a record may enter from any step (a deal is won or lost at
    any point) and which rank after every step (leaving one for a step is a move back)."""

    source: str  # in words: "the signed architecture (v3)", "pipeline “New Business”", "picklist order"
    ranks: dict[str, int]
    names: list[str]  # position -> stage name, for the skipped stages
    exits: set[str]
    labels: dict[str, str]  # value (lower) -> label
    active: list[bool] = field(default_factory=list)  # position -> still in use
    pipeline_id: str | None = None

    def rank(self, value: str) -> float | None:
        v = value.lower()
        if v in self.exits:
            return math.inf
        return self.ranks.get(v)

    def label(self, value: str) -> str:
        return self.labels.get(value.lower(), value)

    def moves(self, path: list[str]) -> tuple[list[tuple[str, str, list[str]]], list[tuple[str, str]]]:
        """(skips with the stages jumped over, backward moves) along one record's path. Values outside the
        sequence (rogue, unsigned) are not judged."""
        skips, backs = [], []
        for a, b in zip(path, path[1:], strict=False):
            ra, rb = self.rank(a), self.rank(b)
            if ra is None or rb is None or ra == rb:
                continue
            if rb < ra:
                backs.append((a, b))
            elif rb != math.inf and rb > ra + 1:
                between = [self.names[i] for i in range(int(ra) + 1, int(rb)) if self.active[i]]
                if between:
                    skips.append((a, b, between))
        return skips, backs


def _order_from_values(source: str, values: list[dict], closed: Callable[[dict], bool], pipeline_id=None):
    steps = [v for v in sorted(values, key=lambda v: v.get("order", 0)) if not closed(v)]
    return StageOrder(
        source,
        {str(v.get("value", v.get("id"))).lower(): i for i, v in enumerate(steps)},
        [shown(v) for v in steps],
        {str(v.get("value", v.get("id"))).lower() for v in values if closed(v)},
        {str(v.get("value", v.get("id"))).lower(): shown(v) for v in values},
        [v.get("active", True) is not False for v in steps],
        pipeline_id,
    )


def stage_orders(snap: Snapshot, ctx: Context, kind: str, field_name: str) -> list[StageOrder]:
    """The sequences a field's history is judged against: the signed architecture's when it maps stages to this
    field (or, for deals, to pipelines), else the CRM's own order (pipeline stage order for the deal stage,
    picklist order otherwise)."""
    signed = []
    for sequence in signed_architecture(snap, ctx).sequences():
        place = sequence[0].place
        if place.kind != kind or (place.pipeline_id is None and place.field.lower() != field_name.lower()):
            continue
        ranks, exits, labels, names = {}, set(), {}, []
        for placed in sequence:
            values = []
            for v in placed.stage.get("crm_values") or []:
                option = place.option(str(v))
                keys = list(dict.fromkeys([str(v).lower()] + ([option.value.lower()] if option else [])))
                for key in keys:
                    labels[key] = option.label if option else str(v)
                values += keys
            if OUTCOME.search(norm(placed.name)):
                exits.update(values)
                continue
            for key in values:
                ranks[key] = len(names)
            names.append(placed.name or values[0])
        signed.append(
            StageOrder(
                f"the signed architecture (v{ctx.signed_version})",
                ranks,
                names,
                exits,
                labels,
                [True] * len(names),
                place.pipeline_id,
            )
        )
    if signed:
        return signed
    stage_field = snap.stage_field(kind)
    if kind in ("deal", "ticket") and stage_field and stage_field.lower() == field_name.lower():
        return [
            _order_from_values(
                f"the stage order of pipeline “{p['label']}”",
                p["stages"],
                lambda s: bool(s.get("is_closed")),
                p["id"],
            )
            for p in snap.active_pipelines(kind)
        ]
    f = snap.field(kind, field_name)
    if f is None or not f.get("values"):
        return []
    # working-state values inside a lifecycle field (LC-STATUS-MIX) are no funnel step: neither skipped nor judged
    status = [v for v in f["values"] if f.get("role") == "lifecycle" and matches(STATUS_WORDS, v)]
    order = _order_from_values(
        f"the picklist order of {f['name']}",
        [v for v in f["values"] if v not in status],
        lambda v: matches(OUTCOME, v) or any(OTHER.search(t) for t in texts(v)),
    )
    order.labels.update({str(v["value"]).lower(): shown(v) for v in status})
    return [order]


def _order_for(orders: list[StageOrder], path: list[str], pipeline: str | None) -> StageOrder | None:
    """The sequence one record is judged against: its pipeline's when the CRM said which (HubSpot deals); else the
    one knowing most of its values, and of those the one its path fits best (Salesforce's history does not say
    which record type an opportunity had)."""
    if not orders:
        return None
    if pipeline is not None:
        mine = [o for o in orders if o.pipeline_id == pipeline]
        if mine:
            return mine[0]

    def fit(o: StageOrder) -> tuple[int, int]:
        known = sum(1 for v in path if o.rank(v) is not None)
        skips, backs = o.moves(path)
        return (-known, len(skips) + len(backs))

    return min(orders, key=fit)


@dataclass
class HistoryMoves:
    kind: str
    field: str
    entry: dict
    sources: set[str] = field(default_factory=set)
    records: int = 0  # records with at least one such move
    moves: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "A → B" -> moves
    skipped: dict[str, int] = field(default_factory=dict)  # stage jumped over -> times


def history_moves(snap: Snapshot, ctx: Context, backward: bool) -> list[HistoryMoves]:
    out = []
    for entry in (snap.data.get("history") or {}).values():
        if not entry.get("available", True):
            continue
        kind, name = entry["object"], entry["field"]
        orders = stage_orders(snap, ctx, kind, name)
        found = HistoryMoves(kind, name, entry)
        for p in entry.get("paths") or []:
            order = _order_for(orders, p["values"], p.get("pipeline"))
            if order is None:
                continue
            skips, backs = order.moves(p["values"])
            moves = backs if backward else skips
            if not moves:
                continue
            n = p["records"]
            found.sources.add(order.source)
            found.records += n
            found.moves += n * len(moves)
            for move in moves:
                text = f"{order.label(move[0])} → {order.label(move[1])}"
                found.transitions[text] = found.transitions.get(text, 0) + n
                for stage in move[2] if len(move) > 2 else ():
                    found.skipped[stage] = found.skipped.get(stage, 0) + n
        if found.records:
            out.append(found)
    return out


def _history_hits(r: Rule, snap: Snapshot, ctx: Context, backward: bool) -> list[Hit]:
    hits = []
    for m in history_moves(snap, ctx, backward):
        e = m.entry
        ranked = dict(sorted(m.transitions.items(), key=lambda kv: (-kv[1], kv[0])))
        days = (datetime.fromisoformat(e["end"]) - datetime.fromisoformat(e["start"])).days
        read = f"{e['records_read']:,} {OBJECT_LABELS[m.kind]} read" + (
            f" (a sample: {e['note']})" if e.get("sampled") else ""
        )
        against = " and ".join(sorted(m.sources))
        if backward:
            what = (
                f"moved back to an earlier {m.field} stage ({plural(m.moves, 'backward move')}); the history does "
                "not show whether a stage reason was recorded"
            )
        else:
            what = f"jumped over at least one {m.field} stage ({plural(m.moves, 'skip')})"
            if m.skipped:
                top = sorted(m.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
                what += "; most skipped: " + ", ".join(f"“{s}” ({n:,})" for s, n in top[:4])
        hits.append(
            r.hit(
                object=m.kind,
                field=m.field,
                domain=SALES_PIPELINES if m.kind == "deal" else r.domain,
                values=list(ranked)[:10],
                counts=ranked,
                count=m.records,
                evidence={
                    "records": m.records,
                    "moves": m.moves,
                    "skipped_stages": dict(sorted(m.skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
                    "records_read": e["records_read"],
                    "sampled": bool(e.get("sampled")),
                    "order": sorted(m.sources),
                    "window_days": days,
                    "source": e.get("source", ""),
                },
                message=f"{m.records:,} of {read} {what}, in the last {days} days, judged against {against}: "
                + ", ".join(f"{t} ({n:,})" for t, n in list(ranked.items())[:6])
                + ".",
            )
        )
    return hits


@rule(
    "LC-STAGE-SKIPS",
    title="Stages being skipped",
    domain=LEAD_LIFECYCLE,
    severity=LOW,
    seed="S1 §4a first business cycle check “stages being skipped”; end-user guidance “don't skip stages”",
    recommendation="Don't skip stages: find out why records jump over these stages (missing automation, a stage "
    "nobody owns, reps updating late) and either enforce the entry criteria or take the stage out of the "
    "architecture.",
    needs=("deep", "history"),
    detects="(deep mode) records whose stage history jumps over one or more stages of the signed (else the "
    "pipeline's or picklist's) stage order; closing a deal from any stage is not a skip",
)
def _stage_skips(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _history_hits(r, snap, ctx, backward=False)


@rule(
    "LC-BACKWARD-MOVES",
    title="Backward stage moves",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §2d “Lifecycle cannot move backward accidentally”; S3 12.1 “require a stage reason when moving backward”",
    recommendation="Lifecycle cannot move backward accidentally: make the stage fields forward-only, and require a "
    "stage reason when moving backward.",
    needs=("deep", "history"),
    detects="(deep mode) records whose stage history moves to an earlier stage of the signed (else the "
    "pipeline's or picklist's) stage order, or out of a closed stage",
)
def _backward_moves(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _history_hits(r, snap, ctx, backward=True)
