"""DOMAIN.md 8.5, data quality and segmentation: missing minimum fields, next steps, stale and duplicate records,
stage definitions that differ across pipelines, finite concepts kept as free text, metrics that cannot be
segmented."""

from __future__ import annotations

import re

from .lead_lifecycle import closed_lookup
from .lexicon import (
    DATA_QUALITY,
    FINITE_CONCEPTS,
    HIGH,
    LOW,
    MEDIUM,
    OBJECT_LABELS,
    SEGMENT_CONCEPTS,
    norm,
    share_text,
    squash,
)
from .registry import Hit, NotEvaluated, Rule, require, rule
from .snapshot import Context, Snapshot, field_label, segment_fields, segment_objects


@rule(
    "DQ-MISSING-FIELDS",
    title="Records missing minimum fields",
    domain=DATA_QUALITY,
    severity=MEDIUM,
    seed="S2 Track B “missing fields”; S3 12.1 minimum viable completeness (company, name, role, email or phone, "
    "source, stage)",
    recommendation="Backfill the minimum field set and require it at the step where it becomes known; check "
    "completeness monthly.",
    needs=("data_quality",),
    detects="a required field empty on more than the threshold share of an object's records",
)
def _missing(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    limit = ctx.threshold("missing_field_share")
    # the minimum fields the data-quality reading could not read are judged by nobody: say so, judge the rest
    snap.not_read(snap.quality.get("unreadable") or [])
    per_kind: dict[str, dict[str, float]] = {}
    for m in snap.quality.get("missing", []):
        if m["total"] and not 0 <= m["missing"] <= m["total"]:
            raise NotEvaluated(f"the CRM's counts for {m['object']}.{m['field']} do not add up")
        if m["total"] and m["missing"] / m["total"] > limit:
            per_kind.setdefault(m["object"], {})[m["field"]] = m["missing"] / m["total"]
    hits = []
    for kind, shares in per_kind.items():
        hits.append(
            r.hit(
                object=kind,
                field=", ".join(shares),
                values=list(shares),
                counts={k: round(v * 1000) / 10 for k, v in shares.items()},
                count=len(shares),
                evidence={"threshold": limit, "unit": "percent of records"},
                message=f"{snap.crm} {OBJECT_LABELS[kind]} miss "
                + ", ".join(f"{k} on {share_text(v)}" for k, v in shares.items())
                + f" of records (threshold {share_text(limit)}).",
            )
        )
    return hits


@rule(
    "DQ-NO-NEXT-STEP",
    title="Open deals without a next step",
    domain=DATA_QUALITY,
    severity=MEDIUM,
    seed="S3 1.5 / 12.1 / 12.2 “next step and next-step date on every open deal”",
    recommendation="Require a next step (and its date) on every open deal; review the ones without in the weekly "
    "pipeline meeting.",
    needs=("data_quality", "pipelines", "counts"),
    detects="more than the threshold share of open deals have no next step",
)
def _next_step(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    missing = snap.quality.get("open_deals_without_next_step")
    sc = snap.stage_counts("deal")
    if missing is None:
        require(snap, snap.unreadable("deal", pattern=re.compile(r"next\s*step")))
    if missing is None or sc is None:
        return []
    states = closed_lookup(snap, "deal")
    open_deals = sum(
        s["count"] for s in sc["stages"] if states.get((s.get("pipeline_id"), s["value"].lower())) == "open"
    )
    if missing > open_deals:
        raise NotEvaluated(
            f"the CRM counts {missing:,} open deals without a next step but only {open_deals:,} open deals"
        )
    share = missing / open_deals if open_deals else 0.0
    limit = ctx.threshold("no_next_step_share")
    if not open_deals or share <= limit:
        return []
    return [
        r.hit(
            object="deal",
            field="next step",
            counts={"open": open_deals, "without_next_step": missing},
            count=missing,
            evidence={"share": round(share, 4), "threshold": limit},
            message=f"{missing:,} of {open_deals:,} open deals ({share_text(share)}) have no next step.",
        )
    ]


@rule(
    "DQ-STALE-RECORDS",
    title="Stale records",
    domain=DATA_QUALITY,
    severity=LOW,
    seed="S3 12.1 audit scoring “recency (days since last meaningful update)”",
    recommendation="Review stale records each quarter: update, archive or delete them; complete-but-stale is still "
    "a problem.",
    needs=("data_quality",),
    detects="more than the threshold share of an object's records untouched for more than stale_days",
)
def _stale(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    limit, days = ctx.threshold("stale_share"), snap.quality.get("stale_days") or ctx.threshold("stale_days")
    hits = []
    for s in snap.quality.get("stale", []):
        share = s["stale"] / s["total"] if s["total"] else 0.0
        if share > limit:
            hits.append(
                r.hit(
                    object=s["object"],
                    field="last modified",
                    counts={"stale": s["stale"], "total": s["total"]},
                    count=s["stale"],
                    evidence={"share": round(share, 4), "threshold": limit, "days": days},
                    message=f"{s['stale']:,} of {s['total']:,} {snap.crm} {OBJECT_LABELS[s['object']]} "
                    f"({share_text(share)}) were not updated in {days:g} days.",
                )
            )
    return hits


@rule(
    "DQ-DUPLICATE-ACCOUNTS",
    title="Duplicate accounts and contacts",
    domain=DATA_QUALITY,
    severity=HIGH,
    seed="S2 Track B “duplicate accounts”; S3 12.1 dedup keys (domain for accounts, email for contacts)",
    recommendation="Merge the duplicates (domain for companies, email for people) and turn on duplicate rules so "
    "new ones are caught on entry.",
    needs=("deep",),
    detects="(deep mode) people sharing an email, companies sharing a website domain",
)
def _duplicates(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for d in snap.quality.get("duplicates") or []:
        if d["groups"]:
            hits.append(
                r.hit(
                    object=d["object"],
                    field=d["key"],
                    counts={"groups": d["groups"], "records": d["records"], "scanned": d["scanned"]},
                    count=d["records"],
                    message=f"{d['records']:,} {OBJECT_LABELS[d['object']]} share their {d['key']} with another "
                    f"({d['groups']:,} groups among {d['scanned']:,} read).",
                )
            )
    return hits


@rule(
    "DQ-INCONSISTENT-STAGE-DEFS",
    title="Inconsistent stage definitions across pipelines",
    domain=DATA_QUALITY,
    severity=MEDIUM,
    seed="S2 Track B “inconsistent stage definitions”",
    recommendation="Give stages that share a name the same probability and closed/won flags, and one spelling.",
    needs=("pipelines",),
    detects="one stage name with different probability/closed flags in two pipelines, or near-duplicate names",
)
def _inconsistent(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    by_name: dict[str, list[tuple[dict, dict]]] = {}
    for p in snap.active_pipelines("deal"):
        for s in p["stages"]:
            by_name.setdefault(squash(s["label"]), []).append((p, s))
    hits = []
    for name, rows in sorted(by_name.items()):
        spellings = sorted({s["label"] for _, s in rows})
        shapes = {(s.get("probability"), bool(s.get("is_closed")), bool(s.get("is_won"))) for _, s in rows}
        if len(rows) < 2 or (len(shapes) == 1 and len(spellings) == 1):
            continue
        problems = []
        if len(shapes) > 1:
            problems.append("different probability or closed/won flags")
        if len(spellings) > 1:
            problems.append(f"different spellings ({', '.join(spellings)})")
        hits.append(
            r.hit(
                object="deal",
                field=spellings[0],
                key=f"stage:{name}",
                values=[f"{p['label']}: {s['label']}" for p, s in rows],
                counts={f"{p['label']}: {s['label']}": round((s.get("probability") or 0) * 100) for p, s in rows},
                count=len(rows),
                message=f"Stage “{spellings[0]}” is defined {len(rows)} ways across pipelines: "
                + " and ".join(problems)
                + ".",
            )
        )
    return hits


@rule(
    "DQ-FREE-TEXT-FINITE",
    title="Finite concepts stored as free text",
    domain=DATA_QUALITY,
    severity=LOW,
    seed="S3 12.1 “Use picklists for anything with a finite set” (lead source, industry, deal type, region)",
    recommendation="Turn these fields into picklists (dropdown properties) and map the existing text to the list.",
    detects="lead source, industry, deal type or region fields that are text, not picklists",
)
def _free_text(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for kind in ("lead", "contact", "company", "deal"):
        for f in snap.fields(kind):
            if f["type"] not in ("string", "text"):
                continue
            label = norm(f.get("label"))
            concept = next((c for c, pattern in FINITE_CONCEPTS.items() if pattern.search(label)), None)
            if concept:
                hits.append(
                    r.hit(
                        object=kind,
                        field=f["name"],
                        values=[concept],
                        count=1,
                        message=f"{field_label(f)} on {snap.crm} {OBJECT_LABELS[kind]} is free text; {concept} "
                        "is a finite set.",
                    )
                )
    return hits


@rule(
    "DATA-NO-SEGMENT-FIELDS",
    title="Metrics cannot be segmented",
    domain=DATA_QUALITY,
    severity=LOW,
    seed="S1 Common Gotchas “Break lifecycle metrics by segment, region, and individual contributor” (DOMAIN.md T6)",
    recommendation="Give leads and deals a segment (industry or company size), a region (territory or country) and "
    "an owner, as picklists filled in when the record is created (assignment rules, required fields), so every "
    "lifecycle metric can be broken down by them.",
    needs=("fields", "data_quality"),
    detects="leads (HubSpot contacts) or deals with no segment, region or owner field (by name or label: Segment, "
    "Industry, Employees, Company size; Region, Territory, Country; Owner), or whose best such field is filled on "
    "fewer than segment_fill_min of records",
)
def _no_segment_fields(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    limit = ctx.threshold("segment_fill_min")
    fill = {(row["object"], row["field"].lower()): row for row in snap.data.get("segment_fill") or []}
    hits = []
    for kind in segment_objects(snap):
        records = OBJECT_LABELS[kind]
        absent: list[str] = []
        sparse: dict[str, tuple[dict, float]] = {}  # concept -> (its best-filled field, share filled)
        for concept, fields in segment_fields(snap, kind).items():
            # a field describe lists but the CRM refused to count is judged by nobody: said, never called absent
            hidden = snap.unreadable(kind, pattern=SEGMENT_CONCEPTS[concept])
            snap.not_read(hidden)
            if not fields:
                if not hidden:
                    absent.append(concept)
                continue
            read = [(f, fill[(kind, f["name"].lower())]) for f in fields if (kind, f["name"].lower()) in fill]
            shares = []
            for f, row in read:
                if not 0 <= row["missing"] <= row["total"]:
                    raise NotEvaluated(f"the CRM's counts for {kind}.{f['name']} do not add up")
                if row["total"]:
                    shares.append((f, 1 - row["missing"] / row["total"]))
            if shares:
                best = max(shares, key=lambda fs: fs[1])
                if best[1] < limit:
                    sparse[concept] = best
        if not absent and not sparse:
            continue
        problems = [f"no {' or '.join(absent)} field is visible to this user"] if absent else []
        problems += [
            f"{field_label(f)} is filled on {share_text(share)} of {records} ({share_text(limit)} needed)"
            for f, share in sparse.values()
        ]
        counts = {concept: 0.0 for concept in absent}
        counts.update({concept: round(share * 1000) / 10 for concept, (_, share) in sparse.items()})
        hits.append(
            r.hit(
                object=kind,
                field=", ".join([*absent, *(f["name"] for f, _ in sparse.values())]),
                values=list(counts),
                counts=counts,
                count=len(counts),
                evidence={
                    "absent": absent,
                    "filled": {f["name"]: round(share, 4) for f, share in sparse.values()},
                    "threshold": limit,
                    "unit": "percent of records filled",
                },
                message=f"{snap.crm} {records} cannot be broken down by {' and '.join(counts)}: "
                + "; ".join(problems)
                + ".",
            )
        )
    return hits
