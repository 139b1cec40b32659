"""DOMAIN.md 8.3, the customer lifecycle after Closed Won: missing, or fragmented across objects."""

from __future__ import annotations

from ... import vocabulary
from .lexicon import CS_WORDS, CUSTOMER_LIFECYCLE, LOW, MEDIUM, OBJECT_LABELS, listing, matches, shown
from .registry import Hit, NotEvaluated, Rule, rule
from .snapshot import Context, Snapshot


def _cs_places(snap: Snapshot) -> dict[str, list[str]]:
    """Where post-sale (customer-success) stages live: object -> the labels found."""
    found: dict[str, list[str]] = {}
    for kind in ("ticket", "deal"):
        for p in snap.active_pipelines(kind):
            labels = [s["label"] for s in p["stages"] if matches(CS_WORDS, s)]
            if labels:
                found.setdefault(kind, []).extend(f"{p['label']}: {x}" for x in labels)
    for kind in ("contact", "company", "lead"):
        for f in snap.role_fields(kind, "lifecycle", "status"):
            labels = [shown(v) for v in f["values"] if matches(CS_WORDS, v)]
            if labels:
                found.setdefault(kind, []).extend(f"{f['name']}: {x}" for x in labels)
    for obj in snap.data.get("custom_objects") or []:
        for f in obj.get("fields") or []:
            labels = [shown(v) for v in f.get("values") or [] if matches(CS_WORDS, v)]
            if labels:
                found.setdefault(obj["name"], []).extend(f"{f['name']}: {x}" for x in labels)
    return found


def place_label(place: str) -> str:
    """'ticket' -> 'tickets'; a custom object keeps its API name."""
    return OBJECT_LABELS.get(place, place)


def _other_stage_places(snap: Snapshot) -> list[str]:
    """Stage-like places that might track customers under names GTM Ops does not recognise: custom objects with
    stage picklists, and ticket pipelines beyond the support defaults (New, Waiting on contact…)."""
    places = []
    for obj in snap.data.get("custom_objects") or []:
        fields = [f for f in obj.get("fields") or [] if f.get("values")]
        if fields:
            places.append(f"{obj.get('label') or obj['name']} ({', '.join(f['name'] for f in fields)})")
    for p in snap.active_pipelines("ticket"):
        if any(vocabulary.words(st["label"]) not in vocabulary.TICKET_SUPPORT_STAGES for st in p["stages"]):
            places.append(f"ticket pipeline “{p['label']}”")
    return places


@rule(
    "CUST-NO-LIFECYCLE",
    title="No customer lifecycle after Closed Won",
    domain=CUSTOMER_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 Current State Audit §3 “no defined customer lifecycle stages at all”",
    recommendation="Define the customer lifecycle (Pre-Onboarding, Onboarding, Implementation, Early Adoption, "
    "Mature Adoption) in a dedicated CS pipeline: Tickets in HubSpot, a custom object in Salesforce.",
    needs=("fields", "pipelines"),
    detects="no post-sale stages in a ticket/CS pipeline, a lifecycle field or a custom object (CS stages inside deal "
    "pipelines do not count); low when a custom object or ticket pipeline has stages under other names",
)
def _no_customer_lifecycle(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    places = _cs_places(snap)
    if set(places) - {"deal"}:
        return []
    if any(e.get("step") == "custom objects" for e in snap.data.get("errors") or []):
        raise NotEvaluated(
            f"not evaluated: {snap.crm}'s custom objects could not be read, and a customer lifecycle may live there"
        )
    if (snap.data.get("objects") or {}).get("ticket", {}).get("readable") is False:
        # refused, not missing: the customer lifecycle may well be kept in a ticket pipeline
        raise NotEvaluated(f"not evaluated: {snap.crm}'s tickets are not readable by this user")
    in_deals = places.get("deal", [])
    others = _other_stage_places(snap)
    message = (
        f"{snap.crm} has no customer lifecycle: no pipeline, field or custom object tracks onboarding, "
        "implementation or adoption after Closed Won"
        + (f" (the only post-sale stages sit in deal pipelines: {listing(in_deals, 3)})." if in_deals else ".")
    )
    if others:
        # stages under names the vocabulary does not know: maybe the client's customer lifecycle, so advisory
        message += f" Check whether {listing(others, 3)} tracks it under other names."
    return [
        r.hit(
            object="ticket",
            field="",
            severity=LOW if others else r.severity,
            values=in_deals,
            count=len(in_deals),
            evidence={"other_stage_places": others},
            message=message,
        )
    ]


@rule(
    "CUST-FRAGMENTED",
    title="Post-sale tracking fragmented across objects",
    domain=CUSTOMER_LIFECYCLE,
    severity=LOW,
    seed="S1 Current State Audit §3 “fragmented tracking across multiple objects”",
    recommendation="Track the customer lifecycle in one place (a CS pipeline) and retire the other post-sale stages.",
    needs=("fields", "pipelines"),
    detects="post-sale stages on two or more objects (deals, tickets, contacts, companies)",
)
def _fragmented(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    places = _cs_places(snap)
    if len(places) < 2:
        return []
    return [
        r.hit(
            object=", ".join(sorted(places)),
            field="",
            values=[v for vals in places.values() for v in vals],
            counts={k: len(v) for k, v in places.items()},
            count=len(places),
            message=f"Post-sale stages live on {len(places)} objects: "
            + "; ".join(f"{place_label(k)} ({listing(v, 3)})" for k, v in sorted(places.items()))
            + ".",
        )
    ]
