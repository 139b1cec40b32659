"""Drift from the signed stage architecture: values it does not allow, signed stages missing or renamed in the
CRM, and what is new since the last audit."""

from __future__ import annotations

from dataclasses import dataclass

from ... import mapping
from .lexicon import DRIFT, HIGH, MEDIUM, OBJECT_LABELS, listing, norm, plural, shown
from .registry import Hit, Rule, rule
from .snapshot import Context, Snapshot, field_label, object_kind, signed_architecture


@dataclass
class PlaceCounts:
    """Records per value of one signed place, as the audit counted them."""

    counts: dict[str, int]  # value (lower case) -> records
    spelled: dict[str, str]  # value (lower case) -> as the records hold it
    unnamed: int = 0  # records in values the CRM did not name (HubSpot without deep)


def place_counts(snap: Snapshot, place: mapping.Place) -> PlaceCounts:
    counts: dict[str, int] = {}
    spelled: dict[str, str] = {}

    def add(value: str, n: int) -> None:
        counts[value.lower()] = counts.get(value.lower(), 0) + n
        spelled.setdefault(value.lower(), value)

    if place.role == "stage":
        sc = snap.stage_counts(place.kind) or {"stages": []}
        for st in sc["stages"]:
            if place.holds(st["value"], st.get("pipeline_id")):
                add(st["value"], st["count"])
        if place.pipeline_id is not None:
            return PlaceCounts(counts, spelled)
        unnamed = (sc.get("unknown_total") or 0) - sum(st["count"] for st in sc["stages"] if not st["known"])
        return PlaceCounts(counts, spelled, max(0, unnamed))
    vc = snap.value_counts(place.kind, place.field) or {"values": []}
    for v in vc["values"]:
        add(v["value"], v["count"])
    unnamed = (vc.get("unknown_total") or 0) - sum(v["count"] for v in vc["values"] if not v["known"])
    return PlaceCounts(counts, spelled, max(0, unnamed))


def _signed_places(snap: Snapshot, ctx: Context) -> list[tuple[mapping.Place, list[mapping.Placed]]]:
    return list(signed_architecture(snap, ctx).places().values())


