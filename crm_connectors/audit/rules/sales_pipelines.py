"""DOMAIN.md 8.2, sales pipelines: too many of them, stages that are time-based, task-level, internal signals
or customer success, platform defaults, probabilities off the spec, forecast categories."""

from __future__ import annotations

import math
from collections.abc import Callable

from .flagged import per_pipeline
from .lexicon import (
    CS_WORDS,
    DEFAULT_STAGES,
    FORECAST_CATEGORIES,
    HIGH,
    INFO,
    LOW,
    MAX_PIPELINES,
    MEDIUM,
    SALES_PIPELINES,
    SIGNAL_PROPOSED,
    SIGNAL_SEED,
    SPEC_PROBABILITIES,
    TASK_LEVEL,
    TIME_BASED,
    listing,
    matches,
    norm,
    squash,
)
from .registry import Hit, Rule, rule
from .snapshot import Context, Snapshot, forecast_field


def _stage_rule(r: Rule, snap: Snapshot, test: Callable[[dict], bool], what: str) -> list[Hit]:
    return per_pipeline(
        r, snap, test, lambda p, labels: f"{snap.crm} pipeline “{p['label']}” has {what}: {listing(labels)}."
    )


@rule(
    "PIPE-TOO-MANY",
    title="More than three deal pipelines",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 Current State Audit §2 / Track B “too many pipelines (consolidate to 3 max)”",
    recommendation="Consolidate to three pipelines at most: New Business, Renewal, Expansion.",
    needs=("pipelines",),
    detects="more than 3 active deal pipelines (HubSpot pipelines; Salesforce opportunity record types)",
)
def _too_many(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    active = snap.active_pipelines("deal")
    if len(active) <= MAX_PIPELINES:
        return []
    return [
        r.hit(
            object="deal",
            field="pipelines",
            values=[p["label"] for p in active],
            count=len(active),
            message=f"{snap.crm} has {len(active)} active deal pipelines ({listing(p['label'] for p in active)}); "
            f"the architecture allows {MAX_PIPELINES}.",
        )
    ]


@rule(
    "PIPE-TIME-BASED-STAGES",
    title="Time-based renewal stages",
    domain=SALES_PIPELINES,
    severity=HIGH,
    seed="S1 Current State Audit §2 and Common Gotchas (120/90/60/30-day stages)",
    recommendation="Replace with commercial progression stages reflecting customer intent: Open Renewal, Review, "
    "Proposal, Negotiation, Closed Won/Lost.",
    needs=("pipelines",),
    detects="stage labels such as ‘90 Days Out’ or ‘Renewal due in 120 days’",
)
def _time_based(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _stage_rule(r, snap, lambda s: matches(TIME_BASED, s), "countdown stages")


@rule(
    "PIPE-TASK-LEVEL-STAGES",
    title="Task-level stages (50% / 75% complete)",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 Current State Audit §2 “task-level stages (50%/75%/90% complete)”",
    recommendation="Stages mark buyer milestones, not task completion: move the checklist to tasks and keep one "
    "stage per milestone.",
    needs=("pipelines",),
    detects="a percentage or ‘N complete’ in a stage label (the probability attribute is not read)",
)
def _task_level(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _stage_rule(r, snap, lambda s: bool(TASK_LEVEL.search(norm(s["label"]))), "task-level stages")


@rule(
    "PIPE-INTERNAL-SIGNAL-STAGES",
    title="Internal signal stages (Trending Up / Down)",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 Current State Audit §2 “internal signal stages (Trending Up/Down)”; ‘at risk’, ‘upside’ proposed "
    "(DOMAIN.md 8.8)",
    recommendation="Track deal health in a separate field (forecast category, risk flag), not as a stage.",
    needs=("pipelines",),
    detects="stage labels Trending Up/Down (medium) or At Risk / Upside / Healthy (low)",
)
def _signals(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = _stage_rule(r, snap, lambda s: matches(SIGNAL_SEED, s), "internal signal stages")
    seen = {h.key for h in hits}
    for h in _stage_rule(r, snap, lambda s: matches(SIGNAL_PROPOSED, s), "stages that look like internal signals"):
        if h.key not in seen:
            h.severity = LOW
            hits.append(h)
    return hits


@rule(
    "PIPE-CS-STAGES-IN-SALES",
    title="Customer-success stages inside a sales pipeline",
    domain=SALES_PIPELINES,
    severity=HIGH,
    seed="S1 Current State Audit §3 and Common Gotchas",
    recommendation="Use a dedicated CS pipeline (Tickets in HubSpot, a custom object in Salesforce) to separate "
    "customer health from revenue forecasting.",
    needs=("pipelines",),
    detects="onboarding / implementation / go-live / adoption stages in a deal pipeline",
)
def _cs_in_sales(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _stage_rule(r, snap, lambda s: matches(CS_WORDS, s), "customer-success stages")


@rule(
    "PIPE-DEFAULT-STAGES",
    title="Platform default stages still in use",
    domain=SALES_PIPELINES,
    severity=LOW,
    seed="S1 Common Gotchas “Customize stages to reflect the company's real sales/CS motion”",
    recommendation="Customize the stages to the company's real sales motion, with entry and exit criteria for each.",
    needs=("pipelines",),
    detects="a pipeline whose open stage labels are mostly the platform's defaults (Prospecting…; Appointment "
    "Scheduled…); relabelled default stages are the client's own",
)
def _default_stages(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    defaults = DEFAULT_STAGES.get(snap.platform) or set().union(*DEFAULT_STAGES.values())
    needed = max(3, math.ceil(ctx.threshold("default_stage_share") * len(defaults)))
    plain = {squash(d) for d in defaults}
    hits = []
    for p in snap.active_pipelines("deal"):
        found = [s["label"] for s in p["stages"] if squash(s["label"]) in plain]
        if len(found) >= needed:
            hits.append(
                r.hit(
                    object="deal",
                    field=p["label"],
                    key=f"pipeline:{p['id']}",
                    values=found,
                    count=len(found),
                    message=f"Pipeline “{p['label']}” still uses {len(found)} of the {len(defaults)} {snap.crm} "
                    f"default stages ({listing(found)}).",
                )
            )
    return hits


@rule(
    "PIPE-PROBABILITY-SPEC",
    title="Stage probabilities missing or off the 25/50/75/90/100 spec",
    domain=SALES_PIPELINES,
    severity=LOW,
    seed="S1 §2a/§2d “correct probability weightings” (25/50/75/90/100%)",
    recommendation="Set open-stage probabilities to the architecture's weightings (25, 50, 75, 90; 100 for Closed "
    "Won), increasing along the pipeline.",
    needs=("pipelines",),
    detects="open stages with no probability or one outside 25/50/75/90/100; decreasing order (info)",
)
def _probabilities(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for p in snap.active_pipelines("deal"):
        opens = [s for s in p["stages"] if not s.get("is_closed")]
        off = {}
        for s in opens:
            prob = s.get("probability")
            if prob is None or not any(abs(prob - x) < 0.005 for x in SPEC_PROBABILITIES):
                off[s["label"]] = None if prob is None else round(prob * 100)
        probs = [s["probability"] for s in opens if s.get("probability") is not None]
        decreasing = any(b < a for a, b in zip(probs, probs[1:], strict=False))
        if not off and not decreasing:
            continue
        text = ", ".join(f"{k} {'none' if v is None else f'{v}%'}" for k, v in off.items())
        hits.append(
            r.hit(
                object="deal",
                field=p["label"],
                key=f"pipeline:{p['id']}",
                severity=LOW if off else INFO,
                values=list(off),
                counts={k: v for k, v in off.items() if v is not None},
                count=len(off),
                evidence={"decreasing": decreasing},
                message=(f"Pipeline “{p['label']}” has probabilities off the spec: {text}." if off else "")
                + (f" Probabilities in “{p['label']}” decrease along the pipeline." if decreasing else ""),
            )
        )
    for h in hits:
        h.message = h.message.strip()
    return hits


@rule(
    "PIPE-FORECAST-CATEGORY",
    title="Deals without a valid forecast category",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S2 term “Forecast Category” (Commit, Best Case, Pipeline, Omitted)",
    recommendation="Give every open deal a forecast category from the standard set: Commit, Best Case, Pipeline, "
    "Omitted.",
    needs=("fields", "counts"),
    detects="deals whose forecast category is empty or outside Commit/Best Case/Pipeline/Omitted (and Closed)",
)
def _forecast(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    f = forecast_field(snap)
    vc = snap.value_counts("deal", f["name"]) if f else None
    if not vc:
        return []
    bad = {
        v["label"] or v["value"]: v["count"]
        for v in vc["values"]
        if v["count"]
        and norm(v["label"] or v["value"]) not in FORECAST_CATEGORIES
        and norm(v["value"]) not in FORECAST_CATEGORIES
    }
    if vc["empty"]:
        bad["(empty)"] = vc["empty"]
    if not bad:
        return []
    return [
        r.hit(
            object="deal",
            field=f["name"],
            values=list(bad),
            counts=bad,
            count=sum(bad.values()),
            message=f"{sum(bad.values()):,} deals have no valid forecast category: {listing(bad)}.",
        )
    ]
