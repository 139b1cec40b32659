"""`truth` against what aggregate queries through the real clients return, on orgs with every kind of value:
rogue, retired, blank, several pipelines, records moving backwards."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox, truth
from crm_sandbox.dates import hs_datetime, sf_datetime, to_ms

AS_OF = date(2025, 6, 15)
WINDOW = (date(2025, 1, 1), date(2025, 4, 1))


@pytest.fixture(scope="module", params=["messy", "tangled"])
def sf(request):
    with SalesforceSandbox(profile=request.param, seed=13, size=3_000, as_of=AS_OF) as sb:
        yield sb


@pytest.fixture(scope="module", params=["messy", "tangled"])
def hs(request):
    with HubSpotSandbox(profile=request.param, seed=13, size=3_000, as_of=AS_OF) as sb:
        yield sb


def grouped(client, soql: str) -> dict:
    rows = client.query_all(soql)["records"]
    keys = [k for k in rows[0] if k not in ("attributes", "expr0")] if rows else []
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r["expr0"] for r in rows}


def total(client, object_type: str, filters: list[dict]) -> int:
    request = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[Filter(**f) for f in filters])], limit=1)
    return client.crm.objects.search_api.do_search(object_type, public_object_search_request=request).total


@pytest.mark.parametrize(
    ("sobject", "field_name", "kind", "attr"),
    [
        ("Lead", "Status", "lead", "status"),
        ("Lead", "Lifecycle_Stage__c", "lead", "lifecycle"),
        ("Contact", "Lifecycle_Stage__c", "contact", "lifecycle"),
        ("Account", "Type", "company", "type"),
        ("Opportunity", "StageName", "deal", "stage"),
        ("Opportunity", "LeadSource", "deal", "source"),
    ],
)
def test_records_per_value_match_a_group_by(sf, sobject, field_name, kind, attr):
    client = sf.client()
    counts = grouped(client, f"SELECT {field_name}, COUNT(Id) FROM {sobject} GROUP BY {field_name}")
    expected = truth.value_counts(sf.model, kind=kind, attr=attr)
    assert counts == {k: n for k, n in expected.items() if n}
    blank = client.query(f"SELECT COUNT() FROM {sobject} WHERE {field_name} = null")["totalSize"]
    assert blank == truth.blanks(sf.model, kind=kind, attr=attr) == expected.get(None, 0)


def test_deal_stage_entries_per_pipeline_match_opportunity_history(sf):
    client = sf.client()
    start, end = (sf_datetime(to_ms(d)) for d in WINDOW)
    stages = grouped(
        client,
        f"SELECT StageName, COUNT(Id) FROM OpportunityHistory WHERE CreatedDate >= {start} AND CreatedDate < {end} "
        "GROUP BY StageName",
    )
    expected: dict = {}
    for pipeline in sf.model.schema.deal_pipelines:
        for stage in pipeline.stages:
            n = truth.entries(
                sf.model,
                kind="deal",
                path="stage",
                value=stage.label,
                start=WINDOW[0],
                end=WINDOW[1],
                pipeline=pipeline.label,
                by="label",
            )
            expected[stage.label] = expected.get(stage.label, 0) + n
    assert stages == {k: n for k, n in expected.items() if n}


def test_lifecycle_entries_match_hubspot_date_entered(hs):
    client = hs.client()
    start, end = (hs_datetime(to_ms(d)) for d in WINDOW)
    for option in hs.model.schema.lifecycle:
        if not option.listed:
            continue
        prop = f"hs_date_entered_{option.hs}"
        found = total(
            client,
            "contacts",
            [
                {"property_name": prop, "operator": "GTE", "value": start},
                {"property_name": prop, "operator": "LT", "value": end},
            ],
        )
        expected = truth.entries(
            hs.model, kind="contact", path="lifecycle", value=option.key, start=WINDOW[0], end=WINDOW[1], latest=True
        )
        assert found == expected, option.key


def test_hubspot_values_and_blanks_match_searches(hs):
    client = hs.client()
    for prop, kind, attr in [("hs_lead_status", "contacts", "status"), ("lifecyclestage", "contacts", "lifecycle")]:
        expected = truth.value_counts(hs.model, kind="contact", attr=attr, by="hs")
        for value, n in expected.items():
            if value is None:
                filters = [{"property_name": prop, "operator": "NOT_HAS_PROPERTY"}]
            else:
                filters = [{"property_name": prop, "operator": "EQ", "value": value}]
            assert total(client, kind, filters) == n, (prop, value)


def test_time_in_stage_matches_hubspot_date_entered_and_exited():
    with HubSpotSandbox(profile="healthy", seed=13, size=3_000, as_of=AS_OF) as sb:
        client = sb.client()
        start, end = (hs_datetime(to_ms(d)) for d in WINDOW)
        for stage in sb.model.schema.deal_pipelines[0].open_stages:
            entered, exited = f"hs_date_entered_{stage.hs}", f"hs_date_exited_{stage.hs}"
            days, after = [], None
            while True:
                request = PublicObjectSearchRequest(
                    filter_groups=[
                        FilterGroup(
                            filters=[
                                Filter(property_name=exited, operator="GTE", value=start),
                                Filter(property_name=exited, operator="LT", value=end),
                            ]
                        )
                    ],
                    properties=[entered, exited],
                    limit=100,
                    after=after,
                )
                page = client.crm.objects.search_api.do_search("deals", public_object_search_request=request)
                for r in page.results:
                    stay = hs_ms(r.properties[exited]) - hs_ms(r.properties[entered])
                    days.append(stay / 86_400_000)
                if not page.paging:
                    break
                after = page.paging.next.after
            stays, average = truth.time_in_stage(
                sb.model, kind="deal", path="stage", value=stage.key, start=WINDOW[0], end=WINDOW[1]
            )
            assert stays == len(days) > 0, stage.label
            assert average == pytest.approx(sum(days) / len(days)), stage.label


def hs_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
