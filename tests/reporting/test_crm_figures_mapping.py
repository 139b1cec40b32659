"""One reading of where signed stages live, shared by the audit and the health checks.

The same signed stages are placed twice on the same sandbox org: from the live connector (as the monthly health
check reads the CRM) and from the audit's stored snapshot of that org (as the audit's drift rules read it). Both
must give the same object, field, pipeline, values and labels, or the same reason in words; the expected places
are written out by hand from the sandbox's schema.
"""

from datetime import date

import pytest

from crm_connectors.audit.engine import collect
from crm_connectors.mapping import Architecture, ConnectorCatalog, Placed, SnapshotCatalog
from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.connection import sandbox_connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]


def signed(name: str, domain: str, order: int, crm_object: str, crm_field: str, values: list[str]) -> dict:
    return {
        "name": name,
        "domain": domain,
        "order": order,
        "crm_object": crm_object,
        "crm_field": crm_field,
        "crm_values": values,
    }


SALESFORCE = [
    signed("MQL", "lead", 4, "Leads", "Lifecycle Stage", ["mql"]),  # by label, a value in another case
    signed("SQL", "lead", 6, "Lead", "Lifecycle_Stage__c", ["SQL"]),
    signed("SAO", "sales", 1, "Opportunity", "Stage", ["Discovery Completed"]),
    signed("Closed Won", "sales", 4, "opportunities", "StageName", ["Closed Won"]),
    signed("Onboarding", "customer", 2, "Contact", "Funnel Stage", ["Onboarding"]),  # no such field
    signed("Early Adoption", "customer", 4, "Widgets", "Stage", ["Live"]),  # no such object
]
HUBSPOT = [
    signed("MQL", "lead", 4, "Contacts", "Lifecycle Stage", ["Marketing Qualified Lead"]),
    signed("SQL", "lead", 6, "Contact", "lifecyclestage", ["salesqualifiedlead"]),
    signed("SAO", "sales", 1, "Opportunity", "New Business", ["Discovery Completed"]),  # a pipeline, by label
    signed("Closed Won", "sales", 4, "Deals", "New Business", ["closed won"]),
    signed("Known Lead", "lead", 2, "Lead", "Lifecycle Stage", ["lead"]),  # HubSpot has no lead object here
    signed("Onboarding", "customer", 2, "Contact", "Funnel Stage", ["Onboarding"]),
]


def placements(arch: Architecture) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for p in arch.placed:
        out[p.name] = (p.place.kind, p.place.field, p.place.pipeline_id, p.values, p.labels)
    for u in arch.unplaced:
        out[u.name] = ("not placed", u.reason)
    return out


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_the_audit_snapshot_and_the_live_crm_place_signed_stages_alike(cast, platform):
    sandbox = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}[platform]
    stages = {"salesforce": SALESFORCE, "hubspot": HUBSPOT}[platform]
    with sandbox(profile="healthy", seed=2, size=5_000, as_of=date(2027, 6, 1)) as crm:
        connection = sandbox_connection(client=cast.client, sandbox=crm, actor=cast.owner)
        connector = connection.connector()
        try:
            live = Architecture.of(stages, ConnectorCatalog(connector))
            snapshot = collect(connector, mapped=[(s["crm_object"], s["crm_field"]) for s in stages])
        finally:
            connector.close()
        new_business = next(p for p in crm.model.schema.deal_pipelines if p.label == "New Business")
        stage_ids = {s.label: s.hs for s in new_business.stages}
    stored = Architecture.of(stages, SnapshotCatalog(snapshot))

    assert placements(stored) == placements(live)
    found = placements(live)
    if platform == "salesforce":
        assert found["MQL"] == ("lead", "Lifecycle_Stage__c", None, ("MQL",), ("MQL",))
        assert found["SAO"][:4] == ("deal", "StageName", None, ("Discovery Completed",))
        assert found["Onboarding"] == ("not placed", "Contact.Funnel Stage is missing or not readable by this user")
        status, reason = found["Early Adoption"]
        assert status == "not placed" and reason.startswith("“Widgets” is not a CRM object GTM Ops knows")
    else:
        assert found["MQL"] == (
            "contact",
            "lifecyclestage",
            None,
            ("marketingqualifiedlead",),
            ("Marketing Qualified Lead",),
        )
        assert found["SAO"] == (
            "deal",
            "dealstage",
            new_business.hs_id,
            (stage_ids["Discovery Completed"],),
            ("Discovery Completed",),
        )
        assert found["Closed Won"][3] == (stage_ids["Closed Won"],)
        assert found["Known Lead"] == ("not placed", "HubSpot has no leads object here")
        assert found["Onboarding"] == ("not placed", "Contact.Funnel Stage is missing or not readable by this user")
    # Conversions join consecutive stages of one domain in one place only.
    pairs = {(a.name, b.name) for a, b in live.transitions() if isinstance(a, Placed) and isinstance(b, Placed)}
    assert pairs == ({("MQL", "SQL"), ("SAO", "Closed Won")})
