"""Gotchas real orgs have and the well-built profiles, seen through simple-salesforce and hubspot-api-client,
with the expected figures taken from `truth` (computed from the generator's model, not from the servers)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox, truth
from crm_sandbox.management.commands.crm_sandbox import Command

AS_OF = date(2025, 6, 15)
SIZE = 1_500


@pytest.fixture(scope="module")
def sf_tangled():
    with SalesforceSandbox(profile="tangled", seed=7, size=SIZE, as_of=AS_OF) as sb:
        yield sb


@pytest.fixture(scope="module")
def hs_tangled():
    with HubSpotSandbox(profile="tangled", seed=7, size=SIZE, as_of=AS_OF) as sb:
        yield sb


def grouped(sf, soql: str) -> dict:
    rows = sf.query(soql)["records"]
    return {r[next(k for k in r if k not in ("attributes", "expr0"))]: r["expr0"] for r in rows}


def total(client, object_type: str, filters: list[dict]) -> int:
    request = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[Filter(**f) for f in filters])], limit=1)
    return client.crm.objects.search_api.do_search(object_type, public_object_search_request=request).total


def field(sf_object, name: str) -> dict:
    return next(f for f in sf_object.describe()["fields"] if f["name"] == name)


def test_customer_stages_on_a_salesforce_custom_object(sf_tangled):
    sf = sf_tangled.client()
    custom = {o["name"] for o in sf.describe()["sobjects"] if o["custom"]}
    assert custom == {"Customer_Health__c"}
    stage = field(sf.Customer_Health__c, "Stage__c")
    assert stage["custom"] and [v["value"] for v in stage["picklistValues"]] == [
        "Onboarding",
        "Adopting",
        "Mature Adoption",
        "Renewal",
        "Churn Risk",
    ]
    counts = grouped(sf, "SELECT Stage__c, COUNT(Id) FROM Customer_Health__c GROUP BY Stage__c")
    assert counts == truth.value_counts(sf_tangled.model, kind="customer_health", attr="stage")
    # no ticket pipeline holds the customer stages: the custom object is where they are
    types = sf.query("SELECT Name FROM RecordType WHERE SobjectType = 'Case'")["records"]
    assert [r["Name"] for r in types] == ["Support Pipeline"]


def test_customer_stages_on_a_hubspot_custom_object(hs_tangled):
    client = hs_tangled.client()
    [schema] = client.crm.schemas.core_api.get_all().results
    assert schema.object_type_id == "2-7654321" and schema.name == "customer_health"
    stage = next(p for p in schema.properties if p.name == "stage")
    assert stage.type == "enumeration" and [o.label for o in stage.options][:2] == ["Onboarding", "Adopting"]
    expected = truth.value_counts(hs_tangled.model, kind="customer_health", attr="stage", by="hs")
    for value, n in expected.items():
        assert total(client, "2-7654321", [{"property_name": "stage", "operator": "EQ", "value": value}]) == n
    page = client.crm.objects.basic_api.get_page("2-7654321", limit=5, properties=["stage", "name"])
    assert len(page.results) == 5 and all(r.properties["stage"] in expected for r in page.results)
    pipelines = client.crm.pipelines.pipelines_api.get_all("tickets").results
    assert [p.label for p in pipelines] == ["Support Pipeline"]


def test_relabelled_default_stages_keep_hubspot_default_ids(hs_tangled, sf_tangled):
    client = hs_tangled.client()
    default = next(p for p in client.crm.pipelines.pipelines_api.get_all("deals").results if p.id == "default")
    stages = [(s.id, s.label) for s in default.stages]
    assert stages[:4] == [
        ("appointmentscheduled", "Discovery Completed"),
        ("qualifiedtobuy", "Solution Validated"),
        ("presentationscheduled", "Proposal Sent"),
        ("decisionmakerboughtin", "Contract Negotiated"),
    ]
    sf_stages = [v["value"] for v in field(sf_tangled.client().Opportunity, "StageName")["picklistValues"]]
    assert sf_stages[:4] == [label for _, label in stages[:4]]


def test_retired_values_are_listed_inactive_and_still_on_records(sf_tangled, hs_tangled):
    sf = sf_tangled.client()
    status = {v["value"]: v["active"] for v in field(sf.Lead, "Status")["picklistValues"]}
    assert status["Contacted"] is False and status["New"] is True
    retired = truth.retired_counts(sf_tangled.model, kind="lead", attr="status")
    assert list(retired) == ["Contacted"] and 0.03 * SIZE < retired["Contacted"] < 0.08 * SIZE
    assert grouped(sf, "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status")["Contacted"] == retired["Contacted"]
    picklist = sf.restful("ui-api/object-info/Lead/picklist-values/012000000000000AAA/Status")
    assert "Contacted" not in {v["value"] for v in picklist["values"]}  # a user can no longer pick it

    client = hs_tangled.client()
    status = client.crm.properties.core_api.get_by_name("contacts", "hs_lead_status")
    options = {o.value: o.hidden for o in status.options}
    assert options["CONTACTED"] is True and options["NEW"] is False
    [(value, n)] = truth.retired_counts(hs_tangled.model, kind="contact", attr="status", by="hs").items()
    assert total(client, "contacts", [{"property_name": "hs_lead_status", "operator": "EQ", "value": value}]) == n


def test_same_instant_history_is_stored_later_stage_first(sf_tangled, hs_tangled):
    sf = sf_tangled.client()
    rows = sf.query_all(
        "SELECT Id, LeadId, OldValue, NewValue, CreatedDate FROM LeadHistory WHERE Field = 'Lifecycle_Stage__c'"
    )["records"]
    by_instant: dict = {}
    for r in rows:
        by_instant.setdefault((r["LeadId"], r["CreatedDate"]), []).append(r)
    ties = [group for group in by_instant.values() if len(group) > 1]
    assert len(ties) == truth.same_instant(sf_tangled.model, kind="lead") > 0
    for first, second in ties:  # in stored (Id) order the second change comes first: it starts where the first ends
        assert first["OldValue"] == second["NewValue"]

    client = hs_tangled.client()
    tied, after = 0, None
    while True:
        page = client.crm.objects.basic_api.get_page(
            "contacts", limit=50, after=after, properties_with_history=["lifecyclestage"]
        )
        for r in page.results:
            stamps = Counter(h.timestamp for h in (r.properties_with_history or {}).get("lifecyclestage", []))
            tied += any(n > 1 for n in stamps.values())
        if not page.paging:
            break
        after = page.paging.next.after
    assert tied == truth.same_instant(hs_tangled.model, kind="contact") > 0


def test_free_text_loss_reasons_with_one_dominating(sf_tangled, hs_tangled):
    sf = sf_tangled.client()
    assert field(sf.Opportunity, "Loss_Reason__c")["type"] == "string"
    typed = grouped(sf, "SELECT Loss_Reason__c, COUNT(Id) FROM Opportunity GROUP BY Loss_Reason__c")
    typed.pop(None)
    assert {" price", "PRICE", "Price"} <= set(typed)
    grouped_by_hand: Counter = Counter()
    for text, n in typed.items():
        grouped_by_hand[" ".join(text.split()).lower()] += n
    assert dict(grouped_by_hand) == truth.loss_reasons(sf_tangled.model)
    shares = truth.loss_reason_shares(sf_tangled.model)
    assert max(shares, key=shares.get) == "price" and shares["price"] > 30

    client = hs_tangled.client()
    reason = client.crm.properties.core_api.get_by_name("deals", "closed_lost_reason")
    assert reason.type == "string"
    recorded = total(client, "deals", [{"property_name": "closed_lost_reason", "operator": "HAS_PROPERTY"}])
    assert recorded == sum(truth.loss_reasons(hs_tangled.model).values())


def test_blank_lead_status_and_mql_in_lead_status(sf_tangled, hs_tangled):
    sf = sf_tangled.client()
    blank = truth.blanks(sf_tangled.model, kind="lead", attr="status")
    assert 0.05 * SIZE < blank < 0.11 * SIZE
    assert sf.query("SELECT COUNT() FROM Lead WHERE Status = null")["totalSize"] == blank
    assert field(sf.Lead, "Status")["nillable"] is True
    statuses = {v["value"] for v in field(sf.Lead, "Status")["picklistValues"]}
    lifecycle = {v["value"] for v in field(sf.Contact, "Lifecycle_Stage__c")["picklistValues"]}
    assert {"MQL", "SQL"} <= statuses & lifecycle

    client = hs_tangled.client()
    blank = truth.blanks(hs_tangled.model, kind="contact", attr="status")
    assert total(client, "contacts", [{"property_name": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}]) == blank > 0


def test_the_wellbuilt_org_uses_standard_names_and_holds_only_listed_values():
    with SalesforceSandbox(profile="wellbuilt", seed=4, size=SIZE, as_of=AS_OF) as sb:
        sf = sb.client()
        for obj in (sf.Lead, sf.Contact):
            assert [v["value"] for v in field(obj, "Lifecycle_Stage__c")["picklistValues"]] == [
                "Subscriber",
                "Lead",
                "Marketing Engaged",
                "MQL",
                "SAL",
                "SQL",
                "Opportunity",
                "Customer",
                "Evangelist",
                "Other",
            ]
        assert {v["value"] for v in field(sf.Lead, "Status")["picklistValues"]} >= {
            "Open - Not Contacted",
            "Working - Contacted",
            "Closed - Converted",
            "Closed - Not Converted",
        }
        assert "Contact_Status__c" in {f["name"] for f in sf.Contact.describe()["fields"]}
        stages = sf.query("SELECT ApiName, DefaultProbability, IsClosed FROM OpportunityStage")["records"]
        assert {s["DefaultProbability"] for s in stages if not s["IsClosed"]} == {25.0, 50.0, 75.0, 90.0}
        assert len(sf.query("SELECT Id FROM RecordType WHERE SobjectType = 'Opportunity'")["records"]) <= 3
        assert "Customer_Health__c" in {o["name"] for o in sf.describe()["sobjects"]}
        model = sb.model
        for kind, attr in [("lead", "lifecycle"), ("lead", "status"), ("contact", "status"), ("deal", "stage")]:
            assert truth.rogue_counts(model, kind=kind, attr=attr) == {}
            assert truth.retired_counts(model, kind=kind, attr=attr) == {}
        reasons = truth.loss_reason_shares(model)
        assert reasons and max(reasons.values()) < 30
    with HubSpotSandbox(profile="wellbuilt-relabelled", seed=4, size=SIZE, as_of=AS_OF) as hs:
        client = hs.client()
        props = {p.name: p for p in client.crm.properties.core_api.get_all("contacts").results}
        assert [o.label for o in props["hs_lead_status"].options] == [
            "New",
            "Open",
            "In Progress",
            "Open Deal",
            "Unqualified",
            "Attempted to Contact",
            "Connected",
            "Bad Timing",
        ]
        lifecycle = {o.value: o.label for o in props["lifecyclestage"].options}
        assert {"subscriber", "marketingqualifiedlead", "salesqualifiedlead", "evangelist", "other"} <= set(lifecycle)
        assert "Marketing Engaged" in lifecycle.values() and "Sales Accepted Lead" in lifecycle.values()
        tickets = [p.label for p in client.crm.pipelines.pipelines_api.get_all("tickets").results]
        assert "Customer Onboarding" in tickets
        assert client.crm.schemas.core_api.get_all().results == []


def test_the_command_serves_the_new_profiles():
    parser = Command().create_parser("manage.py", "crm_sandbox")
    for profile in ("wellbuilt", "wellbuilt-relabelled", "tangled"):
        assert parser.parse_args(["--kind", "salesforce", "--profile", profile]).profile == profile
    knobs = parser.parse_args(["--kind", "hubspot", "--hide", "contact.phone", "--refuse", "tickets"])
    assert (knobs.hide, knobs.refuse) == (["contact.phone"], ["tickets"])


def test_date_fields_of_a_retired_stage_are_left_over_and_empty(sf_tangled, hs_tangled):
    sf = sf_tangled.client()
    sao = field(sf.Lead, "SAO_Date__c")
    assert (sao["type"], sao["label"], sao["custom"]) == ("date", "SAO Date", True)
    assert sf.query("SELECT COUNT() FROM Lead WHERE SAO_Date__c != null")["totalSize"] == 0
    lifecycle = {v["value"] for v in field(sf.Lead, "Lifecycle_Stage__c")["picklistValues"]}
    assert "SAO" not in lifecycle

    client = hs_tangled.client()
    entered = client.crm.properties.core_api.get_by_name("contacts", "hs_date_entered_1000431")
    assert entered.type == "datetime" and "Recycled Lead" in entered.label
    stages = {o.value for o in client.crm.properties.core_api.get_by_name("contacts", "lifecyclestage").options}
    assert "1000431" not in stages
    assert total(client, "contacts", [{"property_name": "hs_date_entered_1000431", "operator": "HAS_PROPERTY"}]) == 0