@rule(
    "DRIFT-UNAPPROVED-VALUES",
    title="Values in the CRM the signed architecture does not allow",
    domain=DRIFT,
    severity=HIGH,
    seed="S1 §4a Rogue Stage Audit “Any new values found = governance issue”; §2d “CRM configuration matches the "
    "approved lifecycle architecture” (catalogue LC-UNAPPROVED-VALUES, PIPE-CONFIG-DRIFT)",
    recommendation="Remove the extra values from the CRM (after moving their records to signed stages), or add them "
    "to the architecture and have it signed again.",
    needs=("fields", "pipelines", "counts", "signed"),
    detects="picklist options or values held by records, on a field the signed version maps, that it does not list",
)
def _drift_unapproved(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for place, placed in _signed_places(snap, ctx):
        judged = mapping.Judged(place, frozenset(mapping.norm(v) for p in placed for v in p.values))
        counted = place_counts(snap, place)
        extra: dict[str, int] = {}
        for o in place.options:
            # a pipeline's lost exit is where records leave with a drop-off reason, not a stage to sign (as in
            # Judged.rogue): a signed pipeline keeps it, and the spec keeps it beside the signed stages
            if o.active and not o.lost and not judged.allows(o.value):
                extra[o.label or o.value] = counted.counts.get(o.value.lower(), 0)
        for value, n in counted.counts.items():
            if n and place.option(value) is None and not judged.allows(value):
                name = counted.spelled.get(value, value)
                extra[name] = extra.get(name, 0) + n
        if counted.unnamed:
            extra["(values not named without a deep audit)"] = counted.unnamed
        if extra:
            records = sum(extra.values())
            name = place.name if place.pipeline_id else place.field
            hits.append(
                r.hit(
                    object=place.kind,
                    field=name,
                    key=_place_key(place),
                    values=list(extra),
                    counts=extra,
                    count=records,
                    evidence={"signed_version": ctx.signed_version, "allowed": sorted(judged.signed)},
                    message=f"{snap.crm} {OBJECT_LABELS[place.kind]} {name} has {plural(len(extra), 'value')} the "
                    f"signed architecture (v{ctx.signed_version}) does not allow: {listing(extra)}; {records:,} "
                    "records hold them.",
                )
            )
    return hits


def _place_key(place: mapping.Place) -> str:
    """The finding key of a place, as drift findings have always been keyed (a pipeline by id, a field by name)."""
    return f"pipeline:{place.pipeline_id}" if place.pipeline_id else f"field:{place.field.lower()}"


@rule(
    "DRIFT-MISSING-STAGES",
    title="Signed stages missing from the CRM",
    domain=DRIFT,
    severity=HIGH,
    seed="S1 §2d “CRM configuration matches the approved lifecycle architecture” (catalogue PIPE-CONFIG-DRIFT)",
    recommendation="Create the missing values in the CRM exactly as signed (or correct the stage's CRM mapping and "
    "have the architecture signed again).",
    needs=("fields", "pipelines", "signed"),
    detects="signed stages whose CRM value, field, pipeline or object does not exist",
)
def _drift_missing(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    arch = signed_architecture(snap, ctx)
    for place, placed in arch.places().values():
        missing = {}
        for p in placed:
            for v in p.stage.get("crm_values") or []:
                if place.option(str(v)) is None:
                    missing[str(v)] = p.name
        if missing:
            name = place.name if place.pipeline_id else place.field
            hits.append(
                r.hit(
                    object=place.kind,
                    field=name,
                    key=_place_key(place),
                    values=list(missing),
                    evidence={"stages": missing, "signed_version": ctx.signed_version},
                    count=len(missing),
                    message=f"{plural(len(missing), 'signed value')} of v{ctx.signed_version} "
                    f"{'is' if len(missing) == 1 else 'are'} missing from {snap.crm} {name}: "
                    + ", ".join(f"“{v}” ({stage})" for v, stage in missing.items())
                    + ".",
                )
            )
    broken: dict[tuple[str, str], list[mapping.Unplaced]] = {}
    for u in arch.unplaced:
        broken.setdefault((norm(u.stage.get("crm_object")), norm(u.stage.get("crm_field"))), []).append(u)
    for (crm_object, crm_field), unplaced in broken.items():
        first = unplaced[0].stage
        kind = object_kind(first.get("crm_object", ""))
        if kind and any(norm(row["field"]) == crm_field for row in snap.unreadable(kind)):
            # the field exists but this user cannot read it: the stages are not judged, never called missing
            snap.not_read(row for row in snap.unreadable(kind) if norm(row["field"]) == crm_field)
            continue
        reason = unplaced[0].reason
        if unplaced[0].missing_field and kind:
            reason = f"{snap.crm} {OBJECT_LABELS[kind]} have no field or pipeline “{first.get('crm_field')}”"
        hits.append(
            r.hit(
                object=kind or crm_object or "?",
                field=first.get("crm_field", ""),
                key=f"mapping:{crm_object}:{crm_field}",
                values=[u.name for u in unplaced],
                count=len(unplaced),
                evidence={"signed_version": ctx.signed_version},
                message=f"{reason}: the signed stages {listing(u.name for u in unplaced)} have nowhere to live.",
            )
        )
    return hits


@rule(
    "DRIFT-RENAMED-STAGES",
    title="Signed stages renamed in the CRM",
    domain=DRIFT,
    severity=MEDIUM,
    seed="S1 §2d “CRM configuration matches the approved lifecycle architecture” (catalogue PIPE-CONFIG-DRIFT: "
    "renamed stages)",
    recommendation="Restore the signed label in the CRM, or have the new name signed: reports and training use the "
    "signed names.",
    needs=("fields", "pipelines", "signed"),
    detects="a signed value whose CRM label changed since the first audit after sign-off (the signed mapping "
    "itself is never a rename)",
)
def _drift_renamed(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if ctx.baseline is None:
        return []
    before = {place.key: place for place, _ in _signed_places(ctx.baseline, ctx)}
    hits = []
    for place, placed in _signed_places(snap, ctx):
        reference = {o.value.lower(): o.label for o in before[place.key].options} if place.key in before else {}
        renamed: dict[str, dict[str, str]] = {}
        for p in placed:
            for v in p.stage.get("crm_values") or []:
                option = next((o for o in place.options if o.value.lower() == str(v).lower()), None)
                if option is None:
                    continue  # missing, or signed by label: DRIFT-MISSING-STAGES tells
                # only a label that changed after sign-off is a rename: the signed mapping itself ("Early Adoption"
                # lives in the value labelled "Customer") is what the client approved, whatever the names
                was = reference.get(str(v).lower())
                if was is not None and was != option.label:
                    renamed[str(v)] = {"stage": p.name, "was": was, "now": option.label}
        if renamed:
            name = place.name if place.pipeline_id else place.field
            hits.append(
                r.hit(
                    object=place.kind,
                    field=name,
                    key=_place_key(place),
                    values=list(renamed),
                    evidence={"renamed": renamed, "signed_version": ctx.signed_version},
                    count=len(renamed),
                    message=f"{plural(len(renamed), 'signed stage')} renamed in {snap.crm} {name}: "
                    + ", ".join(f"“{x['was']}” is now “{x['now']}” ({v})" for v, x in renamed.items())
                    + ".",
                )
            )
    return hits


@rule(
    "DRIFT-NEW-SINCE-LAST-AUDIT",
    title="New pipelines, stages or values since the last audit",
    domain=DRIFT,
    severity=MEDIUM,
    seed="S1 §4a Rogue Stage Audit “any new pipeline/stage since last snapshot”",
    recommendation="Check each new value against the architecture: approve it (and record the decision) or remove it.",
    needs=("fields", "pipelines", "previous"),
    detects="picklist values, pipelines and pipeline stages that the previous audit's snapshot did not have",
)
def _new_since(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    before = ctx.previous
    if before is None or before.platform != snap.platform or not before.has("fields"):
        return []
    hits = []
    for kind in ("lead", "contact", "company", "deal", "ticket"):
        for f in snap.role_fields(kind):
            old = before.field(kind, f["name"])
            if old is None:
                continue
            known = {v["value"].lower() for v in old.get("values", [])}
            new = [shown(v) for v in f["values"] if v["value"].lower() not in known]
            if new:
                hits.append(
                    r.hit(
                        object=kind,
                        field=f["name"],
                        values=new,
                        count=len(new),
                        message=f"{plural(len(new), 'new value')} in {field_label(f)} since the last audit: "
                        f"{listing(new)}.",
                    )
                )
    if before.has("pipelines"):
        for kind in ("deal", "ticket"):
            old = {p["id"]: p for p in before.pipelines(kind)}
            if not old:
                continue
            for p in snap.pipelines(kind):
                if p["id"] not in old:
                    hits.append(
                        r.hit(
                            object=kind,
                            field=p["label"],
                            key=f"pipeline:{p['id']}",
                            values=[p["label"]],
                            count=1,
                            message=f"New {kind} pipeline “{p['label']}” since the last audit.",
                        )
                    )
                    continue
                known = {s["id"].lower() for s in old[p["id"]]["stages"]}
                new = [s["label"] for s in p["stages"] if s["id"].lower() not in known]
                if new and p["id"] != "master":  # Salesforce without record types: the stage field covers it
                    hits.append(
                        r.hit(
                            object=kind,
                            field=p["label"],
                            key=f"pipeline:{p['id']}",
                            values=new,
                            count=len(new),
                            message=f"{plural(len(new), 'new stage')} in pipeline “{p['label']}” since the last "
                            f"audit: {listing(new)}.",
                        )
                    )
    return hits
