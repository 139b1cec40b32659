"""Shape knobs of the CRM sandbox (hidden fields, refused objects), seen through the real client libraries."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.objects.exceptions import ApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.profiles import variant

AS_OF = date(2025, 6, 15)
HIDDEN = variant(
    "healthy",
    "fls",
    hidden_fields={"lead.Phone", "lead.LeadSource", "contact.phone", "contact.hs_analytics_source", "deal.NextStep"},
    refused_objects={"CaseStatus", "LeadHistory", "tickets"},
)
STATUS_HIDDEN = variant("healthy", "no-status", hidden_fields={"lead.Status"})


@pytest.fixture(scope="module")
def sf():
    with SalesforceSandbox(profile=HIDDEN, seed=2, size=800, as_of=AS_OF) as sb:
        yield sb.client()


@pytest.fixture(scope="module")
def hs():
    with HubSpotSandbox(profile=HIDDEN, seed=2, size=800, as_of=AS_OF) as sb:
        yield sb.client()


def has(name: str) -> Filter:
    return Filter(property_name=name, operator="HAS_PROPERTY")


def sf_error(sf, soql: str) -> dict:
    with pytest.raises((SalesforceMalformedRequest, SalesforceRefusedRequest)) as caught:
        sf.query(soql)
    [body] = caught.value.content
    return body


def test_a_hidden_salesforce_field_is_gone_from_describe_and_unknown_to_soql(sf):
    lead = {f["name"] for f in sf.Lead.describe()["fields"]}
    assert {"Phone", "LeadSource"}.isdisjoint(lead) and {"Email", "Status"} <= lead
    assert "NextStep" not in {f["name"] for f in sf.Opportunity.describe()["fields"]}
    contact = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "Phone" not in contact and "LeadSource" in contact  # "contact.phone" names both platforms' field
    body = sf_error(sf, "SELECT COUNT() FROM Lead WHERE Phone = null")
    assert body["errorCode"] == "INVALID_FIELD" and "No such column 'Phone' on entity 'Lead'" in body["message"]
    body = sf_error(sf, "SELECT LeadSource, COUNT(Id) FROM Lead GROUP BY LeadSource")
    assert "No such column 'LeadSource' on entity 'Lead'" in body["message"]
    assert sf.query("SELECT COUNT() FROM Lead WHERE Email = null")["totalSize"] >= 0  # the rest still answers


def test_a_refused_salesforce_object_answers_like_a_user_without_access(sf):
    listed = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert listed["CaseStatus"]["queryable"] is False and listed["Case"]["queryable"] is True
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.CaseStatus.describe()
    assert caught.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    for soql in ("SELECT MasterLabel FROM CaseStatus", "SELECT COUNT() FROM LeadHistory"):
        body = sf_error(sf, soql)
        name = soql.split("FROM ")[1]
        assert body["errorCode"] == "INVALID_TYPE" and f"sObject type '{name}' is not supported" in body["message"]
    assert sf.query("SELECT COUNT() FROM Case")["totalSize"] > 0
    assert sf.query("SELECT COUNT() FROM OpportunityHistory")["totalSize"] > 0


def test_a_hidden_hubspot_property_is_gone_and_refused_by_name(hs):
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert {"phone", "hs_analytics_source"}.isdisjoint(names) and "email" in names
    assert "hs_next_step" in {p.name for p in hs.crm.properties.core_api.get_all("deals").results}
    with pytest.raises(PropertiesApiException) as caught:
        hs.crm.properties.core_api.get_by_name("contacts", "phone")
    assert caught.value.status == 404

    def refused(call) -> dict:
        with pytest.raises(ApiException) as caught:
            call()
        assert caught.value.status == 400
        return json.loads(caught.value.body)

    search = hs.crm.objects.search_api.do_search
    for request in (
        PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[has("phone")])], limit=1),
        PublicObjectSearchRequest(filter_groups=[], properties=["hs_analytics_source"], limit=1),
    ):
        body = refused(lambda r=request: search("contacts", public_object_search_request=r))
        assert body["category"] == "VALIDATION_ERROR" and body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
        assert body["errors"][0]["context"]["propertyName"][0] in ("phone", "hs_analytics_source")
    body = refused(lambda: hs.crm.objects.basic_api.get_page("contacts", properties=["phone"]))
    assert body["category"] == "VALIDATION_ERROR" and '"phone"' in body["message"]
    refused(lambda: hs.crm.objects.basic_api.get_page("contacts", properties_with_history=["phone"]))
    ok = hs.crm.objects.basic_api.get_page("contacts", limit=3, properties=["email", "not_a_property"])
    assert len(ok.results) == 3  # an unknown (not hidden) name is ignored, as HubSpot does


def test_a_refused_hubspot_object_answers_missing_scopes(hs):
    with pytest.raises(PipelinesApiException) as caught:
        hs.crm.pipelines.pipelines_api.get_all("tickets")
    body = json.loads(caught.value.body)
    assert caught.value.status == 403 and body["category"] == "MISSING_SCOPES"
    with pytest.raises(ApiException) as caught:
        hs.crm.objects.basic_api.get_page("tickets", limit=1)
    assert caught.value.status == 403
    assert hs.crm.pipelines.pipelines_api.get_all("deals").results  # other objects still answer


def test_refusing_only_an_endpoint_leaves_the_object_readable():
    profile = variant("healthy", "no-ticket-pipelines", refused_objects={"pipelines/tickets"})
    with HubSpotSandbox(profile=profile, seed=2, size=200, as_of=AS_OF) as sb:
        client = sb.client()
        with pytest.raises(PipelinesApiException) as caught:
            client.crm.pipelines.pipelines_api.get_all("tickets")
        assert caught.value.status == 403
        assert client.crm.objects.basic_api.get_page("tickets", limit=2).results


def test_a_hidden_field_takes_its_history_rows_with_it():
    with SalesforceSandbox(profile=STATUS_HIDDEN, seed=2, size=600, as_of=AS_OF) as sb:
        sf = sb.client()
        fields = {r["Field"] for r in sf.query_all("SELECT Field FROM LeadHistory")["records"]}
        assert fields == {"created", "Lifecycle_Stage__c"}
        body = sf_error(sf, "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status")
        assert body["errorCode"] == "INVALID_FIELD"


def test_every_field_can_be_hidden_and_the_org_still_answers():
    """Any field a connector reads may be hidden: the robustness tests hide each in turn."""
    with SalesforceSandbox(profile="messy", seed=2, size=300, as_of=AS_OF) as plain:
        objects = {name: [f for f in obj.fields if f != "Id"] for name, obj in plain.objects.items() if obj.table}
    every = {f"{name}.{f}" for name, fields in objects.items() for f in fields}
    with SalesforceSandbox(profile=variant("messy", "bare", hidden_fields=every), seed=2, size=300, as_of=AS_OF) as sb:
        sf = sb.client()
        for name, fields in objects.items():
            assert [f["name"] for f in getattr(sf, name).describe()["fields"]] == ["Id"]
            assert sf.query(f"SELECT Id FROM {name} LIMIT 2")["totalSize"] == 2
            for f in fields:
                body = sf_error(sf, f"SELECT {f} FROM {name} LIMIT 1")
                assert body["errorCode"] == "INVALID_FIELD" and f"No such column '{f}'" in body["message"], name

    with HubSpotSandbox(profile="messy", seed=2, size=300, as_of=AS_OF) as plain:
        props = {t: list(p) for t, p in plain.props.items()}
    every = {f"{t}.{p}" for t, names in props.items() for p in names}
    with HubSpotSandbox(profile=variant("messy", "bare", hidden_fields=every), seed=2, size=300, as_of=AS_OF) as sb:
        client = sb.client()
        for object_type, names in props.items():
            assert client.crm.properties.core_api.get_all(object_type).results == []
            page = client.crm.objects.basic_api.get_page(object_type, limit=3)
            assert len(page.results) == 3 and all(r.properties == {} for r in page.results)
            for name in names:
                request = PublicObjectSearchRequest(
                    filter_groups=[FilterGroup(filters=[has(name)])], limit=1
                )
                with pytest.raises(ApiException) as caught:
                    client.crm.objects.search_api.do_search(object_type, public_object_search_request=request)
                assert caught.value.status == 400 and f'"{name}"' in json.loads(caught.value.body)["message"]
