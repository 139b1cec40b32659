"""DOMAIN.md 8.4, the company lifecycle: a company field mixing concepts, or no company-level lifecycle."""

from __future__ import annotations

from .lexicon import COMPANY_CLASSES, COMPANY_LIFECYCLE, LOW, MEDIUM, matches, shown
from .registry import Hit, Rule, require, rule
from .snapshot import Context, Snapshot, field_label


@rule(
    "COMP-FIELD-MIXED",
    title="Company field mixing lifecycle, type and status",
    domain=COMPANY_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 Current State Audit §4 “company fields mixing lifecycle, type, and status concepts”",
    recommendation="Split the field: a company lifecycle (rolled up from contacts), a company type (customer, "
    "partner, reseller…) and a status (active, churned) as three fields.",
    detects="one company picklist whose values fall in two or more of lifecycle / type / status",
)
def _company_mixed(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for f in snap.role_fields("company"):
        classes: dict[str, list[str]] = {}
        for v in f["values"]:
            for name, pattern in COMPANY_CLASSES.items():
                if matches(pattern, v):
                    classes.setdefault(name, []).append(shown(v))
                    break
        if len(classes) >= 2:
            hits.append(
                r.hit(
                    object="company",
                    field=f["name"],
                    values=[v for vals in classes.values() for v in vals],
                    counts={k: len(v) for k, v in classes.items()},
                    count=len(classes),
                    evidence={"classes": classes},
                    message=f"{field_label(f)} on {snap.crm} companies mixes "
                    + "; ".join(f"{k} ({', '.join(v)})" for k, v in classes.items())
                    + ".",
                )
            )
    return hits


@rule(
    "COMP-NO-ROLLUP",
    title="No company-level lifecycle",
    domain=COMPANY_LIFECYCLE,
    severity=LOW,
    seed="S1 §2c “Add company-level lifecycle field that rolls up from Contact activity”",
    recommendation="Add a company-level lifecycle field that rolls up from the most advanced contact's lifecycle "
    "stage.",
    needs=("fields", "counts"),
    detects="companies have no lifecycle field, or it is empty on every company",
)
def _no_rollup(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if not snap.available("company"):
        return []
    fields = snap.role_fields("company", "lifecycle")
    if not fields:
        require(snap, snap.unreadable("company", roles=("lifecycle",)))
        return [r.hit(object="company", field="", message=f"{snap.crm} companies have no lifecycle field.")]
    counted = [vc for f in fields if (vc := snap.value_counts("company", f["name"])) is not None]
    total = max((vc["total"] for vc in counted), default=0)
    empty = [f for f in fields if (vc := snap.value_counts("company", f["name"])) and total and vc["empty"] >= total]
    if total and len(empty) == len(fields):
        return [
            r.hit(
                object="company",
                field=", ".join(f["name"] for f in fields),
                count=total,
                message=f"The company lifecycle field exists but none of the {total:,} companies has a value: it "
                "does not roll up from contacts.",
            )
        ]
    return []
