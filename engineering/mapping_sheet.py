"""The Partnership playbook's CRM Field Mapping Sheet (seed 004, 2a; complete when "all fields mapped, sync direction
set"), built from the signed terms and the CRM's metadata through the same document path as the spec.

Each row maps a PRM field to a CRM object and field: the standard fields every PRM syncs, then one row per signed
term that the CRM must hold (attribution, tier, program type, deal registration). A field the CRM does not show is a
field to create; nothing is assumed to exist. Sync is bidirectional when the client signed "Bidirectional Sync", else
PRM to CRM; deal registration and deal stage sync in real time, reporting fields in batches.
"""

from __future__ import annotations

from crm_connectors.mapping import Catalog, find_field, norm

from .schema import SCHEMA_VERSION
from .spec import OBJECT_NAMES

KIND = "crm_field_mapping_sheet"
# (prm field, object, Salesforce field, HubSpot field, label, type, real time, source of truth)
STANDARD = (
    ("Company name", "company", "Name", "name", "Account Name", "string", False, "CRM"),
    ("Contact email", "contact", "Email", "email", "Email", "email", False, "CRM"),
    ("Deal stage", "deal", "StageName", "dealstage", "Stage", "picklist", True, "CRM"),
    ("Deal amount", "deal", "Amount", "amount", "Amount", "number", False, "CRM"),
)
# signed term key -> (prm field, object, Salesforce field, HubSpot field, label, real time, source of truth, group)
TERMS = {
    "partner-sourced": (
        "Partner attribution",
        "deal",
        "Partner_Attribution__c",
        "partner_attribution",
        "Partner Attribution",
        False,
        "PRM",
        "attribution",
    ),
    "partner-influenced": (
        "Partner attribution",
        "deal",
        "Partner_Attribution__c",
        "partner_attribution",
        "Partner Attribution",
        False,
        "PRM",
        "attribution",
    ),
    "partner-tier": (
        "Partner tier",
        "company",
        "Partner_Tier__c",
        "partner_tier",
        "Partner Tier",
        False,
        "PRM",
        "tier",
    ),
    "referral-partner": (
        "Program type",
        "company",
        "Partner_Program_Type__c",
        "partner_program_type",
        "Partner Program Type",
        False,
        "PRM",
        "program",
    ),
    "reseller-partner": (
        "Program type",
        "company",
        "Partner_Program_Type__c",
        "partner_program_type",
        "Partner Program Type",
        False,
        "PRM",
        "program",
    ),
    "technology-partner": (
        "Program type",
        "company",
        "Partner_Program_Type__c",
        "partner_program_type",
        "Partner Program Type",
        False,
        "PRM",
        "program",
    ),
    "deal-registration": (
        "Deal registration status",
        "deal",
        "Deal_Registration_Status__c",
        "deal_registration_status",
        "Deal Registration Status",
        True,
        "PRM",
        "registration",
    ),
}
REGISTRATION_VALUES = ["Submitted", "Approved", "Rejected", "Expired"]
TIER_VALUES = ["Bronze", "Silver", "Gold"]
BUILD_ORDER = (
    "Create the custom fields the sheet marks 'create' on the CRM objects named",
    "Map each PRM field to its CRM field in the PRM's integration settings",
    "Set the sync direction and frequency of every field as the sheet says",
    "Test sync with real scenarios: a test partner, a test deal registration, a deal stage update",
)


def build(
    *, content: dict, version_number: int, version_hash: str, platform: str, catalog: Catalog, metadata_hash: str
) -> dict:
    terms = {t["key"]: t for t in content.get("terms") or []}
    both_ways = "bidirectional-sync" in terms
    rows: list[dict] = []

    def row(
        prm: str,
        kind: str,
        sf: str,
        hs: str,
        label: str,
        type_: str,
        realtime: bool,
        truth: str,
        values: list[str],
        term: str | None,
    ) -> None:
        api_name = sf if platform == "salesforce" else hs
        fields = catalog.fields(kind) or []
        found = find_field(fields, api_name) or find_field(fields, label)
        rows.append(
            {
                "id": f"row:{kind}:{found.api_name if found else api_name}",
                "prm_field": prm,
                "object": kind,
                "object_label": OBJECT_NAMES[platform][kind],
                "crm_field": found.api_name if found else api_name,
                "field_label": found.label if found else label,
                "type": type_,
                "values": values,
                "action": "map" if found else "create",
                "sync_direction": "bidirectional" if both_ways else "prm_to_crm",
                "frequency": "real-time" if realtime else "batch",
                "source_of_truth": truth,
                "term": term,
            }
        )

    for prm, kind, sf, hs, label, type_, realtime, truth in STANDARD:
        row(prm, kind, sf, hs, label, type_, realtime, truth, [], None)
    groups: dict[str, list[str]] = {}
    for key in terms:
        if key in TERMS:
            groups.setdefault(TERMS[key][7], []).append(key)
    for group, keys in groups.items():
        prm, kind, sf, hs, label, realtime, truth, _ = TERMS[keys[0]]
        values = {
            "registration": REGISTRATION_VALUES,
            "tier": TIER_VALUES,
        }.get(group) or [terms[k]["term"] for k in keys]
        row(prm, kind, sf, hs, label, "picklist", realtime, truth, values, ", ".join(terms[k]["term"] for k in keys))
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "platform": platform,
        "source": {
            "definition_version": version_number,
            "definition_hash": version_hash,
            "metadata_hash": metadata_hash,
        },
        "rows": sorted(rows, key=lambda r: (r["object"], norm(r["prm_field"]))),
        "build_order": list(BUILD_ORDER),
    }
